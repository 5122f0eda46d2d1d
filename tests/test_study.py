"""study.py: the plan fits its budget, runs land per cell, and a killed study resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import MNIST_CACHE, ROOT
from tests.torchvision_files import write_mnist_folder
from transferlab.arm_kinds import KINDS
from transferlab.errors import UserError
from transferlab.study import budget
from transferlab.study import grid as grid_module
from transferlab.study import plan as planning
from transferlab.study.batches import Batch
from transferlab.study.plan import Arm, Cost, Counts, Settings
from transferlab.study.resume import study_argv
from transferlab.study.state import StudyPlan

ARMS = [
    Arm("scratch", "s", KINDS["random_init"]),
    Arm("finetune", "f", KINDS["trained"]),
    Arm("svm", "v", KINDS["classical"]),
]
SMALL = {  # the pretrained arms' probes at the smallest candidate size
    "finetune": Cost(batch_s=0.3, job_s=3.0, image_size=32),
    "svm": Cost(batch_s=0.0, job_s=3.0, image_size=32, feature_s=2.0, probed_images=1800),
}
COSTS = {
    "scratch": Cost(batch_s=0.01, job_s=2.0, image_size=None),
    "finetune": Cost(batch_s=0.4, job_s=3.0, image_size=64, small=SMALL["finetune"]),
    "svm": Cost(0.0, 3.0, 64, feature_s=4.0, probed_images=1800, small=SMALL["svm"]),
}
COUNTS = Counts(train=1257, val=270, test=270, batch_size=64)
CANDIDATES = {
    "epochs": [10, 5, 3, 2, 1],
    "image_sizes": [64, 48, 32],
    "train_cuts": [1000, 300],
    "seeds": 3,
    "max_seeds": 5,
    "budget_minutes": 10,
    "arms": ["scratch", "finetune", "svm"],
    "optimizers": ["adam", "sgd"],
}


def _seconds(sizes=(None,)):
    def seconds(s: Settings) -> float:
        cells = planning.planned(ARMS, ["adam", "sgd"], s)
        lrs = 1 if s.one_lr else 3
        return planning.estimate(cells, COSTS, s, COUNTS, process_s=5, processes=6, grid=lrs)

    return seconds


def test_cells_give_classical_heads_no_optimizer_and_name_each_cell_once():
    cells = planning.cells(ARMS, ["adam", "sgd"], (100, None))
    ids = [c.id for c in cells]
    assert ids == [
        "scratch-adam-n100", "scratch-sgd-n100", "finetune-adam-n100", "finetune-sgd-n100",
        "svm-n100", "scratch-adam", "scratch-sgd", "finetune-adam", "finetune-sgd", "svm",
    ]  # fmt: skip


def test_the_plan_cuts_epochs_then_the_training_set_then_image_size_until_it_fits():
    seconds = _seconds()
    roomy = budget.fit(CANDIDATES, 10_000, seconds, COUNTS, (None,))
    assert (roomy.epochs, roomy.image_size, roomy.train_cut) == (10, 64, None)
    assert roomy.seeds == 5 and roomy.cuts == ("seeds 3 -> 5 (room in the budget)",)
    base = Settings(10, 64, None, 3)
    ladder = [base, *budget._steps(base, [10, 5, 3, 2, 1], [64, 48, 32], [None, 1000, 300])]
    assert [(s.epochs, s.image_size, s.train_cut) for s in ladder] == [
        (10, 64, None), (5, 64, None), (3, 64, None), (3, 64, 1000), (3, 64, 300),
        (3, 48, 300), (3, 32, 300), (2, 32, 300), (1, 32, 300),
    ]  # fmt: skip
    for minutes in (400, 250, 150):
        tight = budget.fit(CANDIDATES, minutes, seconds, COUNTS, (None,))
        target = budget.FILL * minutes
        assert seconds(tight) <= target and tight.cuts[0] == f"epochs 10 -> {tight.epochs}"
        # Nothing cut could be given back: one more epoch, pixel or image would not fit.
        larger = {"epochs": [5, 10], "image_size": [48, 64], "train_cut": [1000, None]}
        for key, values in larger.items():
            now = getattr(tight, key)
            up = [v for v in values if now is not None and (v is None or v > now)][:1]
            for value in up:
                assert seconds(replace(tight, seeds=3, **{key: value})) > target, (key, tight)


def test_small_sizes_get_at_least_min_steps_and_about_ten_validations():
    counts = Counts(train=50_000, val=10_000, test=10_000, batch_size=64)
    s = Settings(3, 32, None, 3, (100, 1000, 50_000), min_steps=300)
    plans = {
        c.size: planning.schedule(c, s, counts)
        for c in planning.cells(ARMS[1:2], ["adam"], s.sizes)
    }
    assert plans[100] == planning.Schedule(epochs=150, val_every=15, steps=300)  # 2 batches
    assert plans[1000].steps >= 300 and plans[1000].epochs == 19  # 16 batches an epoch
    assert plans[50_000] == planning.Schedule(epochs=3, val_every=1, steps=3 * 782)
    from omegaconf import OmegaConf

    from transferlab.study.grid import common

    spec = OmegaConf.create({"lr": "grid"})
    assert common(s, spec, planning.Cell(ARMS[1], "adam", 100), counts)[:2] == [
        "epochs=150",
        "trainer.check_val_every_n_epoch=15",
    ]  # what the run's train.py is told
    svm = planning.schedule(planning.Cell(ARMS[2], None, 100), s, counts)
    assert svm.steps == 0  # fitted by scikit-learn
    # the time estimate pays for the steps: 100 images cost what 300 steps and 10 checks do
    cell = planning.Cell(ARMS[1], "adam", 100)
    seconds = planning.job_seconds(cell, Cost(batch_s=1.0, job_s=0.0, image_size=32), s, counts)
    assert seconds == pytest.approx(
        300 + planning.EVAL_SHARE * 157 * 10 + planning.EVAL_SHARE * 157
    )


def test_dropping_an_optimizer_gives_back_the_training_set_an_earlier_cut_took():
    def seconds(s: Settings) -> float:  # per optimizer: a fixed cost that no epoch cut saves
        images = COUNTS.train if s.train_cut is None else s.train_cut
        per_optimizer = (100 + 10 * images / COUNTS.train + s.epochs) * s.seeds / 3
        return per_optimizer * (2 - len(s.optimizers_dropped))

    # Both optimizers at the smallest settings need 207 s; adam alone with everything, 120.
    s = budget.fit(CANDIDATES, 130 / budget.FILL, seconds, COUNTS, (None,))
    assert s.optimizers_dropped == ("sgd",) and s.train_cut is None and s.epochs == 10
    assert s.cuts == ("optimizers dropped: sgd",) and s.seeds == 3


def test_the_cut_order_ends_with_whole_arms_and_the_refusal_names_a_budget():
    seconds = _seconds()
    floor = Settings(1, 32, 300, 3, optimizers_dropped=("sgd",))
    two_arms = min((replace(floor, arms_dropped=(a,)) for a in CANDIDATES["arms"]), key=seconds)
    s = budget.fit(CANDIDATES, seconds(two_arms) * 1.001 / budget.FILL, seconds, COUNTS, (None,))
    assert len(s.arms_dropped) == 1 and s.optimizers_dropped == ("sgd",) and s.seeds >= 3
    assert s.cuts[-1].startswith("arms dropped: ") or "seeds" in s.cuts[-1]
    with pytest.raises(UserError, match=r"study\.budget_minutes=(\d+), or fewer steps") as err:
        budget.fit(CANDIDATES, seconds(two_arms) * 0.5, seconds, COUNTS, (None,))
    needed = int(err.value.args[0].split("study.budget_minutes=")[-1].split(",")[0])
    spent = CANDIDATES["budget_minutes"] * 60 - seconds(two_arms) * 0.5
    assert needed * 60 >= spent + seconds(two_arms) / budget.FILL  # enough, the probe included


def test_a_smaller_image_costs_what_the_two_probes_say_not_its_share_of_pixels():
    small = Cost(batch_s=0.3, job_s=1.0, image_size=32, feature_s=2.0, probed_images=100)
    cost = Cost(
        batch_s=0.5, job_s=1.0, image_size=64, feature_s=6.0, probed_images=100, small=small
    )
    assert cost.at(64) == (0.5, 0.06)
    assert cost.at(32) == (0.3, 0.02)
    batch_s, per_image = cost.at(48)  # affine in pixels: (48² - 32²) / (64² - 32²) = 5/12
    assert batch_s == pytest.approx(0.3 + 0.2 * 5 / 12) and per_image == pytest.approx(
        0.02 + 0.04 * 5 / 12
    )
    assert cost.at(16) == (0.3, 0.02) and cost.at(None) == (0.5, 0.06)  # never below a probe
    finetune = COSTS["finetune"]
    cell = planning.Cell(ARMS[1], "adam", None)
    at_32 = planning.job_seconds(cell, finetune, Settings(3, 32, None, 3), COUNTS)
    at_64 = planning.job_seconds(cell, finetune, Settings(3, 64, None, 3), COUNTS)
    share = planning.EVAL_SHARE  # 3 epochs of 20 training + 5 val batches, then 5 test
    steps = 3 * (20 + 5 * share) + 5 * share
    assert at_32 / at_64 == pytest.approx((3 + 0.3 * steps) / (3 + 0.4 * steps))


def test_no_arm_runs_above_its_own_image_size_and_each_pays_for_the_size_it_runs_at():
    cnn = KINDS["random_init"]
    folder_cnn = Arm("scratch", "s", cnn, own_size=224)  # image folders: 224 px
    digits_cnn = Arm("scratch", "s", cnn, own_size=8)
    assert folder_cnn.size_at(32) == 32 and digits_cnn.size_at(32) == 8
    assert folder_cnn.size_at(None) is None  # no candidates: as configured
    small = Cost(batch_s=0.05, job_s=1.0, image_size=32)
    cost = Cost(batch_s=5.0, job_s=1.0, image_size=64, small=small)
    at = {a.own_size: planning.job_seconds(planning.Cell(a, "adam", None), cost,
                                           Settings(3, 32, None, 3), COUNTS)
          for a in (folder_cnn, Arm("scratch", "s", cnn, own_size=64))}  # fmt: skip
    assert at[224] == at[64] < 10  # both run at 32 px, priced by the 32 px probe


def test_a_budget_too_small_for_the_smallest_plan_is_refused_with_the_minutes_it_needs():
    with pytest.raises(UserError, match=r"study\.budget_minutes=10 is too small.*minutes here"):
        budget.fit(CANDIDATES, 20, _seconds(), COUNTS, (None,))


def test_with_sizes_the_largest_sizes_are_dropped_before_image_size_and_seeds_stay():
    sizes = (100, 300, 1000)
    seconds = _seconds(sizes)
    full = seconds(Settings(3, 64, None, 3, sizes))
    s = budget.fit(CANDIDATES, full / budget.FILL * 0.9, seconds, COUNTS, sizes)
    assert s.sizes[0] == 100 and 1000 not in s.sizes and s.image_size == 64
    assert s.seeds_at(100) == s.seeds >= 3 and "sizes dropped: 1,000" in s.cuts


def test_the_lr_grid_narrows_to_its_middle_value_before_an_arm_goes():
    grid = {"adam": [3e-4, 1e-3, 3e-3]}
    candidates = {**CANDIDATES, "optimizers": ["adam"], "lr": "grid", "lr_grid": grid}

    def seconds(s: Settings) -> float:  # the first seed tries 3 lrs: 2 runs more a cell
        runs = s.seeds + (0 if s.one_lr else 2)
        return 10.0 * runs * (len(candidates["arms"]) - len(s.arms_dropped))

    # the grid at 3 arms: 150 s; one lr: 90 s; the grid at 2 arms: 100 s
    s = budget.fit(candidates, 95 / budget.FILL, seconds, COUNTS, (None,))
    assert s.one_lr and s.arms_dropped == () and s.seeds == 3
    assert s.cuts == ("lr grid narrowed to its middle value (one lr per optimizer)",)
    assert not budget.fit(candidates, 150 / budget.FILL, seconds, COUNTS, (None,)).one_lr
    spec = OmegaConf.create({"lr_grid": grid})
    assert grid_module.lr_candidates(spec, "adam", s) == ["0.001"]
    assert grid_module.lr_candidates(spec, "adam", replace(s, one_lr=False)) == [
        "0.0003",
        "0.001",
        "0.003",
    ]
    saved = StudyPlan.new(s, COUNTS, "grid", command="", data="digits", backbone="",
                          budget_minutes=10, estimate_minutes=9, started="")  # fmt: skip
    assert saved.typed_settings().one_lr  # a resumed study runs the lr it planned


def test_arms_go_within_a_family_first_so_each_family_keeps_a_recipe():
    cost = {"scratch": 10, "features_svm": 150, "features_linear": 160, "finetune": 100}
    cost["gradual"] = 90
    families = {"features_svm": "frozen", "features_linear": "frozen", "gradual": "finetune"}
    families |= {"scratch": "scratch", "finetune": "finetune"}
    candidates = {**CANDIDATES, "arms": list(cost), "optimizers": ["adam"]}

    def seconds(s: Settings) -> float:
        return sum(c for arm, c in cost.items() if arm not in s.arms_dropped) * s.seeds / 3

    # 510 s in all: by cost alone both frozen arms would go (350, then 200 s)
    s = budget.fit(candidates, 300 / budget.FILL, seconds, COUNTS, (None,), families)
    assert s.arms_dropped == ("features_linear", "finetune")
    assert {families[a] for a in cost if a not in s.arms_dropped} == {
        "scratch",
        "frozen",
        "finetune",
    }


def test_a_small_validation_split_turns_on_cross_validation_with_at_most_k_seeds():
    spec = {"folds": 5, "cv_below": 200}
    assert planning.cv_folds(spec, replace(COUNTS, val=15)) == 5
    assert planning.cv_folds(spec, COUNTS) is None  # 270 validation images pick as they are
    assert planning.cv_folds({**spec, "folds": None}, replace(COUNTS, val=15)) is None
    cv = Settings(3, 64, None, 3, folds=5)
    cell = planning.Cell(ARMS[0], "adam", 100)
    assert planning.train_images(cell, cv, COUNTS) == 80  # its fold is held out
    assert planning.val_images(cell, cv, COUNTS) == 20
    assert planning.val_images(cell, replace(cv, folds=None), COUNTS) == COUNTS.val
    assert cv.lr_seeds_at(100) == 3 and replace(cv, folds=None).lr_seeds_at(100) == 1

    def runs(s: Settings) -> float:  # the estimate in runs of the cell
        one = planning.job_seconds(cell, COSTS["scratch"], s, COUNTS)
        return planning.estimate([cell], COSTS, s, COUNTS, 0, 0, grid=3) / one

    # each other lr of the grid is tried on 3 folds: 3 seeds + 2 x 3, not 3 + 2
    assert runs(cv) == pytest.approx(9) and runs(replace(cv, folds=None)) == pytest.approx(5)
    roomy = budget.fit(CANDIDATES, 1e9, _seconds(), COUNTS, (None,), folds=4)
    assert roomy.seeds == 4 and roomy.folds == 4  # seed s runs fold s: never more seeds
    assert budget.fit(CANDIDATES, 1e9, _seconds(), COUNTS, (None,)).seeds == 5
    with pytest.raises(UserError, match=r"study.seeds=3 is more than study.folds=2.*Fix"):
        budget.fit(CANDIDATES, 1e9, _seconds(), COUNTS, (None,), folds=2)
    saved = StudyPlan.new(roomy, COUNTS, "grid", command="", data="digits", backbone="",
                          budget_minutes=10, estimate_minutes=9, started="")  # fmt: skip
    assert saved.typed_settings().folds == 4  # a resumed study validates on the same folds


def test_with_cross_validation_each_lr_is_tried_on_three_folds_and_kept_on_their_mean(tmp_path):
    from tests.test_study_report import make_cell, write_run

    spec = OmegaConf.create({"lr": "grid", "lr_grid": {"adam": [1e-3, 1e-2]}})
    settings = Settings(3, 32, None, 5, folds=5)
    cells = planning.cells(ARMS[:1], ["adam"], (None,))
    sides = {k: ["data=digits"] for k in KINDS.values()}
    first = grid_module.batches(cells, settings, spec, sides, COUNTS, first=True)
    assert [(b.seeds, b.lrs) for b in first] == [([0, 1, 2], ["0.001", "0.01"])]
    plan = StudyPlan.new(settings, COUNTS, "grid", command="", data="digits", backbone="",
                         budget_minutes=10, estimate_minutes=9, started="")  # fmt: skip
    cell = make_cell("scratch", lr=None)
    # fold 0 alone would keep 0.01; the mean over the three folds keeps 0.001
    for seed, (a, b) in enumerate([(0.80, 0.90), (0.85, 0.70), (0.86, 0.72)]):
        write_run(tmp_path, cell, seed, a, a, lr="0.001")
        write_run(tmp_path, cell, seed, b, b, lr="0.01")
    grid_module.pick_lrs(plan, cells, tmp_path, spec)
    assert plan.cell("scratch-adam").lr == "0.001"
    later = grid_module.batches(cells, settings, spec, sides, COUNTS, first=False, plan=plan)
    assert [(b.seeds, b.lrs) for b in later] == [([3, 4], ["0.001"])]


def test_a_cross_validated_study_pools_a_carved_validation_split_unless_the_user_set_it():
    from transferlab.study.arms import cv_counts, cv_overrides, split_counts

    source = {"_target_": "transferlab.data.digits.Digits", "val_fraction": 0.15}
    cfg = OmegaConf.create({"data": {"source": {**source, "test_fraction": 0.15}}})
    cfg.seed, cfg.batch_size = 0, 64
    assert cv_overrides(cfg, [], 5) == [
        "data.folds=5",
        "data.fold=${seed}",
        "data.source.val_fraction=0",
    ]
    given = ["data.source.val_fraction=0.3"]
    assert cv_overrides(cfg, given, 5) == ["data.folds=5", "data.fold=${seed}"]
    fixed = OmegaConf.create({"data": {"source": {"root": "x"}}})  # its own val split
    assert "data.source.val_fraction=0" not in cv_overrides(fixed, [], 5)
    before, pooled = split_counts(cfg), cv_counts(cfg, [])
    assert pooled.train == before.train + before.val and pooled.val == 0
    assert pooled.test == before.test  # test is carved first: the same images
    assert cv_counts(cfg, given) == before and cfg.data.source.val_fraction == 0.15


def test_gradual_unfreezing_is_probed_where_its_schedule_ends_in_a_probe_of_its_own():
    """Its first two epochs train the head alone: timed there, the planner had priced it at
    a third of what its runs cost (a 10-minute digits study ran 4% over its budget)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from tests.test_arm_kinds import BACKBONE, TINY
    from transferlab.config_dirs import CONF_DIR
    from transferlab.finetune.gradual import GradualUnfreezing
    from transferlab.study.arms import arm_of
    from transferlab.study.probe import probe_groups

    keys = ("freeze_epochs", "unfreeze_every", "groups_per_step")
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        gradual = arm_of("gradual", TINY, BACKBONE)
        for extra, trained in (((), 0), (gradual.probe, 9)):
            cfg = compose("train", overrides=["arm=gradual", *extra])
            unfreezing = GradualUnfreezing(**{k: cfg.mode[k] for k in keys})
            assert unfreezing.groups_at(0, 9) == trained  # epoch 0: the head alone, or all 9
        assert arm_of("finetune", TINY, BACKBONE).probe == ()
    GlobalHydra.instance().clear()
    arms = [*ARMS, gradual]
    sides = {k: [k.name] for k in KINDS.values()}
    groups = probe_groups(arms, sides, {a.name: [64] for a in arms})
    assert [[a.name for a in g.arms] for g in groups] == [
        ["scratch"],
        ["finetune"],
        ["svm"],
        ["gradual"],  # not in finetune's process: its overrides are its own
    ]
    assert groups[-1].overrides == ["trained", *gradual.probe]


def test_a_batch_puts_seeds_first_so_every_cell_gets_seed_0_before_any_seed_1(tmp_path):
    cells = planning.cells(ARMS[1:2], ["adam", "sgd"], (100, 300))
    batch = Batch("b", cells, [1, 2], ["data=digits"])
    argv = batch.argv(tmp_path, resume=False)
    assert argv[:4] == [
        "seed=1,2",
        "arm=finetune",
        "optimizer=adam,sgd",
        "data.source.limit=100,300",
    ]
    subdir = next(a for a in argv if a.startswith("hydra.sweep.subdir="))
    assert "-n${data.source.limit}/seed${seed}" in subdir
    assert tmp_path / "runs" / "finetune-sgd-n300" / "seed2" in batch.job_folders(tmp_path)
    assert f"+resume={tmp_path / 'runs'}" in batch.argv(tmp_path, resume=True)


def test_cells_sharing_seeds_and_lrs_share_a_process_across_sizes_and_no_job_is_extra():
    from omegaconf import OmegaConf

    from transferlab.study.grid import batches

    spec = OmegaConf.create({"lr": "grid", "lr_grid": {"adam": [1e-3, 1e-2]}})
    sizes = (100, 300, 1000)
    settings = Settings(3, 32, None, 3, sizes, few_seed_sizes=(1000,))
    cells = planning.cells(ARMS, ["adam"], sizes)
    sides = {
        k: [f"model={'efficientnet_lite0' if k.on_backbone else 'cnn'}"] for k in KINDS.values()
    }
    first = batches(cells, settings, spec, sides, COUNTS, first=True)
    assert [b.name for b in first] == [
        "classical-n100,300,1000-seeds[0]",
        "random_init-adam-n100,300,1000-lr0.001,0.01-seeds[0]",
        "trained-adam-n100,300,1000-lr0.001,0.01-seeds[0]",
    ]
    picked = {"finetune-adam-n100": 0.01, "finetune-adam-n300": 0.001, "scratch-adam-n100": 0.01,
              "scratch-adam-n300": 0.01, "scratch-adam-n1000": 0.01}  # fmt: skip
    plan = StudyPlan.new(settings, COUNTS, "grid", command="", data="digits", backbone="",
                         budget_minutes=10, estimate_minutes=9, started="")  # fmt: skip
    for cell_id, lr in picked.items():
        plan.cell(cell_id).lr = repr(lr)
    later = batches(cells, settings, spec, sides, COUNTS, first=False, plan=plan)
    jobs = {(b.name, tuple(b.seeds), c.id) for b in later for c in b.cells}
    assert {b.name for b in later} == {  # 1,000 images run one seed: no later seeds there
        "classical-n100,300-seeds[1, 2]",
        "random_init-adam-n100,300-lr0.01-seeds[1, 2]",
        "trained-adam-n100-lr0.01-seeds[1, 2]",  # the picked lrs differ: a sweep each
        "trained-adam-n300-lr0.001-seeds[1, 2]",
    }
    assert len(jobs) == 6 and all(b.job_folders(Path("s")) for b in later)


def test_resume_replays_the_studys_own_overrides_into_its_folder(tmp_path):
    with pytest.raises(UserError, match="not a study folder"):
        study_argv([f"resume={tmp_path}"])
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text("- data=digits\n- study.seeds=3\n")
    (tmp_path / "plan.json").write_text("{}")
    argv = study_argv([f"resume={tmp_path}", "study.seeds=4"])
    assert argv == ["data=digits", "study.seeds=4", f"hydra.run.dir={tmp_path.resolve()}"]


def test_resuming_a_study_whose_config_held_a_secret_does_not_replay_the_mask(tmp_path):
    (tmp_path / ".hydra").mkdir()
    saved = "- data=digits\n- +wandb_api_key=***\n"  # as masking.py writes a secret
    (tmp_path / ".hydra" / "overrides.yaml").write_text(saved)
    (tmp_path / "plan.json").write_text("{}")
    argv = study_argv([f"resume={tmp_path}"])
    assert argv == ["data=digits", f"hydra.run.dir={tmp_path.resolve()}"]
    argv = study_argv([f"resume={tmp_path}", "+wandb_api_key=again"])
    assert "+wandb_api_key=again" in argv and "+wandb_api_key=***" not in argv


def _study(folder: Path, tmp_path: Path, *extra: str) -> subprocess.Popen:
    args = [
        "data=image_folder",
        f"data.source.root={folder}",
        "data.source.val_fraction=0.25",
        "data.source.test_fraction=0.25",
        "study.arms=[scratch,features_linear]",
        "study.optimizers=[adam]",
        "study.lr_grid.adam=[1e-3]",  # one lr: the grid machinery, at a test's cost
        "study.seeds=3",
        "study.max_seeds=3",
        "study.epochs=[2]",
        "study.min_steps=8",  # 2 epochs of 30 images: 4 steps; min_steps doubles that
        "study.image_sizes=[32]",
        "study.probe_batches=2",
        "study.budget_minutes=6",
        "batch_size=16",
        f"paths.log_dir={tmp_path / 'logs'}",
        *extra,
    ]
    return subprocess.Popen(
        [sys.executable, str(ROOT / "study.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_a_study_on_an_image_folder_killed_mid_way_resumes_without_repeating_a_run(tmp_path):
    folder = write_mnist_folder(tmp_path / "images", per_class=12, cache_dir=MNIST_CACHE)
    proc = _study(folder, tmp_path)
    runs = tmp_path / "logs" / "study"
    first = None
    deadline = time.monotonic() + 400
    while first is None and time.monotonic() < deadline and proc.poll() is None:
        done = sorted(runs.glob("*/runs/*/seed*/summary.json"))
        done = [d for d in done if json.loads(d.read_text())["status"] == "completed"]
        first = done[0] if done else None
        time.sleep(0.5)
    assert first is not None, proc.communicate()[0][-3000:]
    proc.send_signal(signal.SIGTERM)  # the study stops its running sweep with it
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0, out[-2000:]
    study = first.parents[3]
    stamp = {p: p.stat().st_mtime_ns for p in study.glob("runs/*/seed*/summary.json")}
    kept = {p for p in stamp if json.loads(p.read_text())["status"] == "completed"}
    assert kept

    again = subprocess.run(
        [sys.executable, str(ROOT / "study.py"), f"resume={study}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert "Resuming the study" in again.stdout + again.stderr
    for path in kept:  # completed runs are not run again
        assert path.stat().st_mtime_ns == stamp[path], path
    plan = json.loads((study / "plan.json").read_text())
    assert {c["id"]: c["status"] for c in plan["cells"]} == {
        "scratch-adam": "done",
        "features_linear-adam": "done",
    }
    assert len(list(study.glob("runs/*/seed*/summary.json"))) == 6
    report = (study / "report.md").read_text()
    assert report.index("## Verdict") < report.index("## ", report.index("## Verdict") + 3)
    assert "95% interval" in report and (study / "plots" / "recipes.png").stat().st_size > 0
    assert plan["elapsed_minutes"] <= 6 * 1.15


@pytest.mark.slow
def test_a_study_on_a_small_validation_split_cross_validates_each_run_on_its_own_fold(tmp_path):
    args = [
        "data=digits",
        "data.source.limit=150",
        "study.cv_below=1000",  # digits' 270 validation images count as small here
        "study.arms=[scratch,features_linear]",
        "study.optimizers=[adam]",
        "study.lr_grid.adam=[1e-3,1e-2]",
        "study.seeds=3",
        "study.max_seeds=3",
        "study.epochs=[2]",
        "study.min_steps=8",
        "study.image_sizes=[32]",
        "study.probe_batches=2",
        "study.budget_minutes=8",
        "batch_size=16",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    proc = subprocess.run(
        [sys.executable, str(ROOT / "study.py"), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    study = next((tmp_path / "logs" / "study").iterdir())
    plan = json.loads((study / "plan.json").read_text())
    assert plan["settings"]["folds"] == 5 and plan["val_split"] == 270
    runs = {p.parents[1].relative_to(study / "runs").as_posix(): OmegaConf.load(p)
            for p in study.glob("runs/*/seed*/.hydra/config.yaml")}  # fmt: skip
    lrs = ("0.001", "0.01")
    cells = ("scratch-adam", "features_linear-adam")
    assert {f"{c}/seed{s}-lr{lr}" for c in cells for s in range(3) for lr in lrs} == set(runs)
    for cfg in runs.values():  # seed s validates on fold s of the pooled training images
        assert cfg.data.fold == cfg.seed and cfg.data.folds == 5
        assert cfg.data.source.val_fraction == 0 and cfg.data.source.limit == 150
    mean = {}
    for lr in lrs:
        vals = [json.loads((study / "runs" / "scratch-adam" / f"seed{s}-lr{lr}" / "summary.json")
                .read_text())["metrics"]["val/acc_best"] for s in range(3)]  # fmt: skip
        mean[lr] = sum(vals) / 3
    kept = next(c for c in plan["cells"] if c["id"] == "scratch-adam")["lr"]
    assert kept == max(mean, key=mean.get)  # the lr with the best mean over three folds
    report = (study / "report.md").read_text()
    assert "Picked by 5-fold cross-validation" in report and "only 270 images" in report
    assert "'data.fold=${seed}'" in report  # the reproduce line survives a shell
