"""Every file in conf/experiment/ runs as its full sweep, every job completing.

All arms, one seed, one epoch of a few batches, on tiny copies of CIFAR-10, SVHN, MNIST,
Fashion-MNIST and Flowers-102 in torchvision's own file layouts, with random-init AlexNet
and VGG16 weights at torchvision's hub-cache names (tests/torchvision_files.py): what a
reader of the seeds types first on a connected machine, minus the download. The transfer
experiments train their source network first, as the results page does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from results.results import source_run
from tests.conftest import EXPERIMENTS, QUIET, run_cli_on_fixtures, run_dirs, summary, sweep_jobs
from tests.torchvision_files import md5_checks_skipped
from transferlab.data import TorchvisionSource
from transferlab.data.subsets import labels_of
from transferlab.weights_files import tensor_headers

# One seed, one short epoch: this proves the sweep runs, not what it finds.
QUICK = [
    "seed=0",
    "epochs=1",
    "batch_size=4",
    "data.source.limit=20",
    "data.source.eval_limit=20",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    QUIET,
]
SEED_NETWORKS = ("alexnet", "vgg16")  # the seeds' own: they must run at the seeds' 224 px


@pytest.fixture(scope="module")
def places365_vgg16(dataset_files, vgg16_weights, tmp_path_factory) -> Path:
    """VGG16 weights as a user converts CSAIL's Places365 Caffe file: torchvision's layout,
    a 365-class last layer."""
    state = torch.load(vgg16_weights, weights_only=True)
    generator = torch.Generator().manual_seed(365)
    state["classifier.6.weight"] = torch.randn(365, 4096, generator=generator) * 0.01
    state["classifier.6.bias"] = torch.zeros(365)
    path = tmp_path_factory.mktemp("places365") / "vgg16_places365.pth"
    torch.save(state, path)
    return path


def _arms(name: str) -> int:
    """The jobs of the experiment's sweep with one seed."""
    return len({tuple(o for o in job if not o.startswith("seed=")) for job in sweep_jobs(name)})


def _user_files(name: str, cwd: Path, files, places365: Path) -> list[str]:
    """The overrides naming a file of the user's: a source run's checkpoint, Places365."""
    if overrides := source_run(name):  # as the experiment's YAML declares it
        proc = run_cli_on_fixtures(
            "train.py", *overrides, *QUICK, "task_name=source", cwd=cwd, files=files
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        (source,) = run_dirs(cwd / "logs", "source/runs/*")
        return [f"pretrained_ckpt={source / 'checkpoints' / 'best.ckpt'}"]
    if "places365" in name:
        return [f"places365_weights={places365}"]
    return []


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_runs_its_full_sweep_on_the_seed_datasets(
    name, dataset_files, alexnet_weights, vgg16_weights, places365_vgg16, tmp_path
):
    given = _user_files(name, tmp_path, dataset_files, places365_vgg16)
    proc = run_cli_on_fixtures(
        "train.py", "-m", f"experiment={name}", *given, *QUICK, cwd=tmp_path, files=dataset_files
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    (sweep,) = run_dirs(tmp_path / "logs", "train/multiruns/*")
    jobs = [j for j in sweep.iterdir() if (j / ".hydra").is_dir()]
    assert len(jobs) == _arms(name), [j.name for j in jobs]
    assert f"{len(jobs)} completed, 0 failed" in proc.stdout
    for job in jobs:
        assert summary(job)["status"] == "completed", summary(job).get("error")
        header = tensor_headers.read_header(job / "checkpoints" / "best.ckpt")
        model = header.hparams["model"]
        if model.get("name") in SEED_NETWORKS:
            assert header.hparams["preprocess"]["image_size"] == 224, job.name


def test_data_source_limit_cuts_each_torchvision_split_stratified(dataset_files):
    with md5_checks_skipped():
        splits = TorchvisionSource(
            "cifar10", dataset_files.data_dir, limit=10, eval_limit=10
        ).splits(0)
    assert [len(s) for s in splits] == [10, 10, 10]
    for split in splits:  # one image of each of the ten classes
        labels = np.asarray(labels_of(split.dataset))[split.indices]
        assert sorted(labels.tolist()) == list(range(10))
