"""The size images are fed to the network, decided once from the config, before torch loads.

`data.image_size` wins when a config sets it (digits and MNIST choose 64 px for pretrained
backbones on purpose: CPU speed). Left null, a network that loads weights gets the size
the weights were made for (torchvision AlexNet/VGG: 224; a timm model: its pretrained
config; a run's checkpoint: the size it was trained at), and a network trained from
scratch reads the data at its native size. The config checks refuse a size the model
cannot take from this answer, and the builder uses the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transferlab import modes
from transferlab.checks import facts as model_facts
from transferlab.checks import tensor_headers

# Native image sizes of the datasets a source builds (None: files of varying size); a test
# ties them to the sources' own `image_size`.
NATIVE_SIZES = {
    "digits": 8,
    "mnist": 28,
    "fashion_mnist": 28,
    "cifar10": 32,
    "svhn": 32,
    "flowers102": None,
    "image_folder": None,
    # torchvision sets by class name (data=torchvision data.source.name=...)
    "CIFAR10": 32,
    "CIFAR100": 32,
    "STL10": 96,
    "EuroSAT": 64,
    "KMNIST": 28,
    "EMNIST": 28,
    "QMNIST": 28,
    "MNIST": 28,
    "FashionMNIST": 28,
    "USPS": 16,
    "SVHN": 32,
}


@dataclass(frozen=True)
class InputSize:
    """Square side in pixels (None: left to the built network) and where it came from."""

    pixels: int | None
    origin: str

    def describe(self, built: int | None) -> str:
        """The log line, given the size the built network's preprocessing settled on."""
        shown = f"{built} px" if built else "each image's own size"
        return f"Input size: {shown} ({self.origin})."


def dataset_name(data: Any) -> str | None:
    """The dataset a `data` config reads: digits, mnist, cifar10... or image_folder."""
    source = data.get("source") or {}
    target = str(source.get("_target_", ""))
    if target.endswith("ImageFolderSource"):
        return "image_folder"
    if target.endswith(".Digits"):
        return "digits"
    if target.endswith("packaged.Mnist"):
        return "mnist"
    name = source.get("name")
    return str(name) if name is not None else None


def loads_weights(cfg: Any) -> bool:
    """Whether the network starts from weights (mode=scratch never loads any)."""
    model = cfg.model
    return modes.of(cfg).loads_weights and bool(model.get("pretrained") or model.get("weights"))


def resolve(cfg: Any) -> InputSize:
    """The input size of a composed training config, and why it is that size."""
    size = cfg.data.get("image_size")
    if size is not None:
        return InputSize(
            int(size), f"data.image_size={size}, set by the data config or an override"
        )
    model = cfg.model
    if loads_weights(cfg):
        if found := _trained_size(model):
            return found
        if model_facts.kind_of(model):  # a timm tag whose weights' size only timm knows
            return InputSize(None, f"the pretrained config of model={model.get('name')}")
    dataset = dataset_name(cfg.data)
    if native := NATIVE_SIZES.get(dataset or ""):
        return InputSize(native, f"{dataset}'s native size")
    return InputSize(None, f"{dataset or 'the data'} has no native size")


def _trained_size(model: Any) -> InputSize | None:
    """The size a run's checkpoint was trained at, else a library model's pretrained size."""
    if weights := model.get("weights"):
        file = Path(str(weights)).expanduser()
        header = tensor_headers.read_header(file) if file.is_file() else None
        if header is not None and header.is_transferlab_checkpoint:
            trained = (header.hparams.get("preprocess") or {}).get("image_size")
            if trained:
                return InputSize(int(trained), f"the size {file.name} was trained at")
    name = model.get("name")
    facts = model_facts.lookup(model)
    tagged = "." in str(name)  # a timm tag picks weights whose size may differ from the arch's
    if facts and facts.get("input_size") and not tagged:
        why = f"model={name}'s pretrained input size" + (
            " (the file records none)" if weights else ""
        )
        return InputSize(int(facts["input_size"]), why)
    return None
