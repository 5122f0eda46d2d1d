"""A mistyped key or option is bad input: exit 2, the closest real names, no run folder."""

from __future__ import annotations

import pytest

from tests.conftest import IMPORT_LOG, TORCH_IMPORTED, run_cli
from transferlab.checks import overrides
from transferlab.cli import CONF_DIR
from transferlab.errors import UserError

MISTYPED = {
    "key of a group's source": (["data.root=/x"], "Did you mean data.source.root"),
    "top-level key": (["lr_rate=1e-3"], "Did you mean lr "),
    "key of another optimizer": (
        ["optimizer.momentun=0.9"],
        "optimizer.momentum (with optimizer=rmsprop, optimizer=sgd)",
    ),
    "key in a sweep": (["-m", "seed=1,2", "optimizer.momentun=0.9,0.8"], "optimizer.momentum"),
    "option of a group": (["model=alexnt"], "Did you mean model=alexnet?"),
}


@pytest.mark.parametrize("case", MISTYPED, ids=list(MISTYPED))
def test_a_mistyped_key_exits_2_naming_the_closest_keys_before_torch_loads(case, tmp_path):
    argv, message = MISTYPED[case]
    proc = run_cli("train.py", *argv, cwd=tmp_path, env=IMPORT_LOG)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr and "not in struct" not in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr)
    assert not (tmp_path / "logs").exists()  # refused before Hydra made a run folder


def test_eval_refuses_a_mistyped_key_too(tmp_path):
    proc = run_cli("eval.py", "ckpt_path=x.ckpt", "batch_sise=8", cwd=tmp_path)
    assert proc.returncode == 2 and "Did you mean batch_size" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "optimizer=sgd,adam", "lr=1e-3,1e-4", "mode=finetune,feature_extract"],
        ["hparams_search=optuna", "-m"],
        ["+note=first try", "trainer=ddp_sim", "hydra.job.chdir=false"],
        ["--cfg", "job", "optimizer=sgd", "optimizer.momentum=0.8"],
    ],
)
def test_overrides_that_compose_pass_the_check(argv):
    overrides.check(CONF_DIR, "train", argv)


def test_an_override_hydra_cannot_apply_is_refused_with_its_own_reason():
    with pytest.raises(UserError, match="An item is already at 'lr'"):
        overrides.check(CONF_DIR, "train", ["+lr=3"])


def test_closest_prefers_the_same_last_part_then_the_nearest_path():
    keys = ["lr", "optimizer.lr", "paths.root_dir", "data.source.root", "trainer.max_epochs"]
    assert overrides.closest("data.root", keys)[0] == "data.source.root"
    assert overrides.closest("lr_rate", keys)[:2] == ["lr", "optimizer.lr"]
    assert overrides.closest("trainer.max_epoch", keys) == ["trainer.max_epochs"]
    assert overrides.closest("colour", keys) == []
