"""The package's imports go one way (no module imports one that imports it), and a run's
start-up does not load what it does not use."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import run_python

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "transferlab"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """transferlab modules that `path` imports, at its top or inside functions alike."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n in modules}
    return found


def test_no_module_of_the_package_is_part_of_an_import_circle():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: imports_of(p, set(files)) - {m} for m, p in files.items()}
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            current = todo.pop()
            assert current != start, f"{start} imports itself through {sorted(seen)}"
            if current not in seen:
                seen.add(current)
                todo += graph[current]


def test_building_a_timm_backbone_does_not_load_wandb_but_logger_wandb_still_can():
    probe = (
        "import sys; from transferlab.models import backbones; "
        "print('wandb' in sys.modules); import wandb; "
        "from lightning.pytorch.loggers import WandbLogger; print(wandb.__name__)"
    )
    out = run_python(probe)
    assert out.stdout.split() == ["False", "wandb"], out.stderr
