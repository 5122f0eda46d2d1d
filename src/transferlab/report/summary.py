"""summary.json: the one file that says how a run ended, read by compare.py."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from transferlab.atomic import atomic_write_text


def _clean(value: Any) -> Any:
    """JSON-safe floats: NaN and inf become null (strict JSON readers reject them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_summary(output_dir: Path, **fields: Any) -> Path:
    """Write summary.json with `status` (completed | failed), `error` and the given fields."""
    fields.setdefault("error", None)
    metrics = fields.get("metrics") or {}
    fields["metrics"] = {k: _clean(v) for k, v in sorted(metrics.items())}
    path = Path(output_dir) / "summary.json"
    atomic_write_text(path, json.dumps(fields, indent=2, default=str) + "\n")
    return path


def read_summary(run_dir: Path) -> dict:
    return json.loads((Path(run_dir) / "summary.json").read_text())
