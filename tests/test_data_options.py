"""Every data= option trains and tests through the real CLI, on tiny copies of its files.

One sweep per network over the options that need no folder argument (a sweep's jobs share
one process start-up), the image folder as a run of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import QUIET, ROOT, read_checkpoint, run_cli_on_fixtures, run_dirs, summary
from tests.torchvision_files import FixtureFiles

DATA = sorted(p.stem for p in (ROOT / "conf" / "data").glob("*.yaml"))
# These need a folder, a file or a set's name; test_table_sources.py trains csv, hf and
# torchvision through the real CLI on files written in each library's own format.
NEEDS_AN_ARGUMENT = {"image_folder", "csv", "hf", "torchvision"}
SWEPT = [d for d in DATA if d not in NEEDS_AN_ARGUMENT]
ONE_EPOCH = [
    "epochs=1",
    "batch_size=4",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.limit_test_batches=1",
    "data.num_workers=0",
    QUIET,
]
NETWORKS = {
    "scratch CNN": ["model=cnn", "mode=scratch"],
    "pretrained Lite0": ["model=efficientnet_lite0", "mode=finetune"],
}
SMALL = "data.image_size=32"  # Lite0 at 224 px costs ~12 s more per run
DEFAULT_SIZE = "cifar10"  # the pretrained run that keeps data.image_size=null


def _completed(run: Path) -> dict:
    result = summary(run)
    assert result["status"] == "completed", result.get("error")
    assert "test/acc" in result["metrics"]
    return result


def _trained_size(run: Path) -> int:
    return read_checkpoint(run, "best.ckpt")["hyper_parameters"]["preprocess"]["image_size"]


@pytest.mark.slow
@pytest.mark.parametrize("network", NETWORKS)
def test_every_data_option_trains_and_tests_one_epoch(network, dataset_files, tmp_path):
    model = NETWORKS[network]
    small = [SMALL] if "Lite0" in network else []
    swept = [d for d in SWEPT if not small or d != DEFAULT_SIZE]
    sweep = ["-m", f"data={','.join(swept)}", *model, *ONE_EPOCH, *small]
    _run(sweep, dataset_files, tmp_path)
    (multirun,) = run_dirs(tmp_path / "logs", "train/multiruns/*")
    jobs = sorted(j for j in multirun.iterdir() if (j / "summary.json").is_file())
    assert len(jobs) == len(swept)
    for job in jobs:
        _completed(job)
    folder = ["data=image_folder", f"data.source.root={dataset_files.image_folder}"]
    _run([*folder, *model, *ONE_EPOCH, *small], dataset_files, tmp_path)
    if small:  # data.image_size=null: the size Lite0's ImageNet weights were made for
        _run([f"data={DEFAULT_SIZE}", *model, *ONE_EPOCH], dataset_files, tmp_path)
    runs = run_dirs(tmp_path / "logs", "train/runs/*")
    assert len(runs) == (2 if small else 1)
    for run in runs:
        _completed(run)
        default = summary(run)["overrides"][0] == f"data={DEFAULT_SIZE}"
        if small:
            assert _trained_size(run) == (224 if default else 32)


def _run(overrides: list[str], files: FixtureFiles, cwd: Path) -> None:
    proc = run_cli_on_fixtures("train.py", *overrides, cwd=cwd, files=files)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
