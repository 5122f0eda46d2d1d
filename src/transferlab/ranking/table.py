"""The ranking's rows, ordered by one score, as a markdown table and as ranking.json.

ranking.json is read by other tools: `{"score", "data", "total_s", "rows": [{"backbone",
"rank", "logme", "knn", "probe", "feature_s", "dim", "cached", "skipped"}]}`; a skipped
backbone has null scores and rank, and its reason (the error's first sentence).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from transferlab.atomic import atomic_write_text

_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass(frozen=True)
class Row:
    backbone: str
    rank: int | None = None
    logme: float | None = None
    knn: float | None = None
    probe: float | None = None
    feature_s: float = 0.0
    dim: int | None = None
    cached: bool = False
    skipped: str | None = None


def first_sentence(message: str) -> str:
    """The first sentence of an error message: a skipped row's reason."""
    text = " ".join(str(message).split())
    return _SENTENCE_END.split(text, maxsplit=1)[0]


def ranked(rows: list[Row], score: str) -> list[Row]:
    """Rows best `score` first, numbered 1..n; rows without that score last, unranked."""
    scored = sorted(
        (r for r in rows if getattr(r, score) is not None), key=lambda r: -getattr(r, score)
    )
    rest = [replace(r, rank=None) for r in rows if getattr(r, score) is None]
    return [replace(r, rank=i) for i, r in enumerate(scored, 1)] + rest


def markdown(rows: list[Row], score: str) -> list[str]:
    """The table's lines; the ranking score's column is marked with an arrow."""
    names = {"logme": "LogME", "knn": "kNN acc", "probe": "probe acc"}
    heads = [f"{names[s]} ↓" if s == score else names[s] for s in names]
    lines = [
        f"| rank | backbone | {' | '.join(heads)} | feature s | dim | cached |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        if r.skipped:
            lines.append(f"| – | {r.backbone} | skipped: {r.skipped} |  |  |  |  |  |")
            continue
        cells = [_number(getattr(r, s), ".3f" if s == "logme" else ".4f") for s in names]
        cached = "yes" if r.cached else "no"
        lines.append(
            f"| {r.rank or '–'} | {r.backbone} | {' | '.join(cells)} | {r.feature_s:.1f} | "
            f"{r.dim} | {cached} |"
        )
    return lines


def _number(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def write(folder: Path, rows: list[Row], score: str, data: str, total_s: float) -> str:
    """ranking.md and ranking.json in the run folder; returns the table as printed."""
    text = "\n".join(markdown(rows, score))
    heading = f"# Backbones ranked by {score} on {data}\n\n"
    atomic_write_text(folder / "ranking.md", f"{heading}{text}\n\nTotal: {total_s:.1f} s\n")
    found = {"score": score, "data": data, "total_s": round(total_s, 3)}
    found["rows"] = [asdict(r) for r in rows]
    atomic_write_text(folder / "ranking.json", json.dumps(found, indent=2) + "\n")
    return text
