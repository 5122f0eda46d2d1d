"""Measure model facts on built networks: checked after a build, cached, or shipped.

`transferlab.model_facts` reads facts without torch; this module makes them. After a
library model is built under other library versions than the shipped facts were built
with, `check_built` compares the facts the early checks used with the network and
caches what it measured, so the next run under these versions checks before torch loads.
`python -m transferlab.models.measure_facts` rebuilds the shipped file (after a lock refresh).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping

import torch

from transferlab import compat, model_facts
from transferlab.atomic import atomic_write_text
from transferlab.models.classifier import Classifier

log = logging.getLogger("transferlab")

# Sizes that every patch size and stride in timm divides: one of them works if any size up
# to 64 does; a model that needs more than 64 px gets no min_size.
_PROBES = (64, 56, 48, 42, 32, 28, 16, 14, 8, 1)
# Tensor methods that fill or rescale in place: on meta tensors they only cost time
# (weight init goes through slow decompositions there), never change a shape.
_IN_PLACE = ("normal_", "uniform_", "fill_", "zero_", "clamp_", "erfinv_", "mul_", "add_")
_IN_PLACE += ("div_", "sub_", "copy_", "exponential_", "bernoulli_", "random_", "sqrt_")


def builder(kind: str, name: str) -> Callable[[int | None], Classifier]:
    """Build `name` without weights for one image size (None: the weights' own)."""
    from transferlab.models import backbones

    make = backbones.timm_classifier if kind == "timm" else backbones.torchvision_classifier

    def build(size: int | None) -> Classifier:
        return make(
            name=name, num_classes=2, in_chans=3, image_size=size, head={}, pretrained=False,
            weights=None,
        )  # fmt: skip

    return build


def classifier_of(kind: str, name: str) -> list[str]:
    """Module paths of the ImageNet classifier that a new head replaces."""
    if kind == "torchvision":
        return ["classifier.6"]  # fc8 of AlexNet and every VGG
    from transferlab.models.timm_lib import timm

    cfg = timm.models.get_pretrained_cfg(name)
    classifier = (cfg.classifier if cfg is not None else None) or ()
    return [classifier] if isinstance(classifier, str) else list(classifier)


def fixed_size(kind: str, name: str) -> bool:
    """Built for one input size (ViT position embeddings): each size needs its own build."""
    if kind == "torchvision":
        return False
    from transferlab.models.timm_lib import timm

    cfg = timm.models.get_pretrained_cfg(name)
    return bool(cfg is not None and cfg.fixed_input_size)


def pretrained_size(kind: str, name: str) -> int | None:
    """The image side the library's default pretrained weights of `name` were made for."""
    if kind == "torchvision":
        import torchvision

        return int(torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size[0])
    from transferlab.models.timm_lib import timm

    cfg = timm.models.get_pretrained_cfg(name)
    return int(cfg.input_size[-1]) if cfg is not None and cfg.input_size else None


def measure(net: Classifier, classifier: list[str]) -> dict:
    """Layer groups and tensor fingerprints of a built network (no forward pass)."""
    prefix = "backbone."
    state = {
        k[len(prefix) :]: tuple(v.shape)
        for k, v in net.state_dict().items()
        if k.startswith(prefix)
    }
    keys, sig = model_facts.fingerprints(state)
    return {"groups": [g.name for g in net.groups], "classifier": classifier, "keys": keys,
            "sig": sig}  # fmt: skip


def smallest_input(build: Callable[[int | None], Classifier], fixed: bool) -> int | None:
    """The smallest square image (up to 64 px) the model's forward pass takes.

    A meta forward pass costs up to a second, so rather than trying 1..64 in turn: find a
    size that works among the usual multiples of patch and stride, then bisect below it
    to the size that works with the one below failing. It agreed with the full scan of
    timm 1.0.31 on every model tried (see the note of the change that brought it).
    """
    nets: dict[int, Classifier] = {}

    def works(size: int) -> bool:
        try:
            if fixed or not nets:
                nets[size] = _on_meta(build, size).eval()
            net = nets[size] if fixed else next(iter(nets.values()))
            with torch.no_grad():  # outside the meta device mode: it would slow every op
                net(torch.zeros(1, 3, size, size, device="meta"))
            return True
        except Exception:  # any failure means "not this size"
            return False
        finally:
            if fixed:
                nets.pop(size, None)

    top = next((s for s in _PROBES if works(s)), None)
    if top is None:
        return None
    low = 0  # the largest size known (or taken) to fail
    while top - low > 1:
        mid = (low + top) // 2
        low, top = (low, mid) if works(mid) else (mid, top)
    return top


def _on_meta(build: Callable[[int | None], Classifier], size: int | None) -> Classifier:
    # Not in forward: a misfit add_ must fail there.
    with compat.tensor_methods_skipped_on_meta(_IN_PLACE), torch.device("meta"):
        return build(size)


def facts_of(kind: str, name: str) -> dict | None:
    """All facts of one architecture, measured on the meta device (no memory, no weights)."""
    build = builder(kind, name)
    try:
        net = _on_meta(build, None)
        facts = measure(net, classifier_of(kind, name))
        facts["min_size"] = smallest_input(build, fixed_size(kind, name))
        facts["input_size"] = pretrained_size(kind, name)
    except Exception:  # a model that meta tensors cannot build keeps only its name
        return None
    return facts


def check_built(model: Mapping, net: Classifier) -> None:
    """After the build: make sure the facts of this library model hold for these versions."""
    kind = model_facts.kind_of(model)
    if kind is None or (model_facts.built_for_installed(kind) and model_facts.lookup(model)):
        return  # the shipped facts were measured on this very release
    name = model_facts.arch(model.get("name"))
    cache = model_facts.read_cache()
    measured_here = cache.setdefault(model_facts.version_key(kind), {})
    if name in measured_here:
        return
    used = model_facts.lookup(model)
    facts = measure(net, classifier_of(kind, name))
    built_with = model_facts.shipped()["built_with"][kind]
    facts["input_size"] = pretrained_size(kind, name)
    if used is not None and all(used[k] == facts[k] for k in ("groups", "keys", "sig")):
        facts["min_size"] = used.get("min_size")
        log.info(
            "Model facts of %s (built with %s %s) hold for %s %s: the early checks stand.",
            name, kind, built_with, kind, model_facts.installed(kind),
        )  # fmt: skip
    else:
        facts["min_size"] = smallest_input(builder(kind, name), fixed_size(kind, name))
        log.warning(
            "No model facts for %s under %s %s (shipped facts: %s %s): its layer-group, "
            "input-size and weights checks ran after the build. Measured them now and cached "
            "them in %s, so the next run checks them before torch loads.",
            name, kind, model_facts.installed(kind), kind, built_with, model_facts.cache_file(),
        )  # fmt: skip
    measured_here[name] = facts
    _write_cache(cache)


def _write_cache(cache: dict) -> None:
    try:
        atomic_write_text(model_facts.cache_file(), json.dumps(cache, sort_keys=True))
    except OSError as err:  # a read-only home costs a later run its early checks, no more
        log.warning("Could not cache model facts in %s: %s", model_facts.cache_file(), err)
    model_facts.library.cache_clear()


def _one_line_per_model(facts: dict) -> str:
    """JSON with one model per line, so a library upgrade reads as a short diff."""
    parts = ['{\n"built_with": ' + json.dumps(facts["built_with"])]
    for kind in ("timm", "torchvision"):
        rows = [f"{json.dumps(n)}: {json.dumps(f)}" for n, f in sorted(facts[kind].items())]
        parts.append(f'"{kind}": {{\n' + ",\n".join(rows) + "\n}")
    return ",\n".join(parts) + "\n}\n"


def _timm_facts(name: str) -> dict | None:
    torch.set_num_threads(1)
    return facts_of("timm", name)


def generate(workers: int | None = None) -> None:
    """Rebuild models/model_facts.json for the installed timm and torchvision."""
    from concurrent.futures import ProcessPoolExecutor

    start = time.perf_counter()
    names = sorted(model_facts.names("timm"))
    with ProcessPoolExecutor(workers or os.cpu_count()) as pool:
        timm_facts = dict(zip(names, pool.map(_timm_facts, names, chunksize=4), strict=True))
    facts = {
        "built_with": {k: model_facts.installed(k) for k in ("timm", "torchvision")},
        "timm": timm_facts,
        "torchvision": {n: facts_of("torchvision", n) for n in model_facts.TORCHVISION_NAMES},
    }
    atomic_write_text(model_facts.FACTS_FILE, _one_line_per_model(facts))
    known = sum(f is not None for f in timm_facts.values())
    print(
        f"Wrote {model_facts.FACTS_FILE}: {len(names)} timm models ({known} with facts), "
        f"{len(facts['torchvision'])} torchvision, in {time.perf_counter() - start:.0f} s."
    )


if __name__ == "__main__":
    generate()
