"""The package's layers (docs/design.md, Layers) are imported one way: downward only.

A unit is a subpackage (`transferlab.data`) or a top-level module (`transferlab.modes`).
Every import counts, those inside functions too, since a lazy import still ties the two
units together. Units of one layer may import each other, but never in a circle.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "transferlab"

# Bottom first; the same picture as docs/design.md and the README's code map.
LAYERS = (
    {"errors", "atomic", "compat", "masking"},
    {
        "modes",
        "heads",
        "arm_kinds",
        "datasets",
        "defaults",
        "model_facts",
        "weights_files",
        "image_files",
        "input_size",
        "checks",
        "config_dirs",
        "extras",
    },
    {"data", "models"},
    {"finetune", "features", "distill", "lr_schedules", "averaging", "stage_metrics"},
    {"module"},
    {"runs", "search"},
    {"pipeline", "tune", "inference"},
    {"report", "ranking", "study"},
    {"cli", "__main__", "__init__"},
)
LAYER_OF = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """`transferlab.data.sources` -> `data`; the package itself is `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: climb from this module's package
        here = module.split(".") if is_package else module.split(".")[:-1]
        here = here[: len(here) - (node.level - 1)]
        base = ".".join(here + ([node.module] if node.module else []))
    return [base] + [f"{base}.{a.name}" for a in node.names]


def import_edges(package: Path) -> set[tuple[str, str, str]]:
    """(importing unit, imported unit, where) for every import between two units."""
    name = package.name
    edges = set()
    for path in package.rglob("*.py"):
        module = _module_name(path, package)
        for node in ast.walk(ast.parse(path.read_text())):
            for target in _imported(node, module, path.name == "__init__.py"):
                if target.split(".")[0] != name or "." not in target:
                    continue
                source, imported = unit_of(module), unit_of(target)
                if source != imported and imported in _units(package):
                    where = f"{path.relative_to(package)}:{node.lineno}"
                    edges.add((source, imported, where))
    return edges


def _units(package: Path) -> set[str]:
    return {p.stem for p in package.glob("*.py")} | {
        p.parent.name for p in package.glob("*/__init__.py")
    }


def upward_imports(package: Path) -> list[str]:
    """Imports that point to a higher layer than the importer's, as readable lines."""
    return sorted(
        f"{where}: {source} (layer {LAYER_OF[source]}) imports {imported} "
        f"(layer {LAYER_OF[imported]})"
        for source, imported, where in import_edges(package)
        if LAYER_OF[imported] > LAYER_OF[source]
    )


def package_cycles(package: Path) -> list[str]:
    """Units that reach themselves again through imports."""
    graph: dict[str, set[str]] = {}
    for source, imported, _ in import_edges(package):
        graph.setdefault(source, set()).add(imported)
    circles = []
    for start in sorted(graph):
        seen, todo = set(), list(graph[start])
        while todo:
            current = todo.pop()
            if current == start:
                circles.append(f"{start} imports itself through {sorted(seen)}")
                break
            if current not in seen:
                seen.add(current)
                todo += graph.get(current, ())
    return circles


def test_every_unit_of_the_package_has_a_layer():
    assert _units(PACKAGE) - set(LAYER_OF) == set()


def test_no_import_points_up_a_layer():
    assert upward_imports(PACKAGE) == []


def test_no_two_units_import_each_other_in_a_circle():
    assert package_cycles(PACKAGE) == []


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "transferlab"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("*.json", "__pycache__"))
    return copy


def test_an_upward_import_inside_a_function_fails_the_layer_check(tmp_path):
    copy = _copy(tmp_path)
    sources = copy / "data" / "sources.py"
    sources.write_text(
        sources.read_text() + "\n\ndef _late():\n    from transferlab.pipeline import train\n"
    )
    assert upward_imports(PACKAGE) == []
    found = upward_imports(copy)
    assert len(found) == 1
    assert found[0].startswith("data/sources.py:") and "imports pipeline" in found[0]


def test_a_circle_between_two_units_of_one_layer_fails_the_cycle_check(tmp_path):
    copy = _copy(tmp_path)
    modes_file = copy / "modes.py"  # input_size already imports modes
    modes_file.write_text(modes_file.read_text() + "\nfrom . import input_size as _size\n")
    assert upward_imports(copy) == []
    assert any(line.startswith("modes imports itself") for line in package_cycles(copy))
