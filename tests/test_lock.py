"""`make install` puts the lock's exact versions in place, whatever pip would pick today."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.requirements import Requirement
from packaging.version import Version

from tests.conftest import ROOT


def locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        if line.strip() and not line.startswith(("#", "-")):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{line}: the lock pins exact versions"
            pins[req.name] = Version(spec.version)
    return pins


def test_the_lock_pins_the_whole_stack():
    pins = locked()
    for name in ("torch", "torchvision", "timm", "lightning", "hydra-core", "torchmetrics"):
        assert name in pins, name


def test_installed_versions_are_the_locks():
    """Fails in an environment pip filled on its own: `make install` restores the lock."""
    differ = {}
    for name, pinned in locked().items():
        try:
            have = Version(version(name))
        except PackageNotFoundError:
            continue  # a platform's extra (e.g. CUDA libraries) that this one does not need
        if Version(have.public.split("+")[0]) != pinned:  # torch 2.14.1+cpu is torch 2.14.1
            differ[name] = f"{have} (lock: {pinned})"
    assert not differ, f"installed versions differ from the lock: {differ}"
