"""Networks: scratch CNN/MLP and pretrained backbones, all behind one `Classifier` interface."""

from __future__ import annotations

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from transferlab.errors import UserError
from transferlab.models.classifier import Classifier

# Keys of the model group that steer freezing and learning rates, not the network's shape.
POLICY_KEYS = ("unfreeze", "frozen_bn", "backbone_lr_mult", "layer_decay", "ema", "channels_last")


def build_model(
    cfg: dict,
    *,
    num_classes: int,
    in_chans: int,
    image_size: int | None,
    load_weights: bool,
    features: dict | None = None,
) -> Classifier:
    """Instantiate the model group's `_target_` and load its weights.

    `load_weights=False` builds the bare architecture (a checkpoint will fill it), so
    restoring a run never downloads anything. `features` (layers, pool, l2norm) makes the
    backbone yield those features instead of its final pooled output.
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
    try:
        net = instantiate(
            args, num_classes=num_classes, in_chans=in_chans, image_size=image_size, _convert_="all"
        )
    except InstantiationException as err:
        # Hydra wraps whatever the builder raised; a user's mistake must surface as itself.
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise
    if from_run:
        weights_io.load_transferlab_checkpoint(net, weights)
    if features:
        from transferlab.features.extract import read_layers

        read_layers(net, features, head=args.get("head"))
    return net
