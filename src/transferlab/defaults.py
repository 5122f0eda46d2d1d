"""Values of config keys for configs that lack them: a checkpoint written before the key
existed, a config composed without the group. conf/ sets the same values (test_configs
ties the two), so each default is written once in code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# dotted key -> default, as conf/train.yaml and its groups set it
DEFAULTS = {
    "model.frozen_bn": "eval",  # frozen layers stay in eval mode (BatchNorm statistics)
    "features.save_backbone": True,  # checkpoints carry the backbone
    "features.cache": "auto",
    "features.dtype": "float32",  # mode=partial's stored prefix activations: exact
    "features.memory_share": 0.25,  # of RAM, for those activations under cache=auto
}


def get(node: Mapping[str, Any] | None, key: str) -> Any:
    """`node`'s value for the last part of `key` (e.g. "model.frozen_bn"), else its default."""
    return (node or {}).get(key.rsplit(".", 1)[-1], DEFAULTS[key])
