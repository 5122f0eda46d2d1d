"""Freeze policies, layer groups, discriminative lrs and gradual unfreezing."""

from __future__ import annotations

import itertools

import pytest
import torch
import yaml
from torch import nn

from tests.conftest import ROOT
from transferlab.errors import UserError
from transferlab.finetune import freeze
from transferlab.finetune.gradual import GradualUnfreezing
from transferlab.finetune.param_groups import param_groups
from transferlab.module import ClassifierModule

ADAM = {"_target_": "torch.optim.Adam", "_partial_": True, "lr": 1e-3}


def model_cfg(name: str, **overrides) -> dict:
    """conf/model/<name>.yaml over the training policy every model shares (conf/train.yaml)."""
    cfg = yaml.safe_load((ROOT / "conf/train.yaml").read_text())["model"]
    cfg.update(yaml.safe_load((ROOT / "conf/model" / f"{name}.yaml").read_text()))
    cfg.update(overrides)
    return cfg


def module(name: str, mode: str, image_size: int = 64, **model_overrides) -> ClassifierModule:
    return ClassifierModule(
        model=model_cfg(name, **model_overrides),
        mode={"name": mode},
        optimizer=ADAM,
        scheduler=None,
        num_classes=10,
        in_chans=1,
        image_size=image_size,
        fetch_weights=False,
    )


@pytest.mark.parametrize(
    ("name", "n_groups"), [("efficientnet_lite0", 8), ("alexnet", 7), ("cnn", 3), ("mlp", 2)]
)
def test_trainable_counts_rise_strictly_with_unfreeze_and_top_equals_finetune(name, n_groups):
    net = module(name, "finetune").net
    assert len(net.groups) == n_groups
    everything = sum(p.numel() for p in net.parameters())
    counts = []
    for k in range(n_groups + 1):
        freeze.set_trainable(net, k)
        counts.append(sum(p.numel() for p in net.parameters() if p.requires_grad))
    assert all(a < b for a, b in itertools.pairwise(counts))
    assert counts[-1] == everything
    head = sum(p.numel() for p in net.head.parameters())
    assert counts[0] == head


def test_groups_cover_every_backbone_parameter_once():
    for name in ("efficientnet_lite0", "alexnet", "cnn"):
        net = module(name, "finetune").net
        listed = [p for g in net.groups for p in g.param_names]
        backbone = [n for n, _ in net.named_parameters() if n.startswith("backbone.")]
        assert sorted(listed) == sorted(backbone)


def test_unfreeze_beyond_the_groups_is_a_clear_error_listing_them():
    with pytest.raises(UserError) as err:
        module("cnn", "partial", unfreeze=4)
    assert "3 layer groups" in str(err.value)
    assert "block1, block2, block3" in str(err.value)


def test_partial_trains_exactly_the_last_k_groups_and_the_head():
    net = module("cnn", "partial", unfreeze=2).net
    trainable = {n.split(".")[1] for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"block2", "block3", "0"}  # head.0 is the linear head


def test_frozen_batchnorm_stays_in_eval_mode_and_its_statistics_do_not_move():
    mod = module("cnn", "partial", unfreeze=1, weights=None)
    mod.train()  # what a training loop does; frozen layers must not flip to train mode
    bns = dict(mod.net.backbone.named_modules())
    assert not bns["block1.1"].training and not bns["block2.1"].training
    assert bns["block3.1"].training
    before = {k: v.clone() for k, v in mod.net.backbone.state_dict().items() if "block1" in k}
    mod.training_step((torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))), 0)
    after = mod.net.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_frozen_bn_train_option_keeps_frozen_layers_in_train_mode():
    mod = module("cnn", "partial", unfreeze=1, frozen_bn="train")
    mod.train()
    assert dict(mod.net.backbone.named_modules())["block1.1"].training


def test_param_groups_scale_lr_per_group_and_skip_decay_on_norms_and_biases():
    net = module("cnn", "finetune").net
    groups = param_groups(net, lr=1.0, weight_decay=0.1, backbone_lr_mult=0.5, layer_decay=0.5)
    lr = {g["name"]: g["lr"] for g in groups}
    assert lr["head"] == 1.0
    assert lr["block3"] == pytest.approx(0.5 * 0.5)
    assert lr["block1"] == pytest.approx(0.5 * 0.5**3)
    for g in groups:
        if g["name"].endswith("/no_decay"):
            assert g["weight_decay"] == 0.0 and all(p.ndim <= 1 for p in g["params"])
        else:
            assert g["weight_decay"] == 0.1 and all(p.ndim > 1 for p in g["params"])
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in net.parameters())


def test_scheduled_lr_keeps_the_discriminative_ratio():
    net = module("cnn", "finetune").net
    groups = param_groups(net, lr=1.0, layer_decay=0.5)
    opt = torch.optim.SGD(groups, lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
    opt.step()
    sched.step()
    lr = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lr["head"] == pytest.approx(0.1) and lr["block1"] == pytest.approx(0.1 * 0.5**3)


def test_gradual_schedule_unfreezes_one_group_per_epoch_after_the_head_epochs():
    cb = GradualUnfreezing(freeze_epochs=2, unfreeze_every=1, groups_per_step=1)
    assert [cb.groups_at(e, 3) for e in range(7)] == [0, 0, 1, 2, 3, 3, 3]
    cb = GradualUnfreezing(freeze_epochs=1, unfreeze_every=2, groups_per_step=2)
    assert [cb.groups_at(e, 5) for e in range(7)] == [0, 2, 2, 4, 4, 5, 5]


def test_frozen_params_have_no_grad_after_a_step():
    mod = module("cnn", "feature_extract", weights=None)
    loss = mod.training_step((torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))), 0)
    loss.backward()
    assert all(p.grad is None for p in mod.net.backbone.parameters())
    assert all(p.grad is not None for p in mod.net.head.parameters())
    assert isinstance(mod.net.head[-1], nn.Linear)
