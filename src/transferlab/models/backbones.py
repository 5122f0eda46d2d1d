"""Pretrained backbones from timm and torchvision behind the uniform `Classifier` interface.

Both builders return a Classifier whose backbone yields pooled features, whose head is
new (`build_head`), whose layer groups run input -> output over every backbone parameter,
and whose `data_config` is the preprocessing the weights were trained with.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping

import torchvision
from torch import nn

from transferlab import compat, model_facts
from transferlab.checks.model import unknown_timm_model, unknown_torchvision_model
from transferlab.errors import UserError
from transferlab.model_facts import TORCHVISION_NAMES
from transferlab.models import packaged_lite
from transferlab.models.classifier import Classifier, build_head
from transferlab.models.groups import timm_groups, torchvision_groups
from transferlab.models.loading import load_native_weights
from transferlab.models.timm_lib import timm
from transferlab.models.weights import (
    download_failed,
    read_weights,
    timm_pretrained_overlay,
    torchvision_pretrained_state_dict,
)
from transferlab.weights_files import published

log = logging.getLogger("transferlab")


def timm_classifier(
    *,
    name: str,
    num_classes: int,
    in_chans: int,
    image_size: int | None,
    head: Mapping,
    pretrained: bool,
    weights: str | None,
) -> Classifier:
    """A timm model (any `timm.list_models()` name) as backbone, with a new head.

    `weights` (a file) overrides `pretrained`; `name=efficientnet_lite0|1|2` use the packaged
    ImageNet weights. Pretrained networks keep 3 input channels; a scratch one takes `in_chans`.
    """
    # keep a tag (resnet18.a1_in1k): timm picks those weights by it
    arch = model_facts.PACKAGED_ARCHS.get(name, name)
    _check_timm_name(arch)
    chans = 3 if pretrained or weights else in_chans
    kwargs: dict = {"num_classes": 0, "in_chans": chans}
    cfg = timm.models.get_pretrained_cfg(arch)
    if image_size and cfg is not None and cfg.fixed_input_size:
        kwargs["img_size"] = image_size  # ViT-like models size position embeddings by it
    if weights:
        model = _create(arch, **kwargs)
        state, unwrapped = _timm_file_state(model, weights)
        head = _load_timm(model, state, name, source=str(weights))
        log.info(published.loaded(str(weights), unwrapped, head, num_classes))
    elif pretrained and name in packaged_lite.PACKAGED:
        model = _create(arch, **kwargs)
        state = packaged_lite.timm_state_dict(name)
        _load_timm(model, state, name, source=str(packaged_lite.packaged_weights_path(name)))
    elif pretrained:
        model = _timm_pretrained(name, arch, cfg, kwargs)
    else:
        model = _create(arch, **kwargs)
    # Models with a pre-logits layer (MobileNetV3 conv_head) output more than num_features.
    num_features = getattr(model, "head_hidden_size", None) or model.num_features
    return Classifier(
        backbone=model,
        head=_head(num_features, num_classes, head),
        num_features=num_features,
        groups=timm_groups(model),
        data_config=_timm_data_config(model, chans, image_size),
    )


def _create(arch: str, **kwargs) -> nn.Module:
    """timm.create_model; a model built for one input size may refuse the size asked for."""
    try:
        return timm.create_model(arch, **kwargs)
    except (AssertionError, ValueError) as err:
        if "img_size" not in kwargs:
            raise
        size = kwargs["img_size"]
        raise UserError(
            f"model={arch} cannot be built for {size}x{size} px images ({err}). Use the size "
            "its weights were made for (data.image_size=null), or a size it divides evenly "
            "into patches and windows."
        ) from None


def _check_timm_name(arch: str) -> None:
    if timm.is_model(arch):
        return
    raise unknown_timm_model(arch, timm.list_models())


def _timm_pretrained(name: str, arch: str, cfg, kwargs: dict) -> nn.Module:
    if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
        raise UserError(
            f"timm has no pretrained weights for model {name!r}. Set model.pretrained=false "
            "to train it from scratch, give model.weights=<file>, or pick a model with "
            "weights from timm.list_models(pretrained=True)."
        )
    overlay = timm_pretrained_overlay(name, cfg)
    try:
        return _create(arch, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
    except OSError as err:  # download errors (HTTP, connection, missing entry) are OSErrors
        raise download_failed(name, err) from err


def _timm_file_state(model: nn.Module, path: str) -> tuple[dict, list[str]]:
    """A weights file's tensors in the model's own layout (timm's filter adapts e.g. ViT
    size), and how they were unwrapped from a published layout (`read_weights`)."""
    state, unwrapped = read_weights(path)
    if "_conv_stem.weight" in state:  # EfficientNet-PyTorch (lukemelas) names, as packaged
        state = packaged_lite.to_timm_names(state, packaged_lite.stage_sizes(model))
    filter_fn = compat.timm_checkpoint_filter(model)
    try:
        return (filter_fn(state, model) if filter_fn else state), unwrapped
    except (KeyError, IndexError, ValueError, RuntimeError, AttributeError, TypeError):
        return state, unwrapped  # another architecture's file: the strict load names what differs


def _load_timm(model: nn.Module, state: dict, name: str, source: str) -> dict:
    """Strict load, less the original classifier that the new head replaces (its shapes)."""
    classifier = model.pretrained_cfg.get("classifier") or ()
    classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    drop = tuple(f"{c}." for c in classifier)
    return load_native_weights(model, state, drop=drop, model_name=name, source=source)


def _timm_data_config(model: nn.Module, chans: int, image_size: int | None) -> dict:
    cfg = timm.data.resolve_data_config({}, model=model)
    _, height, width = cfg["input_size"]
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if chans != len(mean):  # a scratch net on grey images: one statistic for the one channel
        mean, std = (sum(mean) / len(mean),) * chans, (sum(std) / len(std),) * chans
    size = (chans, image_size, image_size) if image_size else (chans, height, width)
    return {"input_size": size, "mean": mean, "std": std, "interpolation": cfg["interpolation"]}


def torchvision_classifier(
    *,
    name: str,
    num_classes: int,
    in_chans: int,
    image_size: int | None,
    head: Mapping,
    pretrained: bool,
    weights: str | None,
) -> Classifier:
    """torchvision AlexNet/VGG up to fc7 as backbone, with a new head in place of fc8.

    Always 3 input channels (the datamodule repeats grey images); `in_chans` is unused.
    """
    if name not in TORCHVISION_NAMES:
        raise unknown_torchvision_model(name, list(TORCHVISION_NAMES))
    native = torchvision.models.get_model(name, weights=None)
    imagenet = torchvision.models.get_model_weights(name).DEFAULT
    backbone, fc8 = _torchvision_backbone(native)
    if weights:
        (state, unwrapped), source = read_weights(weights), str(weights)
    elif pretrained:
        state, source = torchvision_pretrained_state_dict(name, imagenet), imagenet.url
        unwrapped = []
    if weights or pretrained:
        drop = (f"classifier.{fc8}.",)
        head = load_native_weights(backbone, state, drop=drop, model_name=name, source=source)
        log.info(published.loaded(source, unwrapped, head, num_classes))
    num_features = native.classifier[fc8].in_features
    return Classifier(
        backbone=backbone,
        head=_head(num_features, num_classes, head),
        num_features=num_features,
        groups=torchvision_groups(backbone, per_conv=name == "alexnet"),
        data_config=_torchvision_data_config(imagenet, image_size),
    )


def _torchvision_backbone(native: nn.Module) -> tuple[nn.Sequential, int]:
    """features + avgpool + flatten + classifier up to fc7's ReLU; and fc8's index.

    Module names match torchvision's, so its state_dicts load as they are (minus fc8).
    """
    layers = list(native.classifier.named_children())
    fc8 = max(i for i, (_, m) in enumerate(layers) if isinstance(m, nn.Linear))
    kept = layers[:fc8]
    while isinstance(kept[-1][1], nn.Dropout):
        kept.pop()
    backbone = nn.Sequential(
        OrderedDict(
            features=native.features,
            avgpool=native.avgpool,
            flatten=nn.Flatten(1),
            classifier=nn.Sequential(OrderedDict(kept)),
        )
    )
    return backbone, fc8


def _torchvision_data_config(imagenet, image_size: int | None) -> dict:
    preset = imagenet.transforms()
    size = image_size or preset.crop_size[0]
    return {
        "input_size": (3, size, size),
        "mean": tuple(preset.mean),
        "std": tuple(preset.std),
        "interpolation": preset.interpolation.value,
    }


def _head(num_features: int, num_classes: int, head: Mapping) -> nn.Sequential:
    return build_head(
        num_features,
        num_classes,
        hidden=list(head.get("hidden", [])),
        dropout=float(head.get("dropout", 0.0)),
        activation_name=str(head.get("activation", "relu")),
    )
