"""Backbone features: which layers they come from, and one pass over a dataset to compute them.

Layers are module paths of the backbone, the names of its state_dict and layer-group table
(`blocks.4` in timm's EfficientNet, `features.10` in AlexNet, `block2` in our CNN). They are
read with forward hooks, so one mechanism serves timm, torchvision and our own networks
without tracing them or copying any weights.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from transferlab import compat
from transferlab.errors import UserError
from transferlab.models.classifier import Classifier, build_head

POOLS = ("avg", "max")


class LayerFeatures(nn.Module):
    """A backbone read at `layers`: each output pooled, optionally L2-normalised, concatenated.

    It adopts the backbone's own children and tensors instead of holding the backbone as a
    child, so state_dict keys and layer groups are exactly those of the plain backbone: a
    checkpoint of either loads into the other, and freeze policies see the same names.
    """

    def __init__(
        self,
        backbone: nn.Module,
        layers: Sequence[str] | None = None,
        pool: str = "avg",
        l2norm: bool = False,
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise UserError(
                f"Unknown features.pool={pool!r}. Choose one of {', '.join(POOLS)}, "
                "e.g. features.pool=avg."
            )
        for name, child in backbone.named_children():
            self.add_module(name, child)
        for name, param in backbone.named_parameters(recurse=False):
            self.register_parameter(name, param)
        transient = compat.non_persistent_buffers(backbone)
        for name, buffer in backbone.named_buffers(recurse=False):
            self.register_buffer(name, buffer, persistent=name not in transient)
        object.__setattr__(self, "_backbone", backbone)  # called, but not registered twice
        self.training = backbone.training
        # Underscored: the adopted children may be called `layers` or `pool` themselves.
        self._layers, self._pool, self._l2norm = list(layers or []), pool, l2norm
        self._pooled: dict[str, torch.Tensor] = {}
        for name in self._layers:
            _layer(backbone, name).register_forward_hook(self._keep(name))

    def _keep(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            # Pool at once: a later in-place op (ReLU(inplace=True)) may overwrite `output`.
            self._pooled[name] = pool_map(output, self._pool)

        return hook

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._pooled.clear()
        final = self._backbone(x)
        try:
            parts = [self._pooled[name] for name in self._layers] if self._layers else [final]
        except KeyError as err:
            raise UserError(
                f"Feature layer {err.args[0]!r} exists but does not run in the backbone's "
                "forward pass. Choose layers that compute the features, e.g. the blocks "
                "listed in the layer-group table at the start of the log."
            ) from err
        finally:
            self._pooled.clear()
        if self._l2norm:
            parts = [F.normalize(p, dim=1) for p in parts]
        return torch.cat(parts, dim=1)

    def train(self, mode: bool = True) -> LayerFeatures:
        super().train(mode)
        self._backbone.training = mode  # its children are ours, its own flag is not
        return self


def pool_map(output: torch.Tensor | Sequence[torch.Tensor], pool: str) -> torch.Tensor:
    """(N, C, H, W) maps or (N, tokens, C) sequences -> (N, C) by global average or max."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    if output.ndim == 2:
        return output
    dims = (2, 3) if output.ndim == 4 else (1,)
    return output.mean(dims) if pool == "avg" else output.amax(dims)


def _layer(backbone: nn.Module, name: str) -> nn.Module:
    try:
        return backbone.get_submodule(str(name))
    except AttributeError:
        pass
    names = [n for n, _ in backbone.named_modules() if n and n.count(".") <= 1]
    raise UserError(
        f"Unknown feature layer {name!r}: features.layers are module paths of the backbone. "
        f"This one has {', '.join(names[:40])}{' ...' if len(names) > 40 else ''}. "
        "Pick a few, e.g. features.layers=[blocks.4,blocks.5,blocks.6] for EfficientNet."
    )


def read_layers(net: Classifier, features: Mapping, head: Mapping | None) -> None:
    """Make `net` read `features.layers` (pooled, L2-normalised if asked) instead of its output.

    The head is rebuilt when the feature width changes; with neither layers nor l2norm set
    the network stays as it is.
    """
    layers, l2norm = features.get("layers"), bool(features.get("l2norm"))
    if not layers and not l2norm:
        return
    if isinstance(layers, str):
        layers = [layers]
    net.backbone = LayerFeatures(net.backbone, layers, features.get("pool", "avg"), l2norm)
    width = _output_width(net)
    if width != net.num_features:
        head = dict(head or {})
        num_classes = [m for m in net.head.modules() if isinstance(m, nn.Linear)][-1].out_features
        net.head = build_head(
            width,
            num_classes,
            hidden=list(head.get("hidden", [])),
            dropout=float(head.get("dropout", 0.0)),
            activation_name=str(head.get("activation", "relu")),
        )
        net.num_features = width


def _output_width(net: Classifier) -> int:
    chans, height, width = net.data_config["input_size"]
    probe = torch.zeros(1, chans, height or 32, width or 32)
    was_training = net.backbone.training
    net.backbone.eval()
    with torch.no_grad():
        out = net.backbone(probe)
    net.backbone.train(was_training)
    return int(out.shape[1])


def compute_features(
    backbone: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    device: str = "cpu",
    prepare: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features float32 (N, D), labels int64 (N,)) of every batch in order, on the CPU.

    `prepare` turns each batch's images into the model's input on `device` (the
    datamodule's eval batch stage). The backbone runs in eval mode under inference_mode
    and is left as it was found.
    """
    was_training = backbone.training
    home = next(backbone.parameters(), torch.empty(0)).device
    backbone.eval().to(device)
    chunks, labels = [], []
    try:
        with torch.inference_mode():
            for images, targets in batches:
                images = images.to(device)
                chunks.append(backbone(prepare(images) if prepare else images).float().cpu())
                labels.append(torch.as_tensor(targets, dtype=torch.int64))
    finally:
        backbone.train(was_training).to(home)
    if not chunks:  # an empty split (e.g. val_fraction=0)
        return torch.empty(0, 0), torch.empty(0, dtype=torch.int64)
    # Concatenated outside inference mode: the head trains on these, so autograd may save them.
    return torch.cat(chunks), torch.cat(labels)
