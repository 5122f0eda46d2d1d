"""Each backbone built as train.py builds it, its features through the feature cache, scored.

A backbone's config is composed from conf/train.yaml with Hydra's compose API: the rank
command's data.*, features.*, paths.* and seed overrides, then `model=<it>` and
`mode=feature_extract` (`mode=scratch` at the pretrained input size for a random init), so
its preprocessing, weights and feature-cache key are exactly a feature-extract run's: a
second ranking, or a later `train.py mode=feature_extract` on the same data, reads them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import lightning as L
import numpy as np
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from transferlab import input_size, modes, pipeline
from transferlab.checks.commands import validate_train
from transferlab.errors import UserError
from transferlab.features import training as feature_training
from transferlab.module import ClassifierModule, load_run
from transferlab.ranking import scores
from transferlab.ranking.candidates import SCORES, Candidate, parse
from transferlab.ranking.table import Row, first_sentence, ranked, write
from transferlab.runs import startup
from transferlab.weights_files import tensor_headers

log = logging.getLogger("transferlab")

SPLITS = ("train", "val")  # the scores read these; test stays untouched for fine-tuning
PASSED = ("data", "features", "paths", "seed")  # command-line keys each backbone's config gets


@dataclass(frozen=True)
class Features:
    """A backbone's train and val features, how long they took, and whether all were cached."""

    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    seconds: float
    cached: bool


def run(cfg: DictConfig, conf_dir: str) -> list[Row]:
    """rank.py: every backbone ranked (or skipped with its reason), table printed and saved."""
    startup.gc_after_startup()
    started = time.perf_counter()
    passed = passed_overrides(list(HydraConfig.get().overrides.task))
    rows = [
        _row(item, i, len(cfg.backbones), cfg, conf_dir, passed)
        for i, item in enumerate(cfg.backbones, 1)
    ]
    rows = ranked(rows, cfg.rank.score)
    data = HydraConfig.get().runtime.choices.get("data", "?")
    total_s = time.perf_counter() - started
    folder = Path(HydraConfig.get().runtime.output_dir)
    text = write(folder, rows, cfg.rank.score, data, total_s)
    log.info("Backbones ranked by %s on %s (%.1f s):\n%s", cfg.rank.score, data, total_s, text)
    log.info("Wrote %s and %s", folder / "ranking.md", folder / "ranking.json")
    if not any(r.rank for r in rows):
        reasons = "; ".join(f"{r.backbone}: {r.skipped}" for r in rows)
        raise UserError(
            f"No backbone could be ranked ({reasons}). Fix the reasons given, or rank "
            "backbones that work offline, e.g. backbones=[efficientnet_lite0,cnn]."
        )
    return rows


def passed_overrides(overrides: list[str]) -> list[str]:
    """The overrides of the rank command that each backbone's training config gets too."""
    return [o for o in overrides if o.lstrip("~+").split("=", 1)[0].split(".")[0] in PASSED]


def _row(item: str, i: int, n: int, cfg: DictConfig, conf_dir: str, passed: list[str]) -> Row:
    log.info("[%d/%d] %s", i, n, item)
    try:
        found = features_of(parse(item, conf_dir), passed)
    except UserError as err:
        log.warning("%s is skipped: %s", item, err)
        return Row(item, skipped=first_sentence(str(err)))
    except Exception as err:  # one backbone's crash must not cost the others their ranking
        log.exception("%s is skipped: building it or its features failed.", item)
        return Row(item, skipped=first_sentence(f"{type(err).__name__}: {err}"))
    (train_x, train_y), (val_x, val_y) = (found.splits[s] for s in SPLITS)
    row = Row(item, feature_s=round(found.seconds, 3), dim=int(train_x.shape[1]))
    row = replace(row, cached=found.cached, logme=scores.logme(train_x, train_y))
    if len(val_y):  # data.source.val_fraction=0 leaves nothing to score kNN and the probe on
        probe = OmegaConf.to_container(cfg.rank.probe, resolve=True)
        knn = scores.knn_accuracy(train_x, train_y, val_x, val_y, k=int(cfg.rank.knn_k))
        acc = scores.probe_accuracy(train_x, train_y, val_x, val_y, probe, seed=int(cfg.seed))
        row = replace(row, knn=knn, probe=acc)
    log.info(
        "%s: %s",
        item,
        ", ".join(f"{s} {getattr(row, s):.4g}" for s in SCORES if getattr(row, s) is not None),
    )
    return row


def features_of(candidate: Candidate, passed: list[str]) -> Features:
    """Build the candidate's network and take its train and val features through the cache."""
    if candidate.kind == "checkpoint":
        cfg = compose("train", overrides=passed)  # its data, features and paths; no model
        module, source = _run_checkpoint(candidate.path), instantiate(cfg.data.source)
    else:
        cfg = training_config(candidate, passed)
        validate_train(cfg)
        L.seed_everything(cfg.seed, verbose=False)  # a random init is the same every call
        source = instantiate(cfg.data.source)
        module = pipeline.build_module(cfg, source)
    images = pipeline.build_datamodule(
        cfg.data, source, module.preprocess, cfg.batch_size, cfg.seed
    )
    images.prepare_data()
    images.setup()
    feature_training.record_backbone_digest(module)  # as built: the cache key reads it
    cache = None
    if cfg.features.cache != "off":
        cache = feature_training.feature_cache(cfg, module, module.hparams["features"])
    start, splits, hits = time.perf_counter(), {}, []
    for split in SPLITS:
        before = _stamp(cache, split)
        x, y = feature_training.split_features(cfg, module, images, split, cache)
        hits.append(before is not None and _stamp(cache, split) == before)
        splits[split] = (x.numpy(), y.numpy())
    seconds, cached = time.perf_counter() - start, all(hits)
    where = f" in {cache.dir}" if cache is not None and cache.dir is not None else ""
    verb = "read cached features" if cached else "computed features"
    shapes = ", ".join(f"{s} {len(x)} x {x.shape[1]}" for s, (x, _) in splits.items())
    log.info("%s: %s (%s)%s in %.1f s", candidate.item, verb, shapes, where, seconds)
    return Features(splits, seconds, cached)


def training_config(candidate: Candidate, passed: list[str]) -> DictConfig:
    """The train.py config that builds the candidate, as `python train.py <overrides>`."""
    model = [*passed, f"model={candidate.model}"]
    if candidate.kind == "weights":
        model.append(f"model.weights={_quoted(candidate.path)}")
    cfg = compose("train", overrides=[*model, "mode=feature_extract"])
    if candidate.kind != "random" and modes.starts_from_weights(cfg):
        return cfg
    # Random init (asked for, or the config has no weights) reads the size the weights
    # would: a floor at digits' native 8 px would measure the size, not the weights.
    pixels = input_size.resolve(cfg).pixels
    size = f"data.image_size={pixels if pixels else 'null'}"
    return compose("train", overrides=[*model, "mode=scratch", size])


def _quoted(path: str) -> str:
    return "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _run_checkpoint(path: str) -> ClassifierModule:
    """The network a run trained, rebuilt from its checkpoint's hparams and tensors."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(
            f"The checkpoint {path} is not a file. Give a run's checkpoint, e.g. "
            "logs/train/runs/<run>/checkpoints/best.ckpt."
        )
    header = tensor_headers.read_header(file)
    if header is not None and not header.is_transferlab_checkpoint:
        raise UserError(
            f"The checkpoint {path} holds bare weights, not a transferlab run's checkpoint. "
            f"Give it with the model it fits, e.g. backbones=['resnet18={path}']."
        )
    return load_run(file)


def _stamp(cache, split: str) -> tuple[int, int] | None:
    """The cached file's identity now (None: none on disk); a recomputed file is a new one."""
    if cache is None or cache.dir is None or not cache.path(split).is_file():
        return None
    stat = cache.path(split).stat()
    return stat.st_ino, stat.st_mtime_ns
