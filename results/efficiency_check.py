"""The results page's data-efficiency section: study.py on real MNIST at growing sizes.

It runs the study that results.yaml's `data_efficiency` block gives (arms, sizes, budget)
and puts the study's own data-efficiency plot, crossover sentence and table on the page,
its steps and convergence per point, the command, what the budget cut, and its wall time.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from results import results_page

NAME = "data_efficiency"  # its name in results.yaml's experiments and in RESULTS_ONLY


def section(question: str, settings: dict, quick: bool, log_dir: Path, out: Path) -> str:
    args = [*settings["study"], *(settings["quick"] if quick else [])]
    command = "python study.py " + " ".join(args)
    start = time.perf_counter()
    study = results_page.run_study(args, log_dir)
    return render(question, study, command, time.perf_counter() - start, out)


def render(question: str, study: Path, command: str, wall_s: float, out: Path) -> str:
    """The section from a finished study folder: its efficiency part, plot copied to `out`."""
    report = (study / "report.md").read_text()
    plan = json.loads((study / "plan.json").read_text())
    part = _part(report, "## Data efficiency") or (
        "## Data efficiency\n\nThe study ran a single size: no data-efficiency curve.\n"
    )
    picture = out / "data_efficiency_mnist.png"
    if (study / "plots" / "data_efficiency.png").is_file():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(study / "plots" / "data_efficiency.png", picture)
    part = part.replace("(plots/data_efficiency.png)", f"({picture.name})")
    cuts = "; ".join(plan.get("cuts") or []) or "nothing"
    minutes = plan.get("elapsed_minutes") or wall_s / 60
    return "\n".join(
        [
            f"## {NAME}",
            "",
            question,
            "",
            *part.splitlines()[2:],
            "",
            *_training(report),
            f"Command: `{command}` — {minutes * 60:.0f} s wall, in a {plan['budget_minutes']:g}"
            f"-minute budget; cut to fit: {cuts}. The study's full page (verdict, per-class "
            "accuracy, every run's command) is its report.md.",
            "",
        ]
    )


def _training(report: str) -> list[str]:
    """The study's steps per cell: how long each point of the curve trained, and whether
    its runs had stopped improving (a reader of the curve's left end needs both)."""
    part = _part(report, "## Training per cell").splitlines()[2:]
    return ["Training behind each point of the curve:", "", *part, ""] if part else []


def _part(report: str, heading: str) -> str:
    """One `## ` section of a markdown page, heading included ('' when absent)."""
    start = report.find(heading + "\n")
    if start < 0:
        return ""
    end = report.find("\n## ", start + len(heading))
    return report[start : end if end > 0 else len(report)]
