"""How long each bad input takes to be refused, against the cost of importing torch and timm.

    python benchmarks/bad_input.py

Every case of tests/test_bad_input.py, and eval.py on data with another class count, runs
through the real command line (the files they point at are made first, one short CNN run
included). Prints each case's wall time, the slowest, and the ratio of that to
`python -c "import torch, timm"` measured in this run: a ratio under 1 means the refusal
came before the libraries could even have loaded.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_bad_input import CASES, QUIET, make_bad_inputs  # noqa: E402


def timed(*argv: str, cwd: Path) -> tuple[float, int]:
    env = {**os.environ, "PROJECT_ROOT": str(cwd)}
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = make_bad_inputs(root / "inputs")
        imports, _ = timed(sys.executable, "-c", "import torch, timm", cwd=root)
        times = {}
        for case, (overrides, _) in CASES.items():
            args = [o.format(**files) for o in overrides]
            seconds, code = timed(sys.executable, str(ROOT / "train.py"), *args, QUIET, cwd=root)
            times[case] = seconds
            print(f"{case:<34}{seconds:6.2f} s  exit {code}")
        other_data = ["data=image_folder", f"data.source.root={files['root']}/three"]
        ckpt = f"ckpt_path={files['cnn_ckpt']}"
        seconds, code = timed(sys.executable, str(ROOT / "eval.py"), ckpt, *other_data, cwd=root)
        times["eval: another class count"] = seconds
        print(f"{'eval: another class count':<34}{seconds:6.2f} s  exit {code}")
    slowest = max(times, key=times.get)
    print(f"\nimport torch, timm: {imports:.2f} s")
    print(f"slowest refusal ({slowest}): {times[slowest]:.2f} s, {times[slowest] / imports:.2f}x")


if __name__ == "__main__":
    main()
