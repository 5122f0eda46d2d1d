"""Networks: scratch CNN/MLP and pretrained backbones, all behind one `Classifier` interface."""

from __future__ import annotations

from hydra.utils import instantiate

from transferlab.models.classifier import Classifier

# Keys of the model group that steer freezing and learning rates, not the network's shape.
POLICY_KEYS = ("unfreeze", "frozen_bn", "backbone_lr_mult", "layer_decay")


def build_model(
    cfg: dict, *, num_classes: int, in_chans: int, image_size: int | None, load_weights: bool
) -> Classifier:
    """Instantiate the model group's `_target_` and load its weights.

    `load_weights=False` builds the bare architecture (a checkpoint will fill it), so
    restoring a run never downloads anything.
    """
    args = {k: v for k, v in cfg.items() if k not in POLICY_KEYS}
    weights = args.get("weights") if load_weights else None
    if weights:
        from transferlab.models import weights as weights_io
    from_run = bool(weights and weights_io.is_transferlab_checkpoint(weights))
    if from_run:
        # Same stem as the run that wrote it (an MNIST CNN reads 1 channel, also on SVHN).
        in_chans = weights_io.checkpoint_hparams(weights).get("in_chans", in_chans)
    if not load_weights or from_run:
        args.update(pretrained=False, weights=None)
    net = instantiate(
        args, num_classes=num_classes, in_chans=in_chans, image_size=image_size, _convert_="all"
    )
    if from_run:
        weights_io.load_transferlab_checkpoint(net, weights)
    return net
