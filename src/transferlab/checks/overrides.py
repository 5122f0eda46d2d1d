"""Mistyped keys and options on the command line are bad input like any other.

Hydra answers `data.root=/x` with "Key 'root' is not in struct" and exit 1. Before Hydra
runs, the command line's overrides are composed once here (about 0.1 s, no torch; a sweep
by its first value), and a key or option that does not exist is refused in one paragraph
naming the closest real ones, with exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from difflib import SequenceMatcher
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from transferlab import compat
from transferlab.errors import UserError

_UNKNOWN_KEY = re.compile(r"Could not override '([^']+)'")
_UNKNOWN_OPTION = re.compile(r"Could not find '([^']+)/([^'/]+)'")
# Flags of Hydra's own parser that take a value, and those that mean "no job runs".
_VALUED = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--experimental-rerun"}
_NOT_A_RUN = {"--help", "-h", "--hydra-help", "--version", "--shell-completion", "-sc"}
_OWN_CONFIG = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd"}


def check(conf_dir: str, config_name: str, argv: list[str]) -> None:
    """Raise UserError when the overrides name a key or option the config does not have."""
    overrides = _overrides(argv)
    if overrides is None:
        return
    try:
        single = _single_run(overrides)
    except Exception:  # a sweep we cannot take apart (e.g. optuna's interval): Hydra checks
        return
    try:
        _compose(conf_dir, config_name, single)
    except (HydraException, OmegaConfBaseException) as err:
        raise UserError(_explain(err, conf_dir, config_name, overrides, single)) from None


def _overrides(argv: list[str]) -> list[str] | None:
    """The overrides of a command line; None when Hydra runs no job or reads other configs."""
    found, args = [], iter(argv)
    for arg in args:
        flag = arg.split("=", 1)[0]
        if flag in _NOT_A_RUN or flag in _OWN_CONFIG:
            return None
        if flag in _VALUED and "=" not in arg:
            next(args, None)
        elif not arg.startswith("-"):
            found.append(arg)
    return found


def _single_run(overrides: list[str]) -> list[str]:
    """Each sweep override as its first value: the keys and options are what is checked."""
    single = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            first = next(iter(override.sweep_string_iterator()))
            single.append(f"{override.get_key_element()}={first}")
        else:
            single.append(override.input_line)
    return single


def _compose(conf_dir: str, config_name: str, overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=conf_dir, version_base="1.3"):
            return compose(config_name, overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def _explain(err: Exception, conf_dir: str, name: str, given: list[str], single: list[str]) -> str:
    text = " ".join(str(e) for e in (err, err.__cause__) if e is not None)
    if match := _UNKNOWN_KEY.search(text):
        return _unknown_key(match[1], conf_dir, name, given, single)
    if match := _UNKNOWN_OPTION.search(text):
        return _unknown_option(match[1], match[2], conf_dir)
    first = " ".join(str(err).split())
    return (
        f"The command line's overrides do not compose: {first} Fix the override it names "
        "(python train.py --help lists the groups, --cfg job prints every key)."
    )


def _unknown_key(key: str, conf_dir: str, name: str, given: list[str], single: list[str]) -> str:
    bad = next((o for o in given if o.lstrip("~+").split("=", 1)[0] == key), key)
    others = [o for o in single if o.lstrip("~+").split("=", 1)[0] != key]
    try:
        cfg = _compose(conf_dir, name, others)
    except (HydraException, OmegaConfBaseException):
        cfg = _compose(conf_dir, name, [])
    here = {k: "" for k in _keys(cfg)}
    # A key of another option of the same group (optimizer.momentum is sgd's, not adam's).
    elsewhere = _group_keys(Path(conf_dir), key.split(".", 1)[0])
    candidates = {**{k: f" (with {_few(v)})" for k, v in elsewhere.items()}, **here}
    close = closest(key, [k for k in candidates if not k.rsplit(".", 1)[-1].startswith("_")])
    hint = f"Did you mean {' or '.join(c + candidates[c] for c in close)}? " if close else ""
    return (
        f"Unknown config key {key!r} in the override {bad}. {hint}Fix the key "
        f"(python train.py --cfg job prints every key), or add a new key on purpose with a "
        f"leading +, e.g. +{bad.lstrip('+')}."
    )


def _group_keys(conf_dir: Path, group: str) -> dict[str, list[str]]:
    """Keys that the options of config group `group` define, each with the options."""
    found: dict[str, list[str]] = {}
    for file in sorted((conf_dir / group).glob("*.yaml")):
        try:
            node = OmegaConf.load(file)
        except (OSError, OmegaConfBaseException):
            continue
        if isinstance(node, DictConfig):
            for key in _keys(node, f"{group}."):
                if key != f"{group}.defaults":
                    found.setdefault(key, []).append(f"{group}={file.stem}")
    return found


def _few(options: list[str], limit: int = 3) -> str:
    return ", ".join(options[:limit]) + (", ..." if len(options) > limit else "")


def _unknown_option(group: str, option: str, conf_dir: str) -> str:
    options = sorted(p.stem for p in (Path(conf_dir) / group).glob("*.yaml"))
    close = closest(option, options)
    hint = f"Did you mean {group}={close[0]}? " if close else ""
    return (
        f"Unknown option {option!r} for the config group {group!r}. {hint}The options are: "
        f"{', '.join(options)}."
    )


def _keys(cfg: DictConfig, prefix: str = "") -> Iterator[str]:
    for key in cfg:
        path = f"{prefix}{key}"
        yield path
        node = compat.config_node(cfg, key)
        if isinstance(node, DictConfig) and not OmegaConf.is_missing(cfg, key):
            yield from _keys(node, f"{path}.")


def closest(bad: str, choices: list[str], n: int = 3) -> list[str]:
    """The real names nearest a mistyped one: by last part first, then by the path to it."""
    parent, _, leaf = bad.rpartition(".")

    def score(choice: str) -> float:
        where, _, last = choice.rpartition(".")
        ratio = SequenceMatcher(None, leaf, last).ratio()
        if min(len(leaf), len(last)) >= 2 and (leaf.startswith(last) or last.startswith(leaf)):
            ratio = max(ratio, 0.75)  # lr_rate -> lr
        path = SequenceMatcher(None, parent, where).ratio() if parent or where else 1.0
        return ratio * (0.8 + 0.2 * path)

    ranked = sorted(choices, key=lambda c: (-score(c), len(c)))[:n]
    best = score(ranked[0]) if ranked else 0.0
    return [c for c in ranked if score(c) >= max(0.6, best - 0.15)]  # no distant also-rans
