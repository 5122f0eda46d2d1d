"""The seed write-ups' own figures, set beside our rows of the results page.

One table, results.yaml's `seed_figures`, keyed by (experiment, arm): the arm is a row's
label on the page, the values of the columns that vary joined by " / " ("" for a section
of one row). A row that is the seed's own comparison shows the figure; a row that stands
in for a seed's comparison on other data or another backbone says whose figure it is
("twin of ..."). Rows not in the table show "—": the seed gives no number for them (seed
000 and 002 give none at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from results.results_page import page_data

COLUMN = "seed's figure"
NONE = "—"


@dataclass(frozen=True)
class SeedFigure:
    """A seed's test accuracy (None: the seed has the row but left it blank)."""

    value: float | None
    whose: str  # the seed, and for a twin its backbone and data
    twin: bool = False  # our row is the offline stand-in, not the same experiment
    approx: bool = False  # the seed wrote "~86%"

    def cell(self) -> str:
        if self.value is None:
            number = NONE
        else:
            number = f"~{self.value:.2f}" if self.approx else f"{self.value:.4f}"
        return f"{number} ({'twin of ' if self.twin else ''}{self.whose})"


# (experiment, arm) -> the seed's figure, from results.yaml.
FIGURES: dict[tuple[str, str], SeedFigure] = {
    (entry["experiment"], entry["arm"]): SeedFigure(
        entry["value"], entry["whose"], entry.get("twin", False), entry.get("approx", False)
    )
    for entry in page_data()["seed_figures"]
}


def cell(experiment: str, arm: str) -> str:
    """The seed's-figure cell of one row of the page."""
    figure = FIGURES.get((experiment, arm))
    return figure.cell() if figure else NONE


_CELL_SEP = re.compile(r"(?<!\\)\|")  # markdown_table escapes a "|" inside a value


def filled(section: str, experiment: str) -> str:
    """A rendered section with its table's seed's-figure column set from FIGURES.

    Every other cell stays as it was: a page made earlier gets today's figures without
    re-running anything.
    """
    lines = section.split("\n")
    column = None
    for i, line in enumerate(lines):
        if not line.startswith("|"):
            column = None
            continue
        cells = [c.strip() for c in _CELL_SEP.split(line)[1:-1]]
        if column is None:  # a table's first line names its columns
            column = cells.index(COLUMN) if COLUMN in cells else -1
        elif column >= 0 and not line.startswith("|---"):
            cells[column] = cell(experiment, " / ".join(cells[:column]))
            lines[i] = "| " + " | ".join(cells) + " |"
    return "\n".join(lines)
