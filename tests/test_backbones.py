"""timm and torchvision backbones: weights, layer groups, data config and offline failures."""

import os
import socket

import pytest
import safetensors.torch
import timm
import torch
import torchvision
from huggingface_hub import constants as hf_constants

from transferlab.errors import UserError
from transferlab.models.backbones import timm_classifier, torchvision_classifier

HEAD = {"hidden": [], "dropout": 0.0, "activation": "relu"}
ALEXNET_GROUPS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's cache name for its ImageNet weights


def build(builder=timm_classifier, **overrides):
    args = dict(num_classes=3, in_chans=3, image_size=32, head=HEAD, pretrained=False)
    return builder(**{"weights": None, **args, **overrides})


def assert_groups_cover_backbone_once(classifier):
    listed = [name for group in classifier.groups for name in group.param_names]
    params = ["backbone." + name for name, _ in classifier.backbone.named_parameters()]
    assert len(listed) == len(set(listed))
    assert listed == params  # every parameter once, in input -> output order


@pytest.fixture
def lookups() -> list:
    """The DNS look-ups made under `offline`: hub clients retry (timm's waits about 50 s)
    with a look-up per try, so "fails fast" is proven by this count, not by a clock."""
    return []


@pytest.fixture
def offline(monkeypatch, tmp_path, lookups):
    """No network (DNS fails as on this machine) and empty weight caches."""

    def no_dns(*args, **kwargs):
        lookups.append(args[0] if args else kwargs.get("host"))
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


@pytest.fixture(scope="module")
def alexnet_state(tmp_path_factory):
    """A random-init torchvision AlexNet state_dict, saved once for the tests below."""
    state = torchvision.models.alexnet().state_dict()
    path = tmp_path_factory.mktemp("alexnet") / "alexnet.pth"
    torch.save(state, path)
    return state, path


def test_timm_model_gives_logits_and_groups_cover_every_parameter():
    classifier = build(name="mobilenetv3_small_050", num_classes=5, in_chans=1)
    logits = classifier(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 5)
    assert classifier.forward_features(torch.randn(2, 1, 32, 32)).shape == (
        2,
        classifier.num_features,
    )
    assert_groups_cover_backbone_once(classifier)
    # conv_head is outside timm's matcher; it joins the last block rather than being dropped
    assert classifier.groups[-1].name == "blocks.5+conv_head"
    assert classifier.data_config["input_size"] == (1, 32, 32)


def test_resnet18_groups_are_stem_then_four_stages():
    classifier = build(name="resnet18")
    assert [g.name for g in classifier.groups] == [
        "conv1+bn1",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
    ]
    assert_groups_cover_backbone_once(classifier)


def test_timm_weights_file_loads_into_backbone_without_its_classifier(tmp_path):
    native = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18.safetensors"
    safetensors.torch.save_file(native.state_dict(), path)
    classifier = build(name="resnet18", weights=str(path))
    expected = native.state_dict()
    for key, tensor in classifier.backbone.state_dict().items():
        assert torch.equal(tensor, expected[key]), key


def test_unknown_timm_name_suggests_a_close_one():
    with pytest.raises(UserError, match="resnet18"):
        build(name="resnet181")


def test_alexnet_weights_file_loads_exact_tensors_and_seven_groups(alexnet_state):
    state, path = alexnet_state
    classifier = build(torchvision_classifier, name="alexnet", weights=str(path))
    backbone = classifier.backbone.state_dict()
    assert set(backbone) == {k for k in state if not k.startswith("classifier.6.")}
    for key, tensor in backbone.items():
        assert torch.equal(tensor, state[key]), key
    assert [g.name for g in classifier.groups] == ALEXNET_GROUPS
    assert_groups_cover_backbone_once(classifier)
    assert classifier.num_features == 4096
    assert classifier(torch.randn(2, 3, 64, 64)).shape == (2, 3)


def test_alexnet_given_a_file_of_another_architecture_is_a_user_error(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), path)
    with pytest.raises(UserError, match="another architecture"):
        build(torchvision_classifier, name="alexnet", weights=str(path))


def test_vgg16_groups_are_five_blocks_then_fc6_fc7():
    classifier = build(torchvision_classifier, name="vgg16")
    names = [g.name for g in classifier.groups]
    assert names == ["block1", "block2", "block3", "block4", "block5", "fc6", "fc7"]
    assert [len(g.param_names) for g in classifier.groups] == [4, 4, 6, 6, 6, 2, 2]
    assert_groups_cover_backbone_once(classifier)
    assert classifier.data_config["input_size"] == (3, 32, 32)


def test_alexnet_pretrained_offline_fails_fast_with_the_alternatives(offline, lookups):
    with pytest.raises(UserError) as err:
        build(torchvision_classifier, name="alexnet", pretrained=True)
    assert len(lookups) <= 1  # one try, no retry loop
    assert "model.weights=" in str(err.value)
    assert "efficientnet_lite0" in str(err.value)


def test_timm_pretrained_offline_fails_fast_with_the_alternatives(offline, lookups):
    with pytest.raises(UserError, match=r"model\.weights=.*efficientnet_lite0"):
        build(name="resnet18", pretrained=True)
    assert len(lookups) <= 1  # one try, no retry loop


def test_alexnet_pretrained_offline_loads_torch_hub_cache(offline, alexnet_state):
    state, path = alexnet_state
    checkpoints = offline / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    os.symlink(path, checkpoints / ALEXNET_FILE)
    classifier = build(torchvision_classifier, name="alexnet", pretrained=True)
    assert torch.equal(classifier.backbone.features[0].weight, state["features.0.weight"])


def test_timm_pretrained_offline_loads_hugging_face_cache(offline, lookups):
    native = timm.create_model("mobilenetv3_small_050")
    repo = timm.models.get_pretrained_cfg("mobilenetv3_small_050").hf_hub_id
    snapshot = offline / "hf" / f"models--{repo.replace('/', '--')}"
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("abc123")
    (snapshot / "snapshots" / "abc123").mkdir(parents=True)
    safetensors.torch.save_file(
        native.state_dict(), snapshot / "snapshots" / "abc123" / "model.safetensors"
    )
    classifier = build(name="mobilenetv3_small_050", pretrained=True)
    assert lookups == []  # the cached file is read without asking the hub
    assert torch.equal(classifier.backbone.conv_stem.weight, native.conv_stem.weight)
