"""Shared helpers: compose configs like the CLI does, run the real command line, and read
what a run wrote (summary.json, metrics.csv, checkpoints)."""

from __future__ import annotations

import ast
import csv
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from _pytest.pathlib import LOCK_TIMEOUT, cleanup_numbered_dir
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from tests.torchvision_files import (
    FixtureFiles,
    write_datasets,
    write_hub_weights,
    write_image_folder,
)
from transferlab.cli import CONF_DIR  # registers the run-folder resolvers
from transferlab.data.transforms import Preprocess

ROOT = Path(__file__).resolve().parents[1]
QUIET = "extras.print_config=false"  # the config tree would bury the lines a test reads
# With PYTHONPROFILEIMPORTTIME every import is a stderr line: a refusal made before torch
# loads shows no torch line.
IMPORT_LOG = {"PYTHONPROFILEIMPORTTIME": "1"}
TORCH_IMPORTED = re.compile(r"\|\s+torch$", re.MULTILINE)
HALF = Preprocess(image_size=16, channels=3, mean=(0.5,), std=(0.5,))  # small RGB, cheap


def pytest_sessionstart(session: pytest.Session) -> None:
    """Delete earlier sessions' temp folders before this one writes its own.

    pytest prunes them only when a session ends, so on a machine that ran the suite before
    (a CI runner) this session would start beside tens of GB of leftovers. The
    same pytest routine runs here, first: folders of sessions still running keep their lock
    and are left alone. Skipped under --basetemp (its parent is the user's folder) and in
    xdist workers (the controller does it once).
    """
    config = session.config
    if config.option.basetemp or hasattr(config, "workerinput"):
        return
    own = config._tmp_path_factory.getbasetemp()
    dead_before = time.time() - LOCK_TIMEOUT
    cleanup_numbered_dir(
        own.parent, "pytest-", keep=1, consider_lock_dead_if_created_before=dead_before
    )


def _strings(node: ast.AST) -> set[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return set().union(*(_strings(e) for e in node.elts))
    return set()


def compared_outside(names, home: str) -> list[str]:
    """Comparisons with any of `names` in the package's modules other than `home` (the
    table that owns them), as "path:line code" lines."""
    package = ROOT / "src" / "transferlab"
    found = []
    for path in package.rglob("*.py"):
        if path.relative_to(package).as_posix() == home:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                values = _strings(node.left).union(*(_strings(c) for c in node.comparators))
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in _AFFIXES:
                values = set().union(*(_strings(a) for a in node.args))  # x.endswith("Digits")
                values = {v.rsplit(".", 1)[-1] for v in values}
            else:
                continue
            if values & set(names):
                found.append(f"{path.relative_to(package)}:{node.lineno} {ast.unparse(node)}")
    return found


_AFFIXES = ("endswith", "startswith")


EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))
# where `data=mnist` keeps the decoded registry copy (the first test to run fetches it)
MNIST_CACHE = instantiate(
    OmegaConf.create(
        {"x": OmegaConf.load(Path(CONF_DIR) / "data" / "mnist.yaml").data.source.cache_dir}
    )
).x


def sweep_jobs(name: str) -> list[list[str]]:
    """The override lists of the jobs `python train.py -m experiment=<name>` would run."""
    params = compose_hydra("train", [f"experiment={name}"]).hydra.sweeper.params or {}
    # Hydra's own grammar splits "a,b" and "[512],[64]" into choices; mimic it for the test.
    choices = [[f"{key}={v}" for v in _split(str(value))] for key, value in params.items()]
    return [list(job) for job in itertools.product(*choices)]


def _split(value: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in value:
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    return [*parts, current.strip()]


def compose_hydra(name: str, overrides: list[str]) -> DictConfig:
    """Compose a config with its `hydra` node (launcher, sweeper), outside any run."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(name, overrides=overrides, return_hydra_config=True)


def compose_cfg(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose a config exactly as `python <name>.py overrides` would, outside a run."""
    cfg = compose_hydra(name, overrides)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir / "logs")
        del cfg.hydra
    return cfg


def run_cli(
    script: str,
    *overrides: str,
    cwd: Path,
    timeout: int = 600,
    env: dict | None = None,
    runner: tuple[str, ...] = (),
):
    """Run train.py / eval.py / compare.py from the repo in a subprocess, logs under cwd."""
    full_env = {**os.environ, "PROJECT_ROOT": str(cwd), "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, *runner, str(ROOT / script), *overrides],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python -c code` in a fresh interpreter (what a process imports, how it exits)."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout
    )


def run_cli_on_fixtures(
    script: str, *overrides: str, cwd: Path, files: FixtureFiles, timeout: int = 600
):
    """`run_cli` reading `files`' datasets (md5 checks skipped) and their torch home's weights."""
    return run_cli(
        script,
        *overrides,  # first: a leading -m must stay before every override
        f"paths.data_dir={files.data_dir}",
        cwd=cwd,
        timeout=timeout,
        env={"TORCH_HOME": str(files.torch_home)},
        runner=(str(ROOT / "tests" / "fixture_cli.py"),),
    )


def kill_after_first_epoch(*overrides: str, cwd: Path) -> Path:
    """Start `train.py overrides task_name=killed`, SIGKILL it early in its second epoch.

    Returns its run folder, whose last.ckpt holds epoch 0's end: what `resume=` continues.
    """
    env = {**os.environ, "PROJECT_ROOT": str(cwd)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *overrides, "task_name=killed"],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        runs = run_dirs(cwd / "logs", "killed/runs/*")
        last = runs[0] / "checkpoints/last.ckpt" if runs else None
        if last and last.is_file() and torch.load(last, weights_only=True)["epoch"] >= 1:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # into the next epoch
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (killed,) = run_dirs(cwd / "logs", "killed/runs/*")
    return killed


def killed_and_resumed(*overrides: str, cwd: Path) -> tuple[Path, Path]:
    """Train `overrides` straight through, then again killed early in epoch 1 and resumed.

    Returns (the straight run's folder, the resumed one's): a test compares what they wrote.
    """
    straight = run_cli("train.py", *overrides, "task_name=straight", cwd=cwd)
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = kill_after_first_epoch(*overrides, cwd=cwd)
    resumed = run_cli("train.py", f"resume={killed}", cwd=cwd)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert run_dirs(cwd / "logs", "killed/runs/*") == [killed]  # same folder, no new one
    (reference,) = run_dirs(cwd / "logs", "straight/runs/*")
    return reference, killed


def run_dirs(log_dir: Path, pattern: str = "*/runs/*") -> list[Path]:
    return sorted(p for p in log_dir.glob(pattern) if p.is_dir())


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def logged(run_dir: Path, column: str, when: str | None = None) -> list[str]:
    """A column of the run's metrics.csv, on the rows that log `when` (default: itself)."""
    with open(run_dir / "csv" / "metrics.csv") as f:
        return [row[column] for row in csv.DictReader(f) if row[when or column]]


def read_checkpoint(run_dir: Path, name: str) -> dict:
    """The run's checkpoints/<name> (best.ckpt, last.ckpt), loaded on the CPU."""
    return torch.load(run_dir / "checkpoints" / name, map_location="cpu", weights_only=True)


@pytest.fixture(scope="session", autouse=True)
def facts_cache(tmp_path_factory):
    """Facts measured under other library versions go to a cache of this session's own."""
    os.environ["TRANSFERLAB_CACHE"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def cfg_factory(tmp_path):
    def make(*overrides: str, name: str = "train") -> DictConfig:
        return compose_cfg(name, list(overrides), tmp_path)

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def cnn_run(tmp_path_factory) -> Path:
    """The folder of one finished model=cnn run on digits (2 epochs), shared by tests that
    need a small trained checkpoint (a teacher, pretrained weights)."""
    cwd = tmp_path_factory.mktemp("cnn_run")
    proc = run_cli(
        "train.py", "model=cnn", "mode=scratch", "epochs=2", "extras.print_config=false", cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(cwd / "logs")
    return run


@pytest.fixture(scope="session")
def dataset_files(tmp_path_factory) -> FixtureFiles:
    """Tiny copies of every dataset a data= option reads (tests/torchvision_files.py), and
    a torch home for weights; tests that change files copy them first."""
    return write_datasets(tmp_path_factory.mktemp("dataset_files"))


@pytest.fixture(scope="session")
def alexnet_weights(dataset_files) -> Path:
    """Random-init AlexNet weights (244 MB) where torchvision's ImageNet ones would be."""
    return write_hub_weights(dataset_files.torch_home, "alexnet")


@pytest.fixture(scope="session")
def vgg16_weights(dataset_files) -> Path:
    """Random-init VGG16 weights (553 MB) where torchvision's ImageNet ones would be."""
    return write_hub_weights(dataset_files.torch_home, "vgg16")


# A timm network small enough to train in seconds, which export's safetensors can rebuild.
FOLDER_MODEL = ("model=timm", "model.name=resnet10t", "model.pretrained=false", "mode=scratch")


@pytest.fixture(scope="session")
def folder_run(tmp_path_factory) -> tuple[Path, Path]:
    """(run folder, image folder) of one finished 1-epoch resnet10t run on a cat/dog/owl
    image folder with train/ and test/, at 32 px: for predict, export and eval's checks."""
    cwd = tmp_path_factory.mktemp("folder_run")
    images = cwd / "images"
    write_image_folder(images / "train", per_class=8)
    write_image_folder(images / "test", per_class=3)
    proc = run_cli(
        "train.py",
        *FOLDER_MODEL,
        "data=image_folder",
        f"data.source.root={images}",
        "data.image_size=32",
        "epochs=1",
        QUIET,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(cwd / "logs")
    return run, images
