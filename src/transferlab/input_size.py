"""The size images are fed to the network, decided once from the config, before torch loads.

`data.image_size` wins when a config or an override sets it. Left null, a network that
starts from a run's checkpoint reads the size it was trained at; one that starts from a
library's weights reads the dataset's `pretrained_size` where the table gives one (digits
and MNIST: 64 px, for CPU speed), else the size its weights were made for (torchvision
AlexNet/VGG: 224; a timm model: its pretrained config); a network trained from scratch
reads the data at its native size. The config checks refuse a size the model
cannot take from this answer, and the builder uses the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab import datasets, model_facts, modes
from transferlab.weights_files import tensor_headers


@dataclass(frozen=True)
class InputSize:
    """Square side in pixels (None: left to the built network) and where it came from."""

    pixels: int | None
    origin: str

    def describe(self, built: int | None) -> str:
        """The log line, given the size the built network's preprocessing settled on."""
        shown = f"{built} px" if built else "each image's own size"
        return f"Input size: {shown} ({self.origin})."


def resolve(cfg: Any) -> InputSize:
    """The input size of a composed training config, and why it is that size."""
    size = cfg.data.get("image_size")
    if size is not None:
        return InputSize(
            int(size), f"data.image_size={size}, set by the data config or an override"
        )
    model, dataset = cfg.model, datasets.of(cfg.data)
    if modes.starts_from_weights(cfg):
        if found := _checkpoint_size(model):
            return found
        if dataset and dataset.pretrained_size:
            why = f"{dataset.name}'s size for pretrained networks"
            return InputSize(dataset.pretrained_size, why)
        if found := _library_size(model):
            return found
        if model_facts.kind_of(model):  # a timm tag whose weights' size only timm knows
            return InputSize(None, f"the pretrained config of model={model.get('name')}")
    if dataset and dataset.native_size:
        return InputSize(dataset.native_size, f"{dataset.name}'s native size")
    named = dataset.name if dataset else (cfg.data.get("source") or {}).get("name")
    return InputSize(None, f"{named or 'the data'} has no native size")


def _checkpoint_size(model: Any) -> InputSize | None:
    """The size a run's checkpoint (model.weights) was trained at."""
    if weights := model.get("weights"):
        file = Path(str(weights)).expanduser()
        header = tensor_headers.read_header(file) if file.is_file() else None
        if header is not None and header.is_transferlab_checkpoint:
            trained = (header.hparams.get("preprocess") or {}).get("image_size")
            if trained:
                return InputSize(int(trained), f"the size {file.name} was trained at")
    return None


def _library_size(model: Any) -> InputSize | None:
    """The input size a library model's pretrained weights were made for."""
    weights = model.get("weights")
    name = model.get("name")
    facts = model_facts.lookup(model)
    tagged = "." in str(name)  # a timm tag picks weights whose size may differ from the arch's
    if facts and facts.get("input_size") and not tagged:
        why = f"model={name}'s pretrained input size" + (
            " (the file records none)" if weights else ""
        )
        return InputSize(int(facts["input_size"]), why)
    return None
