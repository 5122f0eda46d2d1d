"""Weight files and transferlab checkpoints (the packaged ImageNet weights: test_packaged_lite)."""

import logging

import pytest
import safetensors.torch
import torch
from omegaconf import OmegaConf

from transferlab.errors import UserError
from transferlab.models.backbones import timm_classifier
from transferlab.models.loading import load_transferlab_checkpoint
from transferlab.models.weights import describe, read_state_dict

HEAD = {"hidden": [], "dropout": 0.0, "activation": "relu"}


def test_read_state_dict_reads_pth_safetensors_and_ckpt_alike(tmp_path):
    state = {"a.weight": torch.randn(3, 2), "a.bias": torch.randn(3)}
    torch.save(state, tmp_path / "w.pth")
    safetensors.torch.save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "w.ckpt")
    for name in ("w.pth", "w.safetensors", "w.ckpt"):
        got = read_state_dict(tmp_path / name)
        assert set(got) == set(state)
        assert all(torch.equal(got[k], state[k]) for k in state)


def test_missing_weights_file_is_a_user_error_naming_the_path(tmp_path):
    path = tmp_path / "nowhere.pth"
    with pytest.raises(UserError, match=r"nowhere\.pth"):
        read_state_dict(path)


def test_pickled_module_is_refused_with_a_user_error(tmp_path):
    path = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(UserError, match="state_dict"):
        read_state_dict(path)


def test_checkpoint_with_omegaconf_hyperparameters_is_readable(tmp_path):
    path = tmp_path / "run.ckpt"
    hparams = OmegaConf.create({"model": {"name": "resnet18", "head": {"hidden": [64]}}})
    torch.save({"state_dict": {"net.head.0.bias": torch.zeros(3)}, "hparams": hparams}, path)
    assert describe(path).is_transferlab_checkpoint
    assert set(read_state_dict(path)) == {"net.head.0.bias"}


def test_plain_state_dict_is_not_a_transferlab_checkpoint(tmp_path):
    path = tmp_path / "plain.pth"
    torch.save({"head.0.bias": torch.zeros(3)}, path)
    assert not describe(path).is_transferlab_checkpoint


def _resnet18(num_classes: int):
    return timm_classifier(
        name="resnet18",
        num_classes=num_classes,
        in_chans=3,
        image_size=32,
        head=HEAD,
        pretrained=False,
        weights=None,
    )


def test_transferlab_checkpoint_loads_backbone_and_reinitialises_mismatched_head(tmp_path, caplog):
    trained = _resnet18(10)
    path = tmp_path / "best.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in trained.state_dict().items()}}, path)
    target = _resnet18(3)
    fresh_head = {k: v.clone() for k, v in target.head.state_dict().items()}
    with caplog.at_level(logging.INFO, logger="transferlab"):
        reinitialised = load_transferlab_checkpoint(target, path)
    assert reinitialised == ["head.0.weight", "head.0.bias"]
    assert "head.0.weight" in caplog.text
    source = trained.backbone.state_dict()
    for key, tensor in target.backbone.state_dict().items():
        assert torch.equal(tensor, source[key]), key
    for key, tensor in target.head.state_dict().items():
        assert torch.equal(tensor, fresh_head[key])


def test_transferlab_checkpoint_of_another_backbone_is_a_user_error(tmp_path):
    other = timm_classifier(
        name="mobilenetv3_small_050",
        num_classes=3,
        in_chans=3,
        image_size=32,
        head=HEAD,
        pretrained=False,
        weights=None,
    )
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {f"net.{k}": v for k, v in other.state_dict().items()}}, path)
    with pytest.raises(UserError, match="does not fit"):
        load_transferlab_checkpoint(_resnet18(3), path)
