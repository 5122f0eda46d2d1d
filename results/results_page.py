"""The results page's head and parts; re-running some experiments keeps the other sections.

The head says what the page's runs were made with (`made_with`), then how to read it
(`NOTE`). `RESULTS_ONLY=a,b make results` on top of an existing page of the same kind
(full or quick) replaces the sections of a and b and their rows of the targets table, and
keeps every other section and row with the date and commit it was made at. So one
experiment can be re-run after a change without paying the whole page's 80 minutes again.
What the page runs and says (experiments, targets, seed figures, `NOTE`) is data, read
from results.yaml.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

TARGETS_HEADING = "## Targets"
QUICK_MARK = "**Quick mode**"
_DATE = re.compile(r"^- Date: (.+)$", re.MULTILINE)
_WALL = re.compile(r"— (\d+) s wall")
DATA_FILE = Path(__file__).with_name("results.yaml")


ROOT = Path(__file__).resolve().parents[1]


def script(name: str, args: list[str], log_dir: Path) -> subprocess.CompletedProcess:
    """`python -m transferlab <name without .py> args`, its logs and caches under `log_dir`."""
    env = {**os.environ, "PROJECT_ROOT": str(log_dir.parent)}
    command = name.removesuffix(".py")
    cmd = [sys.executable, "-m", "transferlab", command, *args, "extras.print_config=false"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)


def run_study(args: list[str], log_dir: Path) -> Path:
    """Run study.py with `args`, its logs under `log_dir`; the study folder it wrote."""
    before = set((log_dir / "study").glob("*/"))
    proc = script("study.py", [*args, f"paths.log_dir={log_dir}"], log_dir)
    made = sorted(set((log_dir / "study").glob("*/")) - before)
    if proc.returncode != 0 or not made or not (made[-1] / "report.md").is_file():
        tail = (proc.stdout + proc.stderr)[-1500:]
        raise RuntimeError(f"study.py {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    return made[-1]


@functools.cache
def page_data() -> dict:
    """results.yaml: the page's experiments, targets, seed figures and note."""
    return yaml.safe_load(DATA_FILE.read_text())


@dataclass
class Page:
    """A results page split into its parts: the head, the targets rows, the sections."""

    head: str
    targets: dict[str, str] = field(default_factory=dict)  # row label -> table line
    sections: dict[str, str] = field(default_factory=dict)  # experiment -> its markdown

    @property
    def quick(self) -> bool:
        return QUICK_MARK in self.head

    @property
    def made(self) -> str:
        """'<date> UTC, commit <sha>' of the head, as the environment lines wrote it."""
        found = _DATE.search(self.head)
        return found.group(1) if found else "an earlier run"


def parse(text: str) -> Page:
    parts = re.split(r"^(?=## )", text, flags=re.MULTILINE)
    page = Page(head=parts[0])
    for part in parts[1:]:
        heading = part.splitlines()[0]
        if heading == TARGETS_HEADING:
            for line in part.splitlines()[3:]:  # past the heading, blank and column names
                if line.startswith("| "):
                    page.targets[line.split("|")[1].strip()] = line
        else:
            page.sections[heading[3:].strip()] = part.rstrip("\n") + "\n"
    return page


def made_part(head: str) -> list[str]:
    """The head's lines up to the end of its list of what the page was made with."""
    lines = head.split("\n")
    last = max(i for i, line in enumerate(lines) if line.startswith("- "))
    return lines[: last + 1]


def made_line(made: str) -> str:
    return f"Made {made}."


def stamped(section: str, made: str) -> str:
    """The section with its 'Made <date>, commit <sha>.' line under the heading (once)."""
    lines = section.splitlines()
    if len(lines) > 2 and lines[2].startswith("Made "):
        return section
    return "\n".join([*lines[:2], made_line(made), "", *lines[2:]]) + "\n"


def merged(previous: Page, fresh: dict[str, str], order: list[str]) -> tuple[list[str], list[str]]:
    """(sections in `order`, names kept from `previous`): fresh ones win, the rest are kept."""
    sections, kept = [], []
    for name in order:
        if name in fresh:
            sections.append(fresh[name])
        elif name in previous.sections:
            sections.append(stamped(previous.sections[name], previous.made))
            kept.append(name)
    return sections, kept


def wall_seconds(sections: list[str]) -> float:
    """The page's total training time: the sum of its sections' wall times."""
    return float(sum(int(s) for section in sections for s in _WALL.findall(section)))


def made_now() -> str:
    """'<UTC date>, commit <sha>': when and from what a section was made."""
    here = Path(__file__).resolve().parent
    git = ["git", "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True, cwd=here).stdout.strip()
    return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit {commit or 'n/a'}"


def environment() -> list[str]:
    versions = ", ".join(
        f"{p} {metadata.version(p)}"
        for p in ("torch", "torchvision", "lightning", "timm", "hydra-core", "scikit-learn")
    )
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.machine(),
        )
        if Path("/proc/cpuinfo").is_file()
        else platform.machine()
    )
    return [
        f"- Date: {made_now()}",
        f"- Python {platform.python_version()}; {versions}",
        f"- Machine: {platform.system()} {cpu}, {os.cpu_count()} CPU cores, no GPU used",
    ]


def page(sections: list[str], quick: bool, total_s: float, kept: Sequence[str] = ()) -> str:
    """The whole page: what it was made with, the note on reading it, then `sections`."""
    return "\n".join([*made_with(quick, total_s, kept), "", *NOTE, *sections])


def made_with(quick: bool, total_s: float, kept: Sequence[str]) -> list[str]:
    """The page's title, its kind (full or quick) and the date, versions and machine."""
    mode = (
        "**Quick mode** (RESULTS_QUICK=1: 1 epoch, 300 images per split): these numbers "
        "check the machinery only; they say nothing about the methods."
        if quick
        else "Full runs: each experiment's own config plus the overrides in its command, "
        "chosen to fit the page into about 80 minutes on 2 CPU cores (the study and zoo "
        "sections take half)."
    )
    head = ["# Results", "", mode, "", *environment()]
    head.append(f"- Total wall time: {total_s:.0f} s")
    if kept:
        head.append(
            f"- Kept from earlier runs (RESULTS_ONLY re-ran the other sections): "
            f"{', '.join(kept)}; each section says when and at which commit it was made, "
            "and the total adds up the sections' wall times, which can come from machines "
            "of different speed"
        )
    return head


NOTE = page_data()["note"].split("\n")  # its lines, then one blank
