"""The results page's trust section: does a short study name the winner a long one names?

For each dataset in results.yaml's `trust` block, study.py runs twice: with the budget a
user types (`short`) and with at least six times the minutes, more seeds and more steps
(`long`). The page sets both verdicts side by side, every recipe's test accuracy at both
budgets, and says whether they agree and, where not, whether the short study had said "no
clear winner" (the long winner within its tie) or named a wrong winner outright.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from results import results_page
from transferlab.study import verdict as v
from transferlab.study.report import read_plan
from transferlab.study.sections import acc_interval, pct

NAME = "trust"  # its name in results.yaml's experiments and in RESULTS_ONLY


@dataclass(frozen=True)
class Verdict:
    """What one finished study concluded, as its report's verdict says it."""

    command: str
    wall_s: float
    cuts: tuple[str, ...]
    winner: str | None  # recipe label; None: no recipe finished
    separation: str  # verdict.separation's word, or "alone" with one recipe
    tied: frozenset[str]  # recipes the verdict could not tell from the winner
    accuracy: dict[str, str]  # recipe label -> test accuracy and interval, best val first
    seeds: dict[str, int]
    steps: dict[str, int | None]

    @property
    def clear(self) -> bool:
        return self.separation in ("clear", "alone")


def read_verdict(study: Path, command: str) -> Verdict:
    """The verdict of the study folder `study`, from its plan.json and run folders."""
    plan = read_plan(study)
    found = v.contenders(v.ranked(v.largest_size(v.load_cells(study, plan))))
    winner = found[0] if found else None
    separation = "alone" if len(found) == 1 else ""
    if len(found) > 1:
        separation = v.separation(found[0], found[1])
    tied = {winner.label} if winner else set()
    if winner and separation != "clear":
        _, _, low, high = winner.stat(v.TEST)
        tied |= {r.label for r in found[1:] if _overlaps(r, low, high)}
    minutes = plan.get("elapsed_minutes") or 0.0
    return Verdict(
        command=command,
        wall_s=minutes * 60,
        cuts=tuple(plan.get("cuts") or ()),
        winner=winner.label if winner else None,
        separation=separation or "none",
        tied=frozenset(tied),
        accuracy={r.label: pct(*acc_interval(r)) for r in found},
        seeds={r.label: len(r.values(v.TEST)) for r in found},
        steps={r.label: r.steps for r in found},
    )


def _overlaps(r: v.CellResult, low: float, high: float) -> bool:
    """Whether r's test interval overlaps [low, high]; with no interval, any runner-up does."""
    _, _, r_low, r_high = r.stat(v.TEST)
    if any(x != x for x in (low, high, r_low, r_high)):  # NaN: one seed, no interval
        return True
    return not (r_high < low or r_low > high)


def agreement(short: Verdict, long: Verdict) -> str:
    """Do the two verdicts agree, and if not, had the short one hedged? Then whether the
    long study itself told its winner from the rest."""
    if short.winner is None or long.winner is None:
        return "No comparison: one of the studies has no finished recipe."
    tied = sorted(long.tied - {long.winner})
    if long.clear or not tied:
        return _compared(short, long)
    names = [long.winner, *tied]  # labels hold commas ("fine-tune, adam"): ";" between 3+
    listed = " and ".join(names) if len(names) == 2 else f"{'; '.join(names[:-1])}; and {names[-1]}"
    text = (
        f"{_compared(short, long)} The long study itself found no clear winner: the test "
        f"intervals of {listed} overlap."
    )
    if short.winner != long.winner and short.winner in tied:
        text += (
            f" The short study's pick, {short.winner}, is one of them: on the long study's "
            "evidence it is as good an answer."
        )
    return text


def _compared(short: Verdict, long: Verdict) -> str:
    if short.winner == long.winner:
        how = "clearly" if short.clear else "though it said there was no clear winner"
        return f"**They agree**: both name {short.winner}; the short study named it {how}."
    if long.winner not in short.accuracy:
        return (
            f"**They disagree**: the long study's winner, {long.winner}, was not among the "
            f"short study's finished recipes (cut to fit: {'; '.join(short.cuts) or 'nothing'})"
            f", so the short study could not name it; it named {short.winner}."
        )
    if long.winner in short.tied:
        return (
            f"**They disagree, as the short study warned**: it named {short.winner} but said "
            f"there was no clear winner against {long.winner}, the long study's winner."
        )
    return (
        f"**They disagree, and the short study did not warn**: it named {short.winner} "
        f"clearly, the long study names {long.winner}."
    )


def comparison(short: Verdict, long: Verdict, labels: tuple[str, str]) -> list[str]:
    """Every recipe's test accuracy at both budgets, the long study's order."""
    recipes = [*long.accuracy, *(r for r in short.accuracy if r not in long.accuracy)]
    head = f"| recipe | {labels[0]} | {labels[1]} |"
    rows = [head, "|---|---|---|"]
    for recipe in recipes:
        cells = []
        for verdict in (short, long):
            if recipe not in verdict.accuracy:
                cells.append("not run")
                continue
            mark = " **winner**" if recipe == verdict.winner else ""
            steps = verdict.steps.get(recipe)
            extra = f"{verdict.seeds[recipe]} seeds" + (f", {steps:,} steps" if steps else "")
            cells.append(f"{verdict.accuracy[recipe]}{mark} ({extra})")
        rows.append(f"| {recipe} | {cells[0]} | {cells[1]} |")
    return rows


def render_dataset(name: str, short: Verdict, long: Verdict, labels: tuple[str, str]) -> str:
    lines = [f"### {name}", "", agreement(short, long), ""]
    lines += [*comparison(short, long, labels), ""]
    for label, verdict in zip(labels, (short, long), strict=True):
        cuts = "; ".join(verdict.cuts) or "nothing"
        lines.append(
            f"- {label}: `{verdict.command}` — {verdict.wall_s:.0f} s wall; cut to fit: {cuts}."
        )
    return "\n".join([*lines, ""])


def section(question: str, settings: dict, quick: bool, log_dir: Path) -> str:
    budgets = settings["quick"] if quick else settings  # quick: minutes, not the page's hour
    verdicts = {}
    for name, data in settings["datasets"].items():
        found = []
        for key in ("short", "long"):
            args = [*data, *budgets[key]]
            start = time.perf_counter()
            study = results_page.run_study(args, log_dir / name / key)
            print(f"[results] trust {name} {key}: {time.perf_counter() - start:.0f} s", flush=True)
            found.append(read_verdict(study, "python study.py " + " ".join(args)))
        verdicts[name] = (found[0], found[1])
    return render(question, settings, verdicts)


def render(question: str, settings: dict, verdicts: dict[str, tuple[Verdict, Verdict]]) -> str:
    """The section from each dataset's (short, long) verdicts."""
    labels = (settings["labels"]["short"], settings["labels"]["long"])
    parts = [f"## {NAME}", "", question, "", *settings["intro"].split("\n"), ""]
    parts += [render_dataset(name, *pair, labels) for name, pair in verdicts.items()]
    return "\n".join(parts)
