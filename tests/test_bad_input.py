"""Bad input stops in seconds with one clear paragraph, exit code 2, and a failed summary.

"In seconds" is proven without a clock: the process that refuses the input never imports
torch (the import alone costs seconds); benchmarks/bad_input.py prints the wall times.
"""

from __future__ import annotations

import pytest
import timm
import torch
from PIL import Image

from tests.conftest import (
    IMPORT_LOG,
    QUIET,
    TORCH_IMPORTED,
    read_checkpoint,
    run_cli,
    run_dirs,
    summary,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return make_bad_inputs(tmp_path_factory.mktemp("inputs"))


def make_bad_inputs(root) -> dict:
    """The files the bad inputs point at: folders, weights of all kinds, a run's checkpoint."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "one_class" / "cats").mkdir(parents=True)
    (root / "empty").mkdir()
    for name in ("cats", "dogs"):
        (root / "no_images" / name).mkdir(parents=True)
    (root / "no_images" / "cats" / "notes.txt").write_text("not an image")
    for label in ("a", "b", "c"):
        (root / "three" / label).mkdir(parents=True)
        Image.new("RGB", (8, 8), color=(ord(label), 0, 0)).save(root / "three" / label / "0.png")
    resnet18 = timm.create_model("resnet18").state_dict()  # random init: only names, shapes
    torch.save(resnet18, root / "resnet18.pth")
    blob = (root / "resnet18.pth").read_bytes()
    (root / "truncated.pth").write_bytes(blob[: len(blob) // 2])
    (root / "garbage.pth").write_bytes(b"these are not tensors\n" * 50)
    cwd = root / "cnn_run"
    cwd.mkdir()
    proc = run_cli(
        "train.py", "model=cnn", "mode=scratch", "epochs=1", "test=false", QUIET, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = run_dirs(cwd / "logs", "train/runs/*")
    return {"root": root, "cnn_ckpt": run / "checkpoints" / "last.ckpt"}


CASES = {
    "negative lr": (["lr=-1"], "lr=-1"),
    "zero epochs": (["epochs=0"], "epochs=0"),
    "zero batch": (["batch_size=0"], "batch_size=0"),
    "unknown mode": (["mode.name=frozen"], "Unknown mode 'frozen'"),
    "random features": (["model=cnn", "mode=feature_extract"], "meaningless"),
    "unknown timm model": (["model=timm", "model.name=resnet17"], "Close names: resnet18"),
    "unknown torchvision model": (
        ["model=alexnet", "model.name=vgg17"],
        "Close names: vgg19, vgg16",
    ),
    "unfreeze too far": (["mode=partial", "model.unfreeze=9"], "8 layer groups"),
    "unfreeze too far (cnn)": (
        ["model=cnn", "mode=partial", "model.weights={cnn_ckpt}", "model.unfreeze=4"],
        "3 layer groups: block1, block2, block3",
    ),
    "image too small": (
        ["model=alexnet", "mode=scratch", "data.image_size=16"],
        "too small for model=alexnet (it needs at least 63 px)",
    ),
    "image too small for pretrained alexnet": (
        ["model=alexnet", "data=cifar10", "data.image_size=16"],
        "too small for model=alexnet (it needs at least 63 px)",
    ),
    "native size too small for a scratch alexnet": (
        ["model=alexnet", "data=cifar10", "mode=scratch"],
        "32x32 px (cifar10's native size) are too small for model=alexnet",
    ),
    "missing weights": (["model.weights=/no/such/file.pth"], "does not exist"),
    "unreadable weights": (["model.weights={root}/garbage.pth"], "Could not read"),
    "truncated weights": (["model.weights={root}/truncated.pth"], "Could not read"),
    "weights of another architecture": (
        ["model.weights={root}/resnet18.pth"],
        "do not fit model 'efficientnet_lite0': the file holds the tensors of resnet18",
    ),
    "checkpoint of another model": (
        ["model.weights={cnn_ckpt}"],
        "written by a run of model=cnn, and this run builds model=efficientnet_lite0",
    ),
    "checkpoint of a CNN with other blocks": (
        ["model=cnn", "model.channels=[16,32]", "model.weights={cnn_ckpt}"],
        "model=cnn (layer groups block1, block2, block3), and this run builds model=cnn "
        "(layer groups block1, block2)",
    ),
    "no image folder": (["data=image_folder"], "data.source.root=<folder>"),
    "missing folder": (["data=image_folder", "data.source.root=/no/such/dir"], "not a folder"),
    "empty folder": (["data=image_folder", "data.source.root={root}/empty"], "0 class folder"),
    "one class": (["data=image_folder", "data.source.root={root}/one_class"], "at least two"),
    "class without images": (
        ["data=image_folder", "data.source.root={root}/no_images"],
        "no_images/cats holds no images",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_exits_2_before_torch_loads_with_its_message(case, files, tmp_path):
    overrides, message = CASES[case]
    overrides = [o.format(**files) for o in overrides]
    proc = run_cli("train.py", *overrides, QUIET, cwd=tmp_path, env=IMPORT_LOG)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr), "refused only after importing torch"
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["status"] == "failed" and message in summary(run)["error"]


def test_eval_on_data_with_another_class_count_exits_2_before_torch_loads(files, tmp_path):
    proc = run_cli(
        "eval.py",
        f"ckpt_path={files['cnn_ckpt']}",
        "data=image_folder",
        f"data.source.root={files['root']}/three",
        QUIET,
        cwd=tmp_path,
        env=IMPORT_LOG,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "The checkpoint predicts 10 classes" in proc.stderr and "has 3" in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr)


def test_eval_of_a_missing_checkpoint_exits_2(tmp_path):
    proc = run_cli("eval.py", "ckpt_path=/no/such/best.ckpt", QUIET, cwd=tmp_path)
    assert proc.returncode == 2 and "ckpt_path=/no/such/best.ckpt" in proc.stderr


def test_a_diverging_loss_stops_the_run_with_a_clear_message(tmp_path):
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=scratch",
        "optimizer=sgd",
        "lr=1e8",
        "model.batchnorm=false",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "diverged" in proc.stderr and "lr is 100000000.0" in proc.stderr
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["status"] == "failed"


def test_a_loss_that_diverges_later_keeps_the_last_good_checkpoint(tmp_path):
    """Epoch 0 trains well; the scheduler then multiplies lr by 1e7 and epoch 1 diverges."""
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=scratch",
        "optimizer=sgd",
        "lr=0.05",
        "scheduler=step",
        "scheduler.step_size=1",
        "scheduler.gamma=1e7",
        "model.batchnorm=false",
        "epochs=3",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "at epoch 1" in proc.stderr and "lr is 0.05, 5e+05 now" in proc.stderr
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["status"] == "failed"
    last = read_checkpoint(run, "last.ckpt")
    assert last["epoch"] == 0  # written after the good epoch, never after the bad one
    assert all(torch.isfinite(t).all() for t in last["state_dict"].values())
    proc = run_cli("eval.py", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", QUIET, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_secret_looking_values_are_masked_in_every_file_and_the_printed_config(tmp_path):
    proc = run_cli(
        "train.py", "debug=fdr", "+wandb_api_key=abc123secret", "+note.token=t0k", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "logs", "debug/runs/*")
    assert "wandb_api_key" in proc.stdout and "***" in proc.stdout
    written = [f for f in run.rglob("*") if f.is_file() and f.suffix != ".ckpt"]
    assert {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"} <= {
        str(f.relative_to(run)) for f in written
    }
    for text in [proc.stdout, proc.stderr, *(f.read_text(errors="replace") for f in written)]:
        assert "abc123secret" not in text and "t0k" not in text


def test_a_sweep_keeps_no_secret_in_its_files_and_still_resumes(tmp_path):
    sweep = ["-m", "debug=fdr", "seed=1,2", "+api_token=abc123secret"]
    proc = run_cli("train.py", *sweep, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    written = [f for f in (tmp_path / "logs").rglob("*") if f.is_file() and f.suffix != ".ckpt"]
    assert any(f.name == "multirun.yaml" for f in written)
    for text in [proc.stdout, proc.stderr, *(f.read_text(errors="replace") for f in written)]:
        assert "abc123secret" not in text
    again = run_cli("train.py", *sweep, "+resume=true", cwd=tmp_path)  # its record is masked
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Resuming" in again.stdout
    assert (again.stdout + again.stderr).count("already completed") == 2


def test_resume_does_not_replay_a_masked_secret(tmp_path):
    from transferlab.runs.resume import resume_argv

    (tmp_path / ".hydra").mkdir()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- lr=0.1\n- +wandb_api_key=***\n")
    argv = resume_argv([f"resume={tmp_path}"])
    assert "lr=0.1" in argv and not any("wandb_api_key" in a for a in argv)
    argv = resume_argv([f"resume={tmp_path}", "+wandb_api_key=again"])
    assert "+wandb_api_key=again" in argv


def test_a_corrupt_image_is_named_and_data_skip_corrupt_skips_it(tmp_path):
    for label, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / "tree" / label).mkdir(parents=True)
        for i in range(8):
            Image.new("RGB", (8, 8), colour).save(tmp_path / "tree" / label / f"{i}.png")
    (tmp_path / "tree" / "red" / "broken.png").write_bytes(b"not a png at all")
    common = ["data=image_folder", f"data.source.root={tmp_path / 'tree'}", "data.num_workers=0"]
    common += ["data.image_size=8", "model=cnn", "mode=scratch", "epochs=1", QUIET]
    proc = run_cli("train.py", *common, cwd=tmp_path)
    assert proc.returncode == 2 and "broken.png" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    proc = run_cli("train.py", *common, "data.skip_corrupt=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "dropped 1 unreadable image(s)" in proc.stdout + proc.stderr
