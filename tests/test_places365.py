"""Weights as their authors publish them: CSAIL's Places365 files load, Caffe/Keras ones are
named with how to convert them.

CSAIL's files are the PyTorch ImageNet example's checkpoints: `{"epoch", "arch",
"state_dict", "best_prec1"}` saved as `.pth.tar`, with DataParallel's `module` in the
tensor names (the whole ResNet wrapped; only AlexNet's `features`), often in torch's
legacy format. The fixtures below are real networks (random init) saved in that layout.
"""

from __future__ import annotations

import logging
import re

import pytest
import timm
import torch
import torchvision
from omegaconf import OmegaConf

from tests.conftest import IMPORT_LOG, QUIET, TORCH_IMPORTED, run_cli, run_dirs, summary
from transferlab.checks import model as model_checks
from transferlab.errors import UserError
from transferlab.models import build_model
from transferlab.models.weights import read_state_dict
from transferlab.weights_files import tensor_headers

FORMATS = {"zip": True, "legacy": False}  # _use_new_zipfile_serialization


def save_places365(state: dict, path, *, arch: str, zip_format: bool = True) -> None:
    """Save a state_dict as CSAIL did, DataParallel names and all."""
    if arch in ("alexnet", "vgg16"):  # train_placesCNN.py wraps only `features`
        wrapped = {re.sub(r"^features\.", "features.module.", k): v for k, v in state.items()}
    else:
        wrapped = {f"module.{k}": v for k, v in state.items()}
    checkpoint = {"epoch": 90, "arch": arch, "state_dict": wrapped, "best_prec1": 53.2}
    torch.save(checkpoint, path, _use_new_zipfile_serialization=zip_format)


@pytest.fixture(scope="module")
def places(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("places365")
    torch.manual_seed(0)
    files = {}
    for kind, zip_format in FORMATS.items():
        path = root / f"alexnet_places365_{kind}.pth.tar"
        state = torchvision.models.alexnet(num_classes=365).state_dict()
        save_places365(state, path, arch="alexnet", zip_format=zip_format)
        files[f"alexnet_{kind}"] = path, state
    path = root / "resnet18_places365.pth.tar"
    state = torchvision.models.resnet18(num_classes=365).state_dict()
    save_places365(state, path, arch="resnet18", zip_format=False)
    files["resnet18"] = path, state
    return files


def _build(model, num_classes: int = 10):
    return build_model(
        OmegaConf.to_container(model, resolve=True),
        num_classes=num_classes,
        in_chans=3,
        image_size=64,
        fetch_weights=True,
    )


@pytest.mark.parametrize("kind", FORMATS)
def test_a_places365_alexnet_loads_every_backbone_tensor_and_gets_a_new_head(
    kind, places, cfg_factory, caplog
):
    path, state = places[f"alexnet_{kind}"]
    model = cfg_factory("model=alexnet", f"model.weights={path}").model
    model_checks.weights_fit(path, model)  # the check before torch lets it through
    with caplog.at_level(logging.INFO, logger="transferlab"):
        net = _build(model)
    backbone = net.backbone.state_dict()
    assert set(backbone) == {k for k in state if not k.startswith("classifier.6.")}
    for key, tensor in backbone.items():
        assert torch.equal(tensor, state[key]), key
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Loaded")]
    assert str(path) in line and 'nested under "state_dict"' in line
    assert "DataParallel 'module.' removed from 10 names" in line  # features' 5 convs
    assert "classifier.6.weight/bias (365 classes) replaced by a new 10-class head" in line


def test_a_places365_resnet18_loads_onto_timms_resnet18(places, cfg_factory, caplog):
    path, state = places["resnet18"]
    model = cfg_factory("model=resnet18", f"model.weights={path}").model
    model_checks.weights_fit(path, model)
    with caplog.at_level(logging.INFO, logger="transferlab"):
        net = _build(model, num_classes=7)
    backbone = net.backbone.state_dict()
    assert set(backbone) == {k for k in state if not k.startswith("fc.")}
    for key, tensor in backbone.items():
        assert torch.equal(tensor, state[key]), key
    assert "fc.weight/bias (365 classes) replaced by a new 7-class head" in caplog.text


def test_a_places365_densenet_in_old_torchvision_names_loads_onto_timms_densenet(
    tmp_path, cfg_factory, caplog
):
    # torchvision < 0.3 (CSAIL's densenet161 of 2017) named the layers `norm.1`, not `norm1`.
    state = torchvision.models.densenet121(num_classes=365).state_dict()
    old_names = {
        re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k): v
        for k, v in state.items()
    }
    assert not any(".norm1." in k for k in old_names) and any(".norm.1." in k for k in old_names)
    path = tmp_path / "densenet121_places365.pth.tar"
    save_places365(old_names, path, arch="densenet121", zip_format=False)
    model = cfg_factory("model=timm", "model.name=densenet121", f"model.weights={path}").model
    model_checks.weights_fit(path, model)
    with caplog.at_level(logging.INFO, logger="transferlab"):
        backbone = _build(model).backbone.state_dict()
    assert set(backbone) == {k for k in state if not k.startswith("classifier.")}
    for key, tensor in backbone.items():
        assert torch.equal(tensor, state[key]), key
    assert "DenseNet's old 'norm.1' names made 'norm1'" in caplog.text


def test_the_header_reader_sees_a_legacy_places365_file_under_its_unwrapped_names(places):
    path, state = places["alexnet_legacy"]
    assert tensor_headers.read_header(path).shapes == {k: tuple(v.shape) for k, v in state.items()}


def test_a_places365_alexnet_given_to_vgg16_is_refused_as_alexnet(places, cfg_factory):
    model = cfg_factory("model=vgg16").model
    path, _ = places["alexnet_zip"]
    with pytest.raises(UserError, match="the file holds the tensors of alexnet"):
        model_checks.weights_fit(path, model)


def test_a_places365_alexnet_given_to_vgg16_exits_2_before_torch_loads(places, tmp_path):
    path, _ = places["alexnet_legacy"]
    proc = run_cli(
        "train.py", "model=vgg16", f"model.weights={path}", QUIET, cwd=tmp_path, env=IMPORT_LOG
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "do not fit model 'vgg16': the file holds the tensors of alexnet" in proc.stderr
    assert "model=alexnet" in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr), "refused only after importing torch"


def test_a_run_fine_tunes_from_a_places365_resnet18_file(places, tmp_path):
    path, _ = places["resnet18"]
    proc = run_cli(
        "train.py",
        "model=resnet18",
        f"model.weights={path}",
        "data=digits",
        "data.image_size=32",
        "mode=feature_extract",
        "epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "test=false",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fc.weight/bias (365 classes) replaced by a new 10-class head" in proc.stdout
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["status"] == "completed"


FOREIGN = {
    "vgg16_places365.caffemodel": (
        b"\n\x0cVGG_ILSVRC_16" + bytes(range(256)),
        ["is a Caffe model (.caffemodel, protobuf)", "caffemodel2pytorch or MMdnn"],
    ),
    "vgg16_places365.h5": (
        b"\x89HDF\r\n\x1a\n" + bytes(range(256)),
        ["is a Keras HDF5 file", "h5py", "HWIO to OIHW"],
    ),
    # The content tells, whatever the name says.
    "vgg16_places365.pth": (
        b"\x89HDF\r\n\x1a\n" + bytes(range(256)),
        ["is a Keras HDF5 file"],
    ),
}


@pytest.mark.parametrize("name", FOREIGN)
def test_a_caffe_or_keras_file_exits_2_before_torch_loads_saying_how_to_convert(name, tmp_path):
    blob, messages = FOREIGN[name]
    (tmp_path / name).write_bytes(blob)
    proc = run_cli(
        "train.py",
        "model=vgg16",
        f"model.weights={tmp_path / name}",
        QUIET,
        cwd=tmp_path,
        env=IMPORT_LOG,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    for message in [*messages, "torch.save(state_dict", "features.0.weight", ".pth.tar"]:
        assert message in proc.stderr, message
    assert "Traceback" not in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr), "refused only after importing torch"


@pytest.mark.parametrize("name", FOREIGN)
def test_the_loader_refuses_a_caffe_or_keras_file_too(name, tmp_path):
    blob, messages = FOREIGN[name]
    (tmp_path / name).write_bytes(blob)
    with pytest.raises(UserError, match=re.escape(messages[0])):
        read_state_dict(tmp_path / name)


def test_a_state_dict_nested_under_model_loads_like_a_plain_one(tmp_path):
    state = {"a.weight": torch.randn(3, 2), "a.bias": torch.randn(3)}
    torch.save({"model": state, "optimizer": {"lr": 0.1}, "epoch": 3}, tmp_path / "deit.pth")
    got = read_state_dict(tmp_path / "deit.pth")
    assert set(got) == set(state) and all(torch.equal(got[k], state[k]) for k in state)


def test_a_real_submodule_named_module_keeps_its_name(tmp_path):
    # timm's iFormer blocks hold their mixer as `mixer.module`, its sole child.
    net = timm.create_model("iformer_t")
    state = net.state_dict()
    assert any(".mixer.module." in k for k in state)
    torch.save({"state_dict": state}, tmp_path / "iformer_t.pth")
    assert set(read_state_dict(tmp_path / "iformer_t.pth")) == set(state)
    assert tensor_headers.read_header(tmp_path / "iformer_t.pth").shapes.keys() == state.keys()


def test_module_is_stripped_only_where_dataparallel_put_it(tmp_path):
    state = {
        "module.block.module.weight": torch.zeros(2),
        "module.block.norm.weight": torch.ones(2),
    }
    torch.save(state, tmp_path / "ddp.pth")
    assert set(read_state_dict(tmp_path / "ddp.pth")) == {
        "block.module.weight",
        "block.norm.weight",
    }
