"""The lock and the installed stack, read for tests/test_lock.py and tests/test_package.py."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT

# The lock was resolved on Linux x86_64 (torch's CUDA libraries are in it): its stack is read
# with that platform's markers, so the check means the same on any machine.
LOCK_PLATFORM = {"sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"}
NOT_LOCKED = {"pip", "setuptools", "wheel", "transferlab"}  # pip freeze leaves these out


def locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith(("#", "-")):
            req = Requirement(line.strip())
            (spec,) = req.specifier
            assert spec.operator == "==", f"{line}: the lock pins exact versions"
            pins[canonicalize_name(req.name)] = Version(spec.version)
    return pins


def stack(root: str = "transferlab", extras: frozenset = frozenset({"dev"})) -> set[str]:
    """Names of every installed distribution that `pip install -e .[dev]` pulls in.

    Only these are ours to check: a machine's other packages (CI images come with their own)
    may be at any version.
    """
    platform = {**default_environment(), **LOCK_PLATFORM}
    seen: dict[str, set] = {}
    todo = [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        if key in seen and wanted <= seen[key]:
            continue
        seen[key] = seen.get(key, set()) | wanted
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        envs = [{**platform, "extra": e} for e in wanted or {""}]
        for line in requires:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, set(req.extras)))
    return set(seen)
