"""Hydra finds sweepers only under the `hydra_plugins` namespace: this is transferlab's.

Hydra imports every module here on each start, so this one stays light: Optuna and the
search code load only when a search runs (transferlab.search.sweeper).
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """`hydra/sweeper=optuna`: Optuna's ask-and-tell over Hydra's launcher (conf/hydra/sweeper)."""

    def __init__(self, params: Any = None, search: Any = None, optimized_metric: str = "") -> None:
        self.params = params or {}
        self.search = search or {}
        self.optimized_metric = optimized_metric

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        from transferlab.search.sweeper import run_search

        run_search(self, arguments)
