"""The results page's data-efficiency section: study.py on real MNIST at growing sizes.

It runs the study that results.yaml's `data_efficiency` block gives (arms, sizes, budget)
and puts the study's own data-efficiency plot, crossover sentence and table on the page,
with the command, what the budget cut, and the study's wall time.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

from omegaconf import OmegaConf

from results import results_page

NAME = "data_efficiency"  # its name in results.yaml's experiments and in RESULTS_ONLY


def section(question: str, settings: dict, quick: bool, log_dir: Path, out: Path) -> str:
    args = [*settings["study"], *(settings["quick"] if quick else [])]
    command = "python study.py " + " ".join(args)
    start = time.perf_counter()
    proc = results_page.script("study.py", [*args, f"paths.log_dir={log_dir}"], log_dir)
    wall = time.perf_counter() - start
    studies = sorted((log_dir / "study").glob("*/report.md"), key=lambda p: p.stat().st_mtime)
    if proc.returncode != 0 or not studies:
        tail = (proc.stdout + proc.stderr)[-1500:]
        raise RuntimeError(f"{command} failed (exit {proc.returncode}):\n{tail}")
    study = studies[-1].parent
    return render(question, study, command, wall, out)


def render(question: str, study: Path, command: str, wall_s: float, out: Path) -> str:
    """The section from a finished study folder: its efficiency part, plot copied to `out`."""
    report = (study / "report.md").read_text()
    plan = json.loads((study / "plan.json").read_text())
    part = _part(report, "## Data efficiency")
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
            *_steps_caveat(study, plan),
            f"Command: `{command}` — {minutes * 60:.0f} s wall, in a {plan['budget_minutes']:g}"
            f"-minute budget; cut to fit: {cuts}. The study's full page (verdict, per-class "
            "accuracy, every run's command) is its report.md.",
            "",
        ]
    )


def _steps_caveat(study: Path, plan: dict) -> list[str]:
    """Every size trains the same epochs: at the smallest that is a few optimizer steps,
    which the reader of the curve's left end must know."""
    epochs, sizes = plan["settings"].get("epochs"), [n for n in plan["settings"]["sizes"] if n]
    configs = sorted(study.glob("runs/*/seed*/.hydra/config.yaml"))
    if not (epochs and sizes and configs):
        return []
    batch = int(OmegaConf.load(configs[0]).batch_size)
    steps = epochs * math.ceil(min(sizes) / batch)
    return [
        f"Every size trained for the same {epochs} epoch(s) at batch size {batch}: at "
        f"{min(sizes):,} images that is {steps} optimizer step(s) per run, so the left of "
        "the curve shows short training as much as few images; a larger budget buys more "
        "epochs (`study.epochs`) at every size.",
        "",
    ]


def _part(report: str, heading: str) -> str:
    """One `## ` section of a markdown page, heading included ('' when absent)."""
    start = report.find(heading + "\n")
    if start < 0:
        return heading + "\n\nThe study ran a single size: no data-efficiency curve.\n"
    end = report.find("\n## ", start + len(heading))
    return report[start : end if end > 0 else len(report)]
