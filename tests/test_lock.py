"""`make install` puts the lock's exact versions in place, whatever pip would pick today."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution, version

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
        for line in requires:
            req = Requirement(line)
            envs = [{**default_environment(), **LOCK_PLATFORM, "extra": e} for e in wanted or {""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, set(req.extras)))
    return set(seen)


def test_the_lock_pins_the_whole_stack_and_nothing_else():
    pins, ours = locked(), stack()
    for name in ("torch", "torchvision", "timm", "lightning", "hydra-core", "torchmetrics"):
        assert name in pins, name
    missing = ours - NOT_LOCKED - set(pins)
    assert not missing, f"in the stack but not locked (run `make lock`): {sorted(missing)}"
    # a stale pin (a package nothing needs any more) would hold back the machine's own copy
    stale = set(pins) - ours
    assert not stale, f"locked but nothing needs it (remove from the lock): {sorted(stale)}"


def test_installed_versions_are_the_locks():
    """Fails in an environment pip filled on its own: `make install` restores the lock."""
    differ, ours = {}, stack()
    for name, pinned in locked().items():
        if name not in ours:
            continue  # test_the_lock_pins_the_whole_stack_and_nothing_else says why
        try:
            have = Version(version(name))
        except PackageNotFoundError:
            continue  # a platform's extra (e.g. CUDA libraries) that this one does not need
        if Version(have.public.split("+")[0]) != pinned:  # torch 2.14.1+cpu is torch 2.14.1
            differ[name] = f"{have} (lock: {pinned})"
    assert not differ, f"installed versions differ from the lock: {differ}"
