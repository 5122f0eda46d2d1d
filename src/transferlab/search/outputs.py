"""What a finished search leaves in its sweep folder, beside the trials' run folders:
optimization_results.yaml (best parameters and value), trials.csv (every trial, its
state, parameters, value and run folder), optimization_history.png, param_importances.png.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from transferlab.atomic import atomic_write_text

log = logging.getLogger("transferlab")


def write(study: Any, sweep_dir: Path) -> None:
    """Write the search's results into `sweep_dir` and log the best trial."""
    from optuna.trial import TrialState

    frame = study.trials_dataframe(attrs=("number", "state", "value", "params", "user_attrs"))
    atomic_write_text(sweep_dir / "trials.csv", frame.to_csv(index=False))
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = {s.name.lower(): states.count(s) for s in TrialState if states.count(s)}
    log.info("Study %s: %s", study.study_name, ", ".join(f"{n} {s}" for s, n in counts.items()))
    if TrialState.COMPLETE not in states:
        log.warning("No trial completed: no best parameters and no plots.")
        return
    best = study.best_trial
    results = {
        "name": "optuna",
        "study_name": study.study_name,
        "best_trial": best.number,
        "best_job": best.user_attrs.get("job"),
        "best_params": best.params,
        "best_value": best.value,
        "trials": counts,
    }
    atomic_write_text(sweep_dir / "optimization_results.yaml", OmegaConf.to_yaml(results))
    log.info("Best parameters: %s (value %.4f, trial %d)", best.params, best.value, best.number)
    _plot(study, sweep_dir)


def _plot(study: Any, sweep_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as optuna_plots

    plots = {
        "optimization_history.png": optuna_plots.plot_optimization_history,
        "param_importances.png": optuna_plots.plot_param_importances,
    }
    for name, plot in plots.items():
        try:
            axes = plot(study)
        except (ValueError, RuntimeError) as err:  # e.g. importances of one trial
            log.warning("No %s: %s", name, err)
            continue
        axes.figure.savefig(sweep_dir / name, dpi=100, bbox_inches="tight")
        plt.close(axes.figure)
