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
    fetch_weights: bool,
) -> Classifier:
    """Instantiate the model group's `_target_` and load its weights.

    `fetch_weights=False` builds the bare architecture (a checkpoint will fill it), so
    restoring a run never downloads anything.
    """
    args = {k: v for k, v in cfg.items() if k not in POLICY_KEYS}
    weights = args.get("weights") if fetch_weights else None
    if not fetch_weights:
        args.update(pretrained=False, weights=None)
    if weights:
        net = _from_file(args, weights, num_classes, in_chans, image_size)
    else:
        net = _instantiate(args, num_classes, in_chans, image_size)
    return net


def _from_file(
    args: dict, weights: str, num_classes: int, in_chans: int, image_size: int | None
) -> Classifier:
    """A run's checkpoint fills a bare network; any other file its builder loads.

    The file is opened once: the config checks read its header, the load reads the rest
    from the same handle, and it is closed (and any load kept for it dropped) here.
    """
    from transferlab.models import loading
    from transferlab.models import weights as weights_io
    from transferlab.weights_files.tensor_headers import WeightsFile

    file = WeightsFile.of(weights)
    try:
        header = weights_io.describe(weights)
        if not header.is_transferlab_checkpoint:
            return _instantiate(args, num_classes, in_chans, image_size)
        # Same stem as the run that wrote it (an MNIST CNN reads 1 channel, also on SVHN).
        in_chans = header.hparams.get("in_chans", in_chans)
        bare = {**args, "pretrained": False, "weights": None}
        net = _instantiate(bare, num_classes, in_chans, image_size)
        loading.load_transferlab_checkpoint(net, weights)
        return net
    finally:
        file.release()


def _instantiate(args: dict, num_classes: int, in_chans: int, image_size: int | None):
    try:
        return instantiate(
            args, num_classes=num_classes, in_chans=in_chans, image_size=image_size, _convert_="all"
        )
    except InstantiationException as err:
        # Hydra wraps whatever the builder raised; a user's mistake must surface as itself.
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise
