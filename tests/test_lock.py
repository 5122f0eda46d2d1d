"""`make install` puts the lock's exact versions in place, whatever pip would pick today."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from packaging.version import Version

from tests.lock_files import NOT_LOCKED, locked, stack


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
