"""What each network looks like, known without importing torch: checks cost a second.

Shipped per library version in `models/model_facts.json` and regenerated with
`python -m transferlab.model_facts` after a timm or torchvision upgrade. For every timm and
torchvision name: its layer groups, the smallest image its forward pass takes, the
prefix of its ImageNet classifier, and fingerprints of its backbone's tensors (names, and
names with shapes), so a weights file can be told apart from another architecture's
by its header alone. When the installed version differs, nothing here is used and the
same checks run after the model is built, with the same messages.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

FACTS_FILE = Path(__file__).parent / "models" / "model_facts.json"
TIMM_TARGET = "transferlab.models.backbones.timm_classifier"
TORCHVISION_TARGET = "transferlab.models.backbones.torchvision_classifier"
# Our config name for EfficientNet-Lite0 with packaged weights, and the timm arch it builds.
LITE0_NAME, LITE0_ARCH = "efficientnet_lite0", "tf_efficientnet_lite0"
MIN_SIZE_SCAN = 64  # sizes 1..64 are tried; a model that needs more gets no fact


def _installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


@functools.cache
def _load() -> dict:
    return json.loads(FACTS_FILE.read_text())


def library(kind: str) -> dict[str, dict] | None:
    """Facts of every `kind` ("timm" or "torchvision") model; None for another version."""
    facts = _load()
    if facts["versions"].get(kind) != _installed(kind):
        return None
    return facts[kind]


def arch(name: str) -> str:
    """The library's architecture name for a model.name: "resnet18.a1_in1k" -> "resnet18"."""
    name = str(name).split(".")[0]  # the tag names weights, which are timm's business
    return LITE0_ARCH if name == LITE0_NAME else name


def lookup(model: Mapping) -> dict | None:
    """Facts of a timm or torchvision model config (None: unknown, or another library version)."""
    kind = {TIMM_TARGET: "timm", TORCHVISION_TARGET: "torchvision"}.get(model.get("_target_"))
    known = library(kind) if kind else None
    return None if known is None else known.get(arch(model.get("name")))


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
        for name, facts in (library(kind) or {}).items():
            if facts and facts.get("sig"):
                group = by_classifier.setdefault(tuple(facts["classifier"]), [])
                group.append((name, facts["sig"]))
    found: list[str] = []
    for classifier, models in by_classifier.items():
        sig = fingerprints(without_classifier(shapes, classifier))[1]
        found += [name for name, model_sig in models if model_sig == sig]
    return found


# ---- regeneration (imports torch and timm; run after a library upgrade) ----


def _facts_of(build, classifier: list[str], fixed_size: bool = False) -> dict:
    """Facts of one model, built on the meta device (no memory, no weights).

    `fixed_size`: the model is built for one input size (ViT position embeddings), so the
    smallest size is searched by building it for each size.
    """
    import torch

    with torch.device("meta"):
        net = build(None)
    prefix = "backbone."
    state = {
        k[len(prefix) :]: tuple(v.shape)
        for k, v in net.state_dict().items()
        if k.startswith(prefix)
    }
    names, sig = fingerprints(state)
    return {
        "groups": [g.name for g in net.groups],
        "min_size": _min_size(build, fixed_size),
        "classifier": classifier,
        "keys": names,
        "sig": sig,
    }


def _min_size(build, fixed_size: bool) -> int | None:
    """The smallest square image the model's forward pass takes; every smaller one failed."""
    import torch

    net = None
    for size in range(1, MIN_SIZE_SCAN + 1):
        with torch.device("meta"), torch.no_grad():
            try:
                if net is None or fixed_size:
                    net = build(size).eval()
                net(torch.zeros(1, 3, size, size))
                return size
            except Exception:  # any failure means "not this size"
                continue
    return None


def _timm_facts(arch: str) -> dict | None:
    import timm

    from transferlab.models import backbones

    cfg = timm.models.get_pretrained_cfg(arch)
    fixed = bool(cfg is not None and cfg.fixed_input_size)

    def build(size):
        return backbones.timm_classifier(
            name=arch, num_classes=2, in_chans=3, image_size=size, head={}, pretrained=False,
            weights=None,
        )  # fmt: skip

    classifier = (cfg.classifier if cfg is not None else None) or ()
    classifier = [classifier] if isinstance(classifier, str) else list(classifier)
    try:
        return _facts_of(build, classifier, fixed_size=fixed)
    except Exception:  # a model that meta tensors cannot build keeps only its name
        return None


def _torchvision_facts(name: str) -> dict:
    import torchvision

    from transferlab.models import backbones

    def build(size):
        return backbones.torchvision_classifier(
            name=name, num_classes=2, in_chans=3, image_size=size, head={}, pretrained=False,
            weights=None,
        )  # fmt: skip

    native = torchvision.models.get_model(name, weights=None)
    _, fc8 = backbones._torchvision_backbone(native)
    return _facts_of(build, [f"classifier.{fc8}"])


def _one_line_per_model(facts: dict) -> str:
    """JSON with one model per line, so a library upgrade reads as a short diff."""
    parts = ['{\n"versions": ' + json.dumps(facts["versions"])]
    for kind in ("timm", "torchvision"):
        rows = [f"{json.dumps(n)}: {json.dumps(f)}" for n, f in sorted(facts[kind].items())]
        parts.append(f'"{kind}": {{\n' + ",\n".join(rows) + "\n}")
    return ",\n".join(parts) + "\n}\n"


def generate(workers: int = 2) -> None:
    """Rebuild models/model_facts.json for the installed timm and torchvision."""
    from concurrent.futures import ProcessPoolExecutor

    import timm

    from transferlab.models.backbones import TORCHVISION_NAMES

    names = timm.list_models()
    with ProcessPoolExecutor(workers) as pool:
        timm_facts = dict(zip(names, pool.map(_timm_facts, names, chunksize=8), strict=True))
    facts = {
        "versions": {k: _installed(k) for k in ("timm", "torchvision")},
        "timm": timm_facts,
        "torchvision": {n: _torchvision_facts(n) for n in TORCHVISION_NAMES},
    }
    FACTS_FILE.write_text(_one_line_per_model(facts))
    known = sum(f is not None for f in timm_facts.values())
    print(f"Wrote {FACTS_FILE}: {len(names)} timm models ({known} with facts).")


if __name__ == "__main__":
    generate()
