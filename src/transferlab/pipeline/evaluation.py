"""eval.py: test a checkpoint the way it was trained, on its own data or on `data=...`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig

from transferlab.checks.data import class_order, other_class_count
from transferlab.data.image_folder import WholeFolderAsTest
from transferlab.models.classifier import permute_outputs
from transferlab.module import load_run
from transferlab.pipeline.building import _metrics, build_datamodule, build_trainer, to_dict
from transferlab.runs import startup

log = logging.getLogger("transferlab")


def evaluate(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Test a checkpoint, on its own data or on `data=...`; returns the fields of summary.json."""
    ckpt = Path(cfg.ckpt_path)  # checks.commands.validate_eval checked that it exists
    module = load_run(ckpt)  # from the handle validate_eval's header check opened
    hp = module.hparams
    data_cfg = to_dict(cfg.data) if cfg.get("data") else hp["data"]
    source = instantiate(data_cfg["source"])
    if len(source.classes) != hp["num_classes"]:
        target = data_cfg["source"].get("_target_")
        raise other_class_count(hp["num_classes"], target, len(source.classes), ckpt)
    if order := class_order(list(hp.get("classes") or source.classes), source.classes, ckpt):
        log.info(
            "The data's classes %s are the checkpoint's %s in another order: its outputs are "
            "mapped to the data's order.",
            list(source.classes),
            list(hp["classes"]),
        )
        permute_outputs(module.net, order)
        hp["classes"] = list(source.classes)
    if (cfg.get("eval") or {}).get("split") == "all":
        source = WholeFolderAsTest(source)
    seed = data_cfg.get("seed", cfg.seed)
    datamodule = build_datamodule(data_cfg, source, module.preprocess, cfg.batch_size, seed)
    pictures = None
    if (cfg.get("visualize") or {}).get("enabled"):
        from transferlab.runs.visualize import ModelPictures  # grad-cam, sklearn: on demand

        pictures = ModelPictures(to_dict(cfg.visualize), module, seed)  # records the test pass
    trainer = build_trainer(cfg, output_dir, extra=[pictures] if pictures else None)
    startup.gc_after_startup()
    trainer.test(module, datamodule=datamodule)
    if pictures is not None:
        pictures.save(output_dir / "plots")
    trainable, total = module.param_counts()
    return {
        "metrics": _metrics(trainer),
        "params": {"trainable": trainable, "total": total},
        "epochs": 0,
        "checkpoint": str(ckpt.resolve()),
    }
