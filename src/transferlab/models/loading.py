"""Putting a file's tensors into a network strictly: every mismatch is named, none is skipped.

A library's own state_dict must fit the backbone exactly (less the classifier the new head
replaces); a transferlab checkpoint must fit the backbone, its head may differ.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import torch
from torch import nn

from transferlab.errors import UserError
from transferlab.models.weights import read_state_dict
from transferlab.weights_files.tensor_headers import NET_PREFIX

log = logging.getLogger("transferlab")


def _few(keys: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown} (+{len(keys) - limit} more)" if len(keys) > limit else shown


def _mismatches(
    own: dict[str, torch.Tensor], given: dict[str, torch.Tensor]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, shape-mismatched) keys of `given` against `own`."""
    # BatchNorm fills in a missing counter itself, and older files lack it.
    missing = [k for k in own if k not in given and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in given if k not in own]
    shapes = [
        f"{k} {tuple(given[k].shape)} in the file, {tuple(own[k].shape)} in the model"
        for k in own
        if k in given and given[k].shape != own[k].shape
    ]
    return missing, unexpected, shapes


def _describe(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys ({_few(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys ({_few(unexpected)})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatches ({_few(shapes, 3)})")
    return "; ".join(parts)


def load_native_weights(
    module: nn.Module,
    state_dict: dict[str, torch.Tensor],
    *,
    drop: Sequence[str],
    model_name: str,
    source: str,
) -> dict[str, tuple[int, ...]]:
    """Load a library's own state_dict strictly, less the original classifier (`drop`).

    Returns the shapes of the classifier tensors left out, by name (for the log).
    """
    kept = {k: v for k, v in state_dict.items() if not k.startswith(tuple(drop))}
    problems = _mismatches(module.state_dict(), kept)
    if any(problems):
        raise UserError(
            f"The weights {source!r} do not fit model {model_name!r}: {_describe(*problems)}. "
            f"The file is for another architecture; pass a state_dict saved from {model_name} "
            f"(e.g. torch.save(model.state_dict(), 'weights.pth')), or choose the model= that "
            "the file was saved from."
        )
    module.load_state_dict(kept, strict=False)
    return {k: tuple(v.shape) for k, v in state_dict.items() if k not in kept}


def load_transferlab_checkpoint(classifier: nn.Module, path: str | os.PathLike) -> list[str]:
    """Load a transferlab checkpoint's network (NET_PREFIX); returns the head keys left fresh.

    The backbone must match exactly; head tensors whose shape differs (another class count
    or head layout) keep their fresh initialisation.
    """
    n = len(NET_PREFIX)
    state = {k[n:]: v for k, v in read_state_dict(path).items() if k.startswith(NET_PREFIX)}
    own = classifier.state_dict()
    fresh = [k for k in own if k.startswith("head.") and _differs(own[k], state.get(k))]
    body_own = {k: v for k, v in own.items() if not k.startswith("head.")}
    body_file = {k: v for k, v in state.items() if not k.startswith("head.")}
    problems = _mismatches(body_own, body_file)
    if not state or any(problems):
        found = _describe(*problems) if state else f"no tensors under {NET_PREFIX!r}"
        raise UserError(
            f"The checkpoint {str(path)!r} does not fit this model's backbone: {found}. It was "
            "written for another model or input channel count; use the same model= (and "
            "data=) as the run that wrote it, or a checkpoint of this model."
        )
    kept = {k: v for k, v in state.items() if k in own and k not in fresh}
    classifier.load_state_dict(kept, strict=False)
    if fresh:
        log.info("Loaded %s; re-initialised head tensors (new shape): %s", path, ", ".join(fresh))
    else:
        log.info("Loaded %s; every tensor matched", path)
    return fresh


def _differs(own: torch.Tensor, given: torch.Tensor | None) -> bool:
    return given is None or given.shape != own.shape
