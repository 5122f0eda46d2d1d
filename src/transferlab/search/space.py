"""The search space, in hydra-optuna-sweeper's `params:` syntax, as Optuna distributions.

`choice(a, b)` is categorical, `range(lo, hi[, step])` integers (floats if any bound is a
float), `interval(lo, hi)` uniform, `tag(log, interval(lo, hi))` log-uniform. Hydra's own
override parser reads them, so the syntax is exactly the one a `-m` sweep uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)

from transferlab.errors import UserError


def distribution(override: Override) -> Any:
    """The Optuna distribution of one sweep override (`lr=tag(log, interval(1e-4, 1e-2))`)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        choices = override.sweep_iterator(transformer=Transformer.encode)
        return CategoricalDistribution(list(choices))
    if isinstance(value, RangeSweep):
        if any(isinstance(x, float) for x in (value.start, value.stop, value.step)):
            return FloatDistribution(value.start, value.stop, step=value.step)
        return IntDistribution(int(value.start), int(value.stop), step=int(value.step))
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        if isinstance(value.start, int) and isinstance(value.end, int):
            return IntDistribution(value.start, value.end, log=log)
        return FloatDistribution(value.start, value.end, log=log)
    raise UserError(
        f"The search space entry {override.input_line} is not one Optuna can sample. Write "
        "choice(a,b), range(lo,hi), interval(lo,hi) or tag(log,interval(lo,hi))."
    )


def search_space(params: Mapping[str, Any], arguments: list[str]) -> tuple[dict, list[str]]:
    """(distributions by key, fixed overrides) of the config's `params` and the command line.

    A sweep on the command line (`'mode=choice(scratch,finetune)'`) replaces that key's
    range; a plain value there (`mode=scratch`) fixes the key for every trial.
    """
    parser = OverridesParser.create()
    space = {o.get_key_element(): o for o in parser.parse_overrides(_as_overrides(params))}
    fixed: list[str] = []
    for override in parser.parse_overrides(arguments):
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key] = override
        else:
            space.pop(key, None)
            fixed.append(override.input_line)
    for key, override in list(space.items()):
        if not override.is_sweep_override():
            fixed.append(f"{key}={override.get_value_element_as_str()}")
            del space[key]
    return {key: distribution(o) for key, o in space.items()}, fixed


def _as_overrides(params: Mapping[str, Any]) -> list[str]:
    return [f"{key}={value}" for key, value in params.items()]
