"""Reading weight files, and finding pretrained weights offline.

Every file is read with `torch.load(weights_only=True)` or safetensors: a weights file
never runs code. Each is read through its `WeightsFile`, from the handle the header check
opened, so a run opens it once. Pretrained downloads are checked first (local cache, then a
3 s network probe), so an offline machine gets a clear error at once instead of a minute of
retries.
"""

from __future__ import annotations

import collections
import logging
import os
import pickle
import socket
import threading
import typing
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO

import huggingface_hub
import omegaconf
import safetensors
import safetensors.torch
import torch
from huggingface_hub import constants as hf_constants
from torchvision.models import WeightsEnum

from transferlab.errors import UserError
from transferlab.models.timm_lib import timm
from transferlab.weights_files import published, tensor_headers
from transferlab.weights_files.tensor_headers import TensorFile, WeightsFile, unreadable

log = logging.getLogger("transferlab")

# Endings of a file's name; ".pth.tar" is the PyTorch ImageNet example's (Places365's too).
SUFFIXES = (".pth", ".pt", ".pth.tar", ".safetensors", ".ckpt", ".bin")
HF_WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")  # timm's order of preference
# Lightning stores hyper-parameters given as OmegaConf configs; these data-only classes
# are what a transferlab checkpoint holds besides tensors and builtins.
_CHECKPOINT_GLOBALS = [
    dict,
    list,
    tuple,
    set,
    int,
    float,
    str,
    bool,
    collections.defaultdict,
    collections.OrderedDict,
    typing.Any,
    omegaconf.DictConfig,
    omegaconf.ListConfig,
    omegaconf.base.ContainerMetadata,
    omegaconf.base.Metadata,
    omegaconf.nodes.AnyNode,
    omegaconf.nodes.StringNode,
    omegaconf.nodes.IntegerNode,
    omegaconf.nodes.FloatNode,
    omegaconf.nodes.BooleanNode,
]
OFFLINE_ALTERNATIVE = (
    "pass a local file with model.weights=<file> (.pth/.pt/.safetensors/.ckpt), or use the "
    "ImageNet weights that work offline with model=efficientnet_lite0, efficientnet_lite1 or "
    "efficientnet_lite2 "
    "(or model.pretrained=false to train from scratch)"
)


def _deserialize(stream: IO[bytes], file: Path) -> object:
    """The object stored in a weights file, read without running any pickled code."""
    if not file.name.endswith(SUFFIXES):
        raise UserError(
            f"The weights file {str(file)!r} has the suffix {file.suffix!r}; expected one of "
            f"{', '.join(SUFFIXES)}. Save the weights with torch.save(model.state_dict(), "
            "'weights.pth') or safetensors, and pass that file as model.weights=<file>."
        )
    try:
        if file.suffix == ".safetensors":
            return safetensors.torch.load(stream.read())
        with torch.serialization.safe_globals(_CHECKPOINT_GLOBALS):
            return torch.load(stream, weights_only=True, map_location="cpu")
    except (pickle.UnpicklingError, RuntimeError, OSError, EOFError, ValueError) as err:
        raise unreadable(file, err) from err
    except safetensors.SafetensorError as err:
        raise unreadable(file, err) from err


def _is_tensor(value: object) -> bool:
    return isinstance(value, torch.Tensor)


def describe(path: str | os.PathLike) -> TensorFile:
    """Names, shapes and hparams of a weights file: its header's, or, where only torch can
    tell, the loaded file's (kept for the load that follows: the file is read once)."""
    file = WeightsFile.of(path)
    if (header := file.header) is not None:
        return header
    data = file.load(lambda stream: _deserialize(stream, file.path), keep=True)
    return tensor_headers.describe(data, _is_tensor, lambda t: tuple(t.shape))


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a .pth/.pt/.bin/.safetensors/.ckpt file; for checkpoints, their `state_dict`."""
    return read_weights(path)[0]


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A file's tensors, unwrapped from a published layout (`published.unwrap`); and how."""
    file = WeightsFile.of(path)
    data = file.load(lambda stream: _deserialize(stream, file.path))
    data, unwrapped = published.unwrap(data, _is_tensor)
    if not isinstance(data, dict) or not any(_is_tensor(v) for v in data.values()):
        raise UserError(
            f"The weights file {str(path)!r} holds no state_dict (a mapping of names to "
            f"tensors); found {type(data).__name__}. Save torch.save(model.state_dict(), "
            "'weights.pth') and pass that file as model.weights=<file>."
        )
    return {k: v for k, v in data.items() if _is_tensor(v)}, unwrapped


def hub_checkpoint_dir() -> Path:
    """Where torchvision (and timm for plain URLs) cache downloaded weights."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host (or the https proxy) opens within `timeout`."""
    target = urllib.request.getproxies().get("https") or url
    parsed = urllib.parse.urlsplit(target if "//" in target else f"//{target}")
    host, port = parsed.hostname, parsed.port or 443
    opened: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            opened.append(True)
        except OSError:
            pass

    # DNS lookups ignore socket timeouts, so the probe runs in a thread we stop waiting for.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened)


def require_download(model_name: str, url: str, cache_dir: Path, *, hf_offline: bool) -> None:
    """Raise UserError at once when weights that are not cached cannot be downloaded."""
    if hf_offline:
        reason = "HF_HUB_OFFLINE is set"
    elif not _reachable(url):
        host = urllib.parse.urlsplit(url).hostname
        reason = f"{host} cannot be reached (no network)"
    else:
        return
    raise UserError(
        f"Pretrained weights for model {model_name!r} are not in the local cache ({cache_dir}) "
        f"and cannot be downloaded: {reason}. Copy the weights into that folder when online, "
        f"or {OFFLINE_ALTERNATIVE}."
    )


def download_failed(model_name: str, err: Exception) -> UserError:
    return UserError(
        f"Downloading pretrained weights for model {model_name!r} failed: {err}. "
        f"Retry when the network works, or {OFFLINE_ALTERNATIVE}."
    )


def timm_pretrained_overlay(model_name: str, cfg: timm.models.PretrainedCfg) -> dict | None:
    """`pretrained_cfg_overlay` that makes timm load its cached weights; None: timm may download.

    Raises UserError at once when the weights are neither cached nor downloadable.
    """
    repo, _, revision = (cfg.hf_hub_id or "").partition("@")
    url_file = hub_checkpoint_dir() / Path(urllib.parse.urlsplit(cfg.url or "").path).name
    cached = [Path(cfg.file)] if cfg.file else []
    if repo:
        names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else HF_WEIGHT_NAMES
        hits = [
            huggingface_hub.try_to_load_from_cache(repo, n, revision=revision or None)
            for n in names
        ]
        cached += [Path(hit) for hit in hits if isinstance(hit, str)]
    if cfg.url:
        cached.append(url_file)
    for file in cached:
        if file.is_file():
            return _overlay(file)
    if repo:  # timm downloads from the Hugging Face hub when the model is there
        cache_dir = Path(hf_constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
        url, offline = f"{hf_constants.ENDPOINT}/{repo}", hf_constants.HF_HUB_OFFLINE
        require_download(model_name, url, cache_dir, hf_offline=offline)
    else:
        require_download(model_name, cfg.url, url_file.parent, hf_offline=False)
    return None


def _overlay(file: Path) -> dict:
    # Read it ourselves (weights_only); timm would unpickle a plain-file override fully.
    if file.name.endswith(SUFFIXES):
        return {"state_dict": read_state_dict(file)}
    return {"file": str(file)}


def torchvision_pretrained_state_dict(model_name: str, weights: WeightsEnum) -> dict:
    """ImageNet weights of a torchvision model: from the torch hub cache, else downloaded."""
    file = hub_checkpoint_dir() / Path(urllib.parse.urlsplit(weights.url).path).name
    if file.is_file():
        return read_state_dict(file)
    require_download(model_name, weights.url, file.parent, hf_offline=False)
    try:
        return weights.get_state_dict(progress=False, weights_only=True)
    except OSError as err:
        raise download_failed(model_name, err) from err
