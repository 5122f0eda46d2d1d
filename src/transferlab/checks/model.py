"""Checks of the model group: the name exists, images are large enough, weights fit."""

from __future__ import annotations

import difflib
from pathlib import Path

from omegaconf import DictConfig

from transferlab import input_size, model_facts
from transferlab.errors import UserError
from transferlab.weights_files import tensor_headers


def known_name(model: DictConfig) -> None:
    """Check a timm or torchvision name against the names the installed library builds."""
    kind = model_facts.kind_of(model)
    name = model_facts.arch(model.get("name"))
    known = model_facts.names(kind) if kind else None
    if not known or name in known:
        return  # (no timm found without importing it: the builder checks the name)
    unknown = unknown_timm_model if kind == "timm" else unknown_torchvision_model
    raise unknown(name, sorted(known))


def unknown_timm_model(name: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"Close names: {', '.join(close)}. " if close else ""
    return UserError(
        f"Unknown timm model {name!r}. {hint}Pick a name from timm.list_models() "
        f"(e.g. model=timm model.name={close[0] if close else 'resnet18'}), or "
        "model=efficientnet_lite0 (or efficientnet_lite1, efficientnet_lite2) for offline "
        "ImageNet weights."
    )


def unknown_torchvision_model(name: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f"Close names: {', '.join(close)}. " if close else ""
    return UserError(
        f"Unknown torchvision model {name!r}. {hint}Supported: {', '.join(known)}; for any "
        "other network use model=timm model.name=<name>."
    )


def weights_exist(weights) -> None:
    if weights and not Path(str(weights)).expanduser().is_file():
        raise UserError(
            f"model.weights={weights} does not exist. Give a .pth/.pt/.safetensors file or a "
            f"run's checkpoint, e.g. model.weights=logs/train/runs/<run>/checkpoints/best.ckpt, "
            f"or model.weights=null."
        )


def check_unfreeze(unfreeze, groups: list[str]) -> int:
    """`model.unfreeze` as a count of layer groups, or UserError naming the groups there are."""
    n = len(groups)
    if unfreeze is None or not 0 <= int(unfreeze) <= n:
        raise UserError(
            f"model.unfreeze={unfreeze} is out of range: this backbone has {n} layer groups: "
            f"{', '.join(groups)}. Choose 0 (head only) to {n} (everything), "
            f"e.g. model.unfreeze={min(2, n)}."
        )
    return int(unfreeze)


def too_small(size: int, name, reason: str, origin: str = "") -> UserError:
    chosen = f" ({origin})" if origin else ""
    return UserError(
        f"Images of {size}x{size} px{chosen} are too small for model={name} ({reason}). Give a "
        f"larger size, e.g. data.image_size=224 (null: the size its weights were made for), "
        f"or pick a model made for small images such as model=cnn."
    )


def large_enough(size: input_size.InputSize, model: DictConfig) -> None:
    facts = model_facts.lookup(model)
    smallest = facts and facts.get("min_size")
    if size.pixels and smallest and size.pixels < smallest:
        reason = f"it needs at least {smallest} px"
        raise too_small(size.pixels, model.get("name"), reason, size.origin)


def weights_fit(file: Path, model: DictConfig) -> None:
    """A weights file that is broken, or is for another architecture, is refused by its header."""
    header = tensor_headers.read_header(file)
    if header is None:
        return
    facts = model_facts.lookup(model)
    if header.is_transferlab_checkpoint:
        _checkpoint_fits(file, header, model, facts)
        return
    if facts is None:
        return
    own = model_facts.without_classifier(header.shapes, facts["classifier"])
    if model_facts.fingerprints(own)[0] == facts["keys"]:
        return  # the same tensors by name: shapes are checked (or adapted) when it loads
    if found := model_facts.identify(header.shapes):
        raise UserError(
            f"The weights {str(file)!r} do not fit model {model.get('name')!r}: the file holds "
            f"the tensors of {_few(found)} ({len(header.shapes)} tensors). The file is for "
            f"another architecture; pass a state_dict saved from {model.get('name')}, or choose "
            f"the model the file was saved from, e.g. {_choose(found[0])}."
        )


def _choose(name: str) -> str:
    """The command-line choice that builds library model `name`."""
    if name not in model_facts.TORCHVISION_NAMES:
        return f"model=timm model.name={name}"
    return "model=alexnet" if name == "alexnet" else f"model=vgg16 model.name={name}"


def _checkpoint_fits(file: Path, header, model: DictConfig, facts: dict | None) -> None:
    """A run's checkpoint must hold this model's backbone (its head may differ)."""
    written = header.hparams.get("model") or {}
    prefix = tensor_headers.BACKBONE_PREFIX
    body = {k[len(prefix) :]: v for k, v in header.shapes.items() if k.startswith(prefix)}
    if not body:
        return  # written without its backbone (features.save_backbone=false): the loader says
    if facts is not None:
        fits = model_facts.fingerprints(body)[0] == facts["keys"]
    else:  # a scratch net: another builder, or another number of blocks, has other tensors
        groups = model_facts.layer_groups(written)
        fits = written.get("_target_") in (None, model.get("_target_")) and groups in (
            None,
            model_facts.layer_groups(model),
        )
    if not fits:
        raise UserError(
            f"The checkpoint {str(file)!r} does not fit this model's backbone: it was written "
            f"by a run of {_describe(written, model)}, and this run builds "
            f"{_describe(model, written)}. Use the same model= settings as the run that wrote "
            f"it (model={written.get('name', '?')}), or a checkpoint of this model."
        )


def _describe(model, other) -> str:
    """model=<name>, with its layer groups when the name alone does not tell the two apart."""
    name = model.get("name", "?")
    groups = model_facts.layer_groups(model)
    if name != other.get("name", "?") or groups is None:
        return f"model={name}"
    return f"model={name} (layer groups {', '.join(groups)})"


def _few(names: list[str], limit: int = 3) -> str:
    more = f" (+{len(names) - limit} more with the same tensors)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more
