"""mode=distill: the student's loss depends on the teacher; the teacher's inputs are its own."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from hydra.utils import instantiate

from tests.conftest import QUIET, run_cli, run_dirs, summary
from transferlab import pipeline
from transferlab.data import Digits
from transferlab.data.transforms import BatchTransform, Preprocess
from transferlab.module import load_teacher


def _first_loss(cfg_factory, teacher, alpha=0.5) -> torch.Tensor:
    cfg = cfg_factory(
        "model=cnn", "mode=distill", f"distill.teacher={teacher}", f"distill.alpha={alpha}"
    )
    source = instantiate(cfg.data.source)
    L.seed_everything(0)  # the same student every time: only the teacher varies
    module = pipeline.build_module(cfg, source)
    images = pipeline.build_datamodule(
        cfg.data, source, Preprocess(**module.hparams["preprocess"]), 32, cfg.seed
    )
    images.setup()
    x, y = images.prepare_batch(*next(iter(images.train_dataloader())), train=True)
    return module._step((x, y), "train")


def test_the_students_first_loss_depends_on_the_teacher(cfg_factory, cnn_run, tmp_path):
    trained = cnn_run / "checkpoints/best.ckpt"
    ckpt = torch.load(trained, weights_only=True)
    for key in [k for k in ckpt["state_dict"] if k.startswith("net.head.")]:
        ckpt["state_dict"][key] = torch.zeros_like(ckpt["state_dict"][key])
    uniform = tmp_path / "uniform_teacher.ckpt"  # a head of zeros: every class equally likely
    torch.save(ckpt, uniform)

    with_trained, with_uniform = (
        _first_loss(cfg_factory, trained),
        _first_loss(cfg_factory, uniform),
    )
    assert abs(with_trained.item() - with_uniform.item()) > 1e-2
    # alpha=0 is the labels alone: then the teacher no longer matters.
    no_teacher = [_first_loss(cfg_factory, t, alpha=0.0).item() for t in (trained, uniform)]
    assert no_teacher[0] == pytest.approx(no_teacher[1], abs=1e-6)


def test_a_teacher_sees_its_own_preprocessing_of_the_students_batch(cnn_run):
    best = cnn_run / "checkpoints/best.ckpt"
    own = Preprocess(**torch.load(best, weights_only=True)["hyper_parameters"]["preprocess"])
    # The cnn teacher read gray digits normalised by 0.5; this student reads RGB, other stats.
    student = Preprocess(image_size=8, channels=3, mean=(0.2, 0.3, 0.4), std=(0.5, 0.6, 0.7))
    teacher = load_teacher(best, student, num_classes=10)
    image = Digits().splits(seed=0)[0][0][0]
    as_student = BatchTransform(student, [])(image.unsqueeze(0))  # the eval batch stage
    as_teacher = BatchTransform(own, [])(image.unsqueeze(0))
    assert own.channels == 1 and as_student.shape[1] == 3
    assert torch.allclose(teacher.adapt(as_student), as_teacher, atol=1e-5)


def test_distill_run_records_the_teachers_test_acc_beside_the_students(tmp_path, cnn_run):
    proc = run_cli(
        "train.py",
        "model=cnn",
        "model.channels=[16,32]",
        "mode=distill",
        f"distill.teacher={cnn_run / 'checkpoints/best.ckpt'}",
        "epochs=2",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    result = summary(run)
    teacher_acc = summary(cnn_run)["metrics"]["test/acc"]
    # The same test split: the teacher's accuracy measured here is its own run's.
    assert result["metrics"]["test/teacher_acc"] == pytest.approx(teacher_acc, abs=1e-6)
    assert result["metrics"]["test/acc"] > 0.7
    assert result["teacher"].endswith("best.ckpt")


def test_a_missing_teacher_file_is_refused_before_torch_loads(tmp_path):
    proc = run_cli(
        "train.py", "model=cnn", "mode=distill", "distill.teacher=nope/best.ckpt", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "distill.teacher=nope/best.ckpt is not a file" in proc.stderr


@pytest.mark.slow
def test_a_cnn_student_learns_from_a_lite0_teacher_with_other_preprocessing(tmp_path):
    # A few batches make a weak teacher, but one with Lite0's own preprocessing; quickly.
    teacher_run = run_cli(
        "train.py",
        "epochs=1",
        "+trainer.limit_train_batches=3",
        "task_name=teacher",
        QUIET,
        cwd=tmp_path,
    )
    assert teacher_run.returncode == 0, teacher_run.stderr[-3000:]
    (teacher,) = run_dirs(tmp_path / "logs", "teacher/runs/*")
    # Lite0 read 64 px RGB normalised by 0.5; the cnn student reads 8 px gray digits.
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=distill",
        f"distill.teacher={teacher / 'checkpoints/best.ckpt'}",
        "epochs=2",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (student,) = run_dirs(tmp_path / "logs", "train/runs/*")
    metrics = summary(student)["metrics"]
    # Prepared its own way (64 px bicubic RGB), the teacher scores here what it scored there.
    assert metrics["test/teacher_acc"] == pytest.approx(
        summary(teacher)["metrics"]["test/acc"], abs=1e-6
    )
    assert metrics["test/acc"] > 0.5
