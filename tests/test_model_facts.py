"""The shipped model facts agree with the real networks, and headers are read safely."""

from __future__ import annotations

import json
import logging
import os

import pytest
import safetensors.torch
import timm
import torch
import torchvision
from omegaconf import OmegaConf

from tests.conftest import run_python
from transferlab import datasets, model_facts, pipeline
from transferlab.checks import model as model_checks
from transferlab.data.transforms import Preprocess
from transferlab.errors import UserError
from transferlab.models import build_model, packaged_lite
from transferlab.models.measure_facts import check_built
from transferlab.weights_files import tensor_headers

READY = [
    "efficientnet_lite0",
    "resnet18",
    "resnet50",
    "mobilenetv3_large_100",
    "convnext_tiny",
    "vit_tiny_patch16_224",
    "alexnet",
    "vgg16",
    "cnn",
    "mlp",
]


def test_names_are_those_timm_lists_and_are_read_without_importing_torch():
    assert model_facts.names("timm") == set(timm.list_models())
    probe = "from transferlab import model_facts; import sys; "
    probe += "print(len(model_facts.names('timm')), 'torch' in sys.modules)"
    out = run_python(probe)
    assert out.stdout.split() == [str(len(timm.list_models())), "False"], out.stderr


def test_every_model_of_our_configs_has_facts(cfg_factory):
    for name in READY[:-2]:  # cnn and mlp are ours: their groups follow their config
        assert model_facts.lookup(cfg_factory(f"model={name}").model), name


@pytest.mark.parametrize("name", READY)
def test_layer_groups_known_before_import_are_those_the_builder_makes(name, cfg_factory):
    model = cfg_factory(f"model={name}", "mode=scratch").model  # no weights to fetch
    net = build_model(
        OmegaConf.to_container(model, resolve=True),
        num_classes=3,
        in_chans=3,
        image_size=32,
        fetch_weights=False,
    )
    assert model_facts.layer_groups(model) == [g.name for g in net.groups]


@pytest.mark.parametrize(
    ("name", "smallest"), [("alexnet", 63), ("convnext_tiny", 32), ("vit_tiny_patch16_224", 16)]
)
def test_min_size_is_the_smallest_image_the_real_forward_pass_takes(name, smallest, cfg_factory):
    model = cfg_factory(f"model={name}", "mode=scratch").model
    assert model_facts.lookup(model)["min_size"] == smallest
    for size, fits in ((smallest - 1, False), (smallest, True)):
        net = build_model(
            OmegaConf.to_container(model, resolve=True),
            num_classes=3,
            in_chans=3,
            image_size=size,  # ViTs size their position embeddings by it
            fetch_weights=False,
        )
        pre = Preprocess(size, 3, (0.5,) * 3, (0.5,) * 3, "bilinear")
        if fits:
            pipeline._check_input_size(net, pre, name)
        else:
            with pytest.raises(UserError, match="too small"):
                pipeline._check_input_size(net, pre, name)


def test_a_weights_file_is_recognised_by_its_header_alone(tmp_path):
    state = timm.create_model("resnet18").state_dict()
    torch.save(state, tmp_path / "r18.pth")
    safetensors.torch.save_file(state, tmp_path / "r18.safetensors")
    for file in ("r18.pth", "r18.safetensors"):
        header = tensor_headers.read_header(tmp_path / file)
        assert header.shapes == {k: tuple(v.shape) for k, v in state.items()}
        assert "resnet18" in model_facts.identify(header.shapes)
    alexnet = torchvision.models.alexnet().state_dict()
    torch.save(alexnet, tmp_path / "alexnet.pth")
    assert "alexnet" in model_facts.identify(
        tensor_headers.read_header(tmp_path / "alexnet.pth").shapes
    )


def test_files_in_another_naming_are_left_to_the_loader(cfg_factory):
    """The packaged Lite0 file uses lukemelas names: not timm's, yet it loads; never refused."""
    model = cfg_factory("model=efficientnet_lite0").model
    model_checks.weights_fit(packaged_lite.packaged_weights_path("efficientnet_lite0"), model)
    model = cfg_factory("model=timm", "model.name=tf_efficientnet_lite0").model
    model_checks.weights_fit(packaged_lite.packaged_weights_path("efficientnet_lite0"), model)


def test_the_header_reader_never_runs_pickled_code(tmp_path):
    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp_path / 'ran'}",)

    torch.save({"weight": torch.zeros(2), "payload": Payload()}, tmp_path / "evil.pth")
    assert tensor_headers.read_header(tmp_path / "evil.pth") is None  # torch.load judges it
    assert not (tmp_path / "ran").exists()


def test_known_class_counts_are_the_sources_own():
    from transferlab.data import sources

    assert datasets.DATASETS["digits"].class_count == len(sources.Digits().classes)
    for name in ("mnist", "fashion_mnist", "cifar10", "svhn", "flowers102"):
        source = sources.TorchvisionSource(name, root="/nowhere")  # reads no files
        assert datasets.DATASETS[name].class_count == len(source.classes), name


@pytest.fixture
def other_release(tmp_path, monkeypatch):
    """Facts shipped as if built with another timm, less the models named; a fresh cache."""

    def ship(*missing: str) -> None:
        facts = json.loads(model_facts.FACTS_FILE.read_text())
        facts["built_with"]["timm"] = "0.0.1"
        for name in missing:
            del facts["timm"][name]
        (tmp_path / "shipped.json").write_text(json.dumps(facts))
        monkeypatch.setattr(model_facts, "FACTS_FILE", tmp_path / "shipped.json")
        monkeypatch.setenv("TRANSFERLAB_CACHE", str(tmp_path / "cache"))
        model_facts.shipped.cache_clear()
        model_facts.library.cache_clear()

    yield ship
    model_facts.shipped.cache_clear()
    model_facts.library.cache_clear()


def _built(model):
    return build_model(
        OmegaConf.to_container(model, resolve=True),
        num_classes=3,
        in_chans=3,
        image_size=32,
        fetch_weights=False,
    )


def test_a_model_without_facts_is_measured_after_its_build_and_checked_early_next_time(
    other_release, cfg_factory, caplog
):
    model = cfg_factory("model=resnet18", "mode=scratch").model
    expected = model_facts.lookup(model)
    other_release("resnet18")
    assert model_facts.lookup(model) is None  # so its checks wait for the build
    with caplog.at_level(logging.INFO, logger="transferlab"):
        check_built(model, _built(model))
    assert "checks ran after the build" in caplog.text
    assert model_facts.lookup(model) == expected  # measured, cached, read before torch
    assert "timm " + model_facts.installed("timm") in json.loads(
        model_facts.cache_file().read_text()
    )


def test_facts_that_hold_under_another_release_are_confirmed_once(
    other_release, cfg_factory, caplog
):
    other_release()
    model = cfg_factory("model=resnet18", "mode=scratch").model
    with caplog.at_level(logging.INFO, logger="transferlab"):
        check_built(model, _built(model))
        assert "hold for timm" in caplog.text
        caplog.clear()
        check_built(model, _built(model))
    assert caplog.text == ""  # confirmed for this release: nothing measured or said again
