"""Checkpoints without the backbone (`features.save_backbone=false`) for many small runs.

Such a checkpoint keeps the head, the model config (backbone name and where its weights
come from) and the backbone's weights digest. Loading it rebuilds the backbone from those
weights and accepts them only if their digest matches, so a moved or changed weights file
is reported, never silently used.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from transferlab.errors import UserError
from transferlab.features.cache import state_digest
from transferlab.weights_files.tensor_headers import BACKBONE_PREFIX as PREFIX

log = logging.getLogger("transferlab")


def drop_backbone(checkpoint: dict[str, Any]) -> None:
    """Remove the backbone tensors from a checkpoint about to be written."""
    state = checkpoint["state_dict"]
    for key in [k for k in state if k.startswith(PREFIX)]:
        del state[key]


def restore_backbone(module, checkpoint: dict[str, Any]) -> None:
    """Put the backbone tensors back into a checkpoint written without them.

    A module built with its weights (during training) gives its own; a module rebuilt from
    the checkpoint alone (eval.py) loads the weights its config names and checks the digest.
    """
    state = checkpoint["state_dict"]
    if any(k.startswith(PREFIX) for k in state):
        return
    hp = module.hparams
    digest = (hp.get("features") or {}).get("weights_digest")
    backbone = module.net.backbone if module.backbone_loaded else _rebuild_backbone(hp, digest)
    found = state_digest(backbone)
    if found != digest:
        raise UserError(
            f"This checkpoint holds no backbone (features.save_backbone=false) and the weights "
            f"that model={hp['model'].get('name')} (model.weights={hp['model'].get('weights')}) "
            f"gives now differ from those it was trained on (digest {found[:12]}, recorded "
            f"{str(digest)[:12]}): the weights file changed or moved. Put the original file "
            "back, or retrain with features.save_backbone=true for self-contained checkpoints."
        )
    state.update({PREFIX + k: v for k, v in backbone.state_dict().items()})


def complete_checkpoints(module, folder: Path) -> None:
    """Give every backbone-less checkpoint in `folder` the module's backbone, in place.

    Training on cached features writes checkpoints without the frozen backbone (it cannot
    change); with features.save_backbone=true they are made self-contained once at the end.
    A run killed before then leaves slim checkpoints, which still resume and evaluate.
    """
    import torch

    from transferlab.atomic import atomic_write, link

    completed: dict[tuple[int, int], Path] = {}  # a file's identity before -> its new version
    for path in sorted(Path(folder).glob("*.ckpt")):
        stat = path.stat()
        if (same := completed.get((stat.st_dev, stat.st_ino))) is not None:
            link(same, path)  # last.ckpt shared best.ckpt's data: it shares the new file's
            continue
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        if not any(k.startswith(PREFIX) for k in checkpoint["state_dict"]):
            restore_backbone(module, checkpoint)
            atomic_write(path, lambda f, c=checkpoint: torch.save(c, f), binary=True)
        completed[(stat.st_dev, stat.st_ino)] = path


def _rebuild_backbone(hp, digest: str | None):
    from transferlab.features.extract import read_layers
    from transferlab.models import build_model

    model = dict(hp["model"])
    log.info(
        "The checkpoint holds no backbone; loading model=%s weights (digest %s)",
        model.get("name"),
        str(digest)[:12],
    )
    try:
        net = build_model(
            model,
            num_classes=hp["num_classes"],
            in_chans=hp["in_chans"],
            image_size=hp["image_size"],
            fetch_weights=True,
        )
        if hp.get("features"):
            read_layers(net, hp["features"], head=model.get("head"))
    except UserError as err:
        raise UserError(
            f"This checkpoint holds no backbone (features.save_backbone=false), and its "
            f"weights cannot be found again: {err}"
        ) from err
    return net.backbone
