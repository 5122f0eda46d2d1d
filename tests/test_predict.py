"""predict.py: new images -> predictions.csv in input order, bad files listed, never fatal."""

from __future__ import annotations

import csv
import shutil
import time

from tests.conftest import IMPORT_LOG, QUIET, TORCH_IMPORTED, run_cli, run_dirs
from transferlab.inference.inputs import list_inputs


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_predict_writes_every_good_image_and_lists_a_corrupt_file_and_a_non_image(
    folder_run, tmp_path
):
    run, images = folder_run
    new = tmp_path / "new"
    (new / "deeper").mkdir(parents=True)
    shutil.copy(images / "test" / "owl" / "0.png", new / "b_owl.png")
    shutil.copy(images / "test" / "cat" / "1.png", new / "deeper" / "a_cat.png")
    (new / "broken.jpg").write_bytes(b"not a jpeg")
    (new / "notes.txt").write_text("a note")
    proc = run_cli(
        "predict.py",
        f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
        f"input={new}",
        "predict.top_k=2",
        "predict.batch_size=1",  # the corrupt file alone in its batch, and beside good ones
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = run_dirs(tmp_path / "logs", "predict/runs/*")
    rows = _rows(out / "predictions.csv")
    assert [r["path"] for r in rows] == [str(new / "b_owl.png"), str(new / "deeper" / "a_cat.png")]
    assert list(rows[0]) == [
        "path", "class", "probability",
        "top1_class", "top1_probability", "top2_class", "top2_probability",
    ]  # fmt: skip
    for row in rows:
        assert row["class"] in {"cat", "dog", "owl"} and row["class"] == row["top1_class"]
        assert float(row["top1_probability"]) >= float(row["top2_probability"]) > 0
    skipped = {r["path"] for r in _rows(out / "skipped.csv")}
    assert skipped == {str(new / "broken.jpg"), str(new / "notes.txt")}
    assert "Skipped 2 file(s)" in proc.stderr + proc.stdout


def test_predict_matches_eval_on_the_same_images(folder_run, tmp_path):
    """The run's own preprocessing: the predicted classes score as eval.py's test/acc does."""
    run, images = folder_run
    proc = run_cli(
        "predict.py",
        f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
        f"input={images / 'test'}",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = run_dirs(tmp_path / "logs", "predict/runs/*")
    rows = _rows(out / "predictions.csv")
    acc = sum(r["class"] == r["path"].split("/")[-2] for r in rows) / len(rows)
    ckpt_acc = float(
        __import__("json").loads((run / "summary.json").read_text())["metrics"]["test/acc"]
    )
    assert abs(acc - ckpt_acc) < 1e-6


def test_a_wrong_input_is_refused_before_torch_loads(folder_run, tmp_path):
    run, _ = folder_run
    start = time.perf_counter()
    proc = run_cli(
        "predict.py",
        f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
        f"input={tmp_path / 'nowhere' / '*.jpg'}",
        cwd=tmp_path,
        env=IMPORT_LOG,
    )
    assert proc.returncode == 2 and "no folder, file or glob" in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr), f"{time.perf_counter() - start:.1f} s"


def test_inputs_follow_training_image_rules_in_sorted_order(tmp_path):
    for name in ("b.PNG", "a.jpg", "sub/c.webp", ".hidden.png", "readme.md"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    found = list_inputs(str(tmp_path))
    assert [p.name for p in found.images] == ["a.jpg", "b.PNG", "c.webp"]
    assert [p.name for p, _ in found.skipped] == ["readme.md"]
    assert [p.name for p in list_inputs(str(tmp_path / "*.jpg")).images] == ["a.jpg"]
