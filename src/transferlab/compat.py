"""Every use of another library's private API, each in one small function with its reason.

Nothing else in the package reads an underscored attribute of Python, numpy, OmegaConf,
torch, Lightning or timm, or patches `sys.modules` or `torch.Tensor`. tests/test_compat.py
asserts what each function here relies on, so an upstream release that moves it fails
there, by name, instead of silently in a run.

Nothing heavy is imported at module level: the torch-free config checks and the start-up
code use this module before torch loads; each function imports what it touches.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

# --- CPython -----------------------------------------------------------------------------


def run_exit_hooks_now() -> bool:
    """Do what interpreter exit does before its teardown; False (nothing done) if unable.

    CPython's exit first calls `threading._shutdown` (thread pools' threading-exit hooks,
    then a join of the non-daemon threads; joining alone hangs on an idle torch.compile or
    concurrent.futures worker), then the atexit hooks, which `_run_exitfuncs` also clears.
    runs.startup.exit_fast does this early so it can skip the teardown after it.
    """
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is None:  # another Python implementation: exit the normal way
        return False
    shutdown()
    atexit._run_exitfuncs()
    return True


@contextlib.contextmanager
def module_hidden(name: str) -> Iterator[None]:
    """Inside, `import <name>` fails at once with ImportError, unless it was imported before.

    A `None` entry in `sys.modules` is Python's "import blocked" marker. models/timm_lib.py
    hides wandb while timm loads: timm.utils.summary probes `import wandb` at import time
    (0.3 s of every run's start-up on 2 CPU cores, timm 1.0) for a helper never called here.
    """
    hide = name not in sys.modules
    if hide:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if hide:
            del sys.modules[name]


# --- numpy -------------------------------------------------------------------------------


def numpy_array_reconstructor() -> Callable:
    """numpy's `multiarray._reconstruct`: every pickled ndarray names it as its maker.

    data/packaged.py's restricted unpickler must hand it out for the name in the file.
    numpy 2 moved it from numpy.core to numpy._core; pickles keep naming either path.
    """
    import importlib

    import numpy as np

    core = "numpy._core" if int(np.__version__.split(".")[0]) >= 2 else "numpy.core"
    return importlib.import_module(f"{core}.multiarray")._reconstruct


# --- OmegaConf (Hydra's config library) --------------------------------------------------


def config_node(cfg: Any, key: str) -> Any:
    """The node stored under `key` of a DictConfig, its interpolation or ??? unresolved.

    OmegaConf 2.3 has no public accessor for a child node: `cfg[key]` resolves
    interpolations (and raises on `???`), which the typo check's walk over keys must not do.
    """
    return cfg._get_node(key)


# --- torch -------------------------------------------------------------------------------


def non_persistent_buffers(module: Any) -> set[str]:
    """Names of `module`'s own buffers registered with `persistent=False`.

    torch 2.x keeps no public list of them; state_dict() tells them only by omission, after
    state-dict hooks have run. features.extract re-registers a backbone's buffers on itself
    and must keep each buffer's persistence.
    """
    return set(module._non_persistent_buffers_set)


@contextlib.contextmanager
def tensor_methods_skipped_on_meta(names: Iterable[str]) -> Iterator[None]:
    """Inside, each named in-place `torch.Tensor` method returns a meta tensor unchanged.

    Weight init on meta tensors goes through slow decompositions and only costs time (it
    never changes a shape); models.measure_facts builds hundreds of networks on meta.
    `torch.Tensor` is patched process-wide, so this is for measuring tools, never a run.
    """
    import torch

    saved = {name: getattr(torch.Tensor, name) for name in names}

    def skipping(method: Callable) -> Callable:
        def call(self, *args, **kwargs):
            return self if self.is_meta else method(self, *args, **kwargs)

        return call

    for name, method in saved.items():
        setattr(torch.Tensor, name, skipping(method))
    try:
        yield
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


def stateful_while_training() -> tuple[type, ...]:
    """Module types whose output depends on more than their input in training mode.

    torch's private bases `_DropoutNd` and `_BatchNorm` cover every dropout (1d/2d/3d,
    Alpha) and batch norm (1d/2d/3d, Sync, Lazy); listing the public classes would miss the
    next one torch adds. The prefix cache refuses a prefix holding one in training mode.
    """
    from torch import nn

    return (nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm)


# --- Hugging Face datasets ---------------------------------------------------------------


def hf_fingerprint(dataset: Any) -> str:
    """A `datasets.Dataset`'s `_fingerprint`: a hash of what it was made from, the same for
    every load of one saved dataset; the library has no public name for it. The feature
    cache keys an HF split on it instead of reading every image."""
    return dataset._fingerprint


# --- timm --------------------------------------------------------------------------------


def timm_checkpoint_filter(model: Any) -> Callable | None:
    """The `checkpoint_filter_fn(state_dict, model)` of a timm model's architecture module.

    timm 1.0 passes it to its own loader inside each architecture's builder; there is no
    public lookup from a built model. It adapts a file to the model (e.g. a ViT's position
    embedding to another image size). None where the architecture has none.
    """
    return getattr(sys.modules[type(model).__module__], "checkpoint_filter_fn", None)


# --- Lightning ---------------------------------------------------------------------------


def route_ddp_children(command: Callable[[int], tuple[Sequence[str], str]]) -> None:
    """Lightning's DDP launcher starts rank i's process with `command(i)` (argv, cwd).

    Under Hydra, Lightning 2.x builds that command with `_hydra_subprocess_cmd`, which
    re-runs the whole sweep under `-m` (lightning-hydra-template issues 90, 226, 393).
    The launchers look the name up in their module at call time: rebinding it there is
    enough. Both fabric's and the Trainer's module bound it at import; the Trainer's is used.
    """
    from lightning.fabric.strategies.launchers import subprocess_script as fabric_launcher
    from lightning.pytorch.strategies.launchers import subprocess_script as trainer_launcher

    fabric_launcher._hydra_subprocess_cmd = command
    trainer_launcher._hydra_subprocess_cmd = command


@functools.cache
def _link_hook_checkpoint() -> type:
    from lightning.pytorch.callbacks import ModelCheckpoint

    class LinkHookCheckpoint(ModelCheckpoint):
        """Lightning's ModelCheckpoint whose save_last="link" step calls `link_last`.

        Lightning 2.6 offers no public hook for how last.ckpt is written: link mode calls
        the private `_link_checkpoint(trainer, filepath, linkpath)`, and what a subclass
        needs to decide (which step the newest file holds, how to write one in full) is
        private too. They are renamed here; runs.checkpoints uses only these names.
        """

        def link_last(self, trainer: Any, filepath: str, linkpath: str) -> None:
            """How last.ckpt (`linkpath`) follows the file just saved (`filepath`)."""
            super()._link_checkpoint(trainer, filepath, linkpath)

        def _link_checkpoint(self, trainer: Any, filepath: str, linkpath: str) -> None:
            self.link_last(trainer, filepath, linkpath)

        @property
        def saved_step(self) -> int:
            """The global step of the last file this callback saved."""
            return self._last_global_step_saved

        def save_file(self, trainer: Any, filepath: str) -> None:
            """Write the whole checkpoint to `filepath`, as a top-k save does."""
            self._save_checkpoint(trainer, filepath)

    # Named as if defined at module level, so pickle finds it through __getattr__ below.
    LinkHookCheckpoint.__module__, LinkHookCheckpoint.__qualname__ = __name__, "LinkHookCheckpoint"
    return LinkHookCheckpoint


def __getattr__(name: str) -> Any:
    # `compat.LinkHookCheckpoint` imports Lightning only when first asked for.
    if name == "LinkHookCheckpoint":
        return _link_hook_checkpoint()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- Optuna ------------------------------------------------------------------------------


def optuna_storage(study: Any) -> Any:
    """The storage a `optuna.Study` reads and writes.

    Optuna 4/5 keep it as `study._storage` with no public accessor; search.study builds
    a second Study on the same storage (a per-trial seeded sampler) and sends heartbeats.
    """
    return study._storage


def optuna_trial_id(study: Any, number: int) -> int:
    """The storage's id of trial `number` of `study`, which `optuna.trial.Trial` takes.

    Optuna 4/5 expose trials by number but their storage id only as `FrozenTrial._trial_id`;
    a trial run by a Hydra job is found again by its number (the job number).
    """
    storage = study._storage
    return storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
