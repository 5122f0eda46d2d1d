"""summary.json: the one file that says how a run ended, read by compare.py."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temp file and rename, so a killed process never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a summary is for everyone to read
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
