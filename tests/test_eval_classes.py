"""eval.py checks class names, not only their count, and asks which images to score."""

from __future__ import annotations

import shutil
import time

import torch

from tests.conftest import IMPORT_LOG, QUIET, TORCH_IMPORTED, run_cli, run_dirs, summary


def _eval(ckpt, root, cwd, *extra):
    cwd.mkdir(exist_ok=True)
    return run_cli(
        "eval.py",
        f"ckpt_path={ckpt}",
        "data=image_folder",
        f"data.source.root={root}",
        "data.num_workers=0",
        QUIET,
        *extra,
        cwd=cwd,
    )


def _reordered_checkpoint(ckpt, path):
    """The same network with its classes listed in another order (as a CSV or HF source
    would list them): the head's rows move with their names."""
    data = torch.load(ckpt, map_location="cpu", weights_only=True)
    order = [2, 0, 1]  # owl, cat, dog
    data["hyper_parameters"]["classes"] = [data["hyper_parameters"]["classes"][i] for i in order]
    for key in ("net.head.0.weight", "net.head.0.bias"):
        data["state_dict"][key] = data["state_dict"][key][order].clone()
    torch.save(data, path)
    return path


def test_reordered_classes_are_mapped_and_score_the_same(folder_run, tmp_path):
    run, images = folder_run
    ckpt = run / "checkpoints" / "best.ckpt"
    original = _eval(ckpt, images, tmp_path / "a")
    assert original.returncode == 0, original.stderr[-3000:]
    reordered = _reordered_checkpoint(ckpt, tmp_path / "reordered.ckpt")
    mapped = _eval(reordered, images, tmp_path / "b")
    assert mapped.returncode == 0, mapped.stderr[-3000:]
    assert "in another order" in mapped.stdout + mapped.stderr
    (a,) = run_dirs(tmp_path / "a" / "logs", "eval/runs/*")
    (b,) = run_dirs(tmp_path / "b" / "logs", "eval/runs/*")
    assert summary(a)["metrics"]["test/acc"] == summary(b)["metrics"]["test/acc"]
    assert summary(a)["metrics"]["test/loss"] == summary(b)["metrics"]["test/loss"]


def test_renamed_classes_exit_2_naming_both_lists_before_torch_loads(folder_run, tmp_path):
    run, images = folder_run
    renamed = tmp_path / "renamed"
    for split in ("train", "test"):
        for old, new in (("cat", "ant"), ("dog", "bee"), ("owl", "cow")):
            shutil.copytree(images / split / old, renamed / split / new)
    start = time.perf_counter()
    proc = run_cli(
        "eval.py",
        f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
        "data=image_folder",
        f"data.source.root={renamed}",
        cwd=tmp_path,
        env=IMPORT_LOG,
    )
    seconds = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "['cat', 'dog', 'owl']" in proc.stderr and "['ant', 'bee', 'cow']" in proc.stderr
    assert "Fix:" in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr), f"torch loaded; refused after {seconds:.1f} s"
    print(f"eval.py refused renamed classes in {seconds:.2f} s")  # shown with pytest -s


def test_data_without_a_test_folder_needs_eval_split(folder_run, tmp_path):
    run, images = folder_run
    ckpt = run / "checkpoints" / "best.ckpt"
    refused = _eval(ckpt, images / "test", tmp_path / "refused")
    assert refused.returncode == 2 and "eval.split=all" in refused.stderr
    every = _eval(ckpt, images / "test", tmp_path / "all", "eval.split=all")
    assert every.returncode == 0, every.stderr[-3000:]
    (out,) = run_dirs(tmp_path / "all" / "logs", "eval/runs/*")
    # all 9 images of the folder were scored: accuracy is a whole number of ninths
    assert round(summary(out)["metrics"]["test/acc"] * 9, 4) % 1 == 0
