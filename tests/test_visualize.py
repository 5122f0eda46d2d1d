"""eval.py visualize=true: pictures of CNN, MLP and Lite0 checkpoints, and a misclassified
record that predictions recomputed here (by a second, independent forward pass) confirm."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from PIL import Image

from tests.conftest import QUIET, TORCH_IMPORTED, run_cli, run_dirs, summary
from transferlab.data.transforms import Preprocess
from transferlab.errors import UserError
from transferlab.models.backbones import torchvision_classifier
from transferlab.models.scratch import cnn
from transferlab.module import ClassifierModule
from transferlab.pipeline import build_datamodule
from transferlab.runs.visualize import default_layers, find_layer

CNN_PICTURES = {
    "filters.png",
    "feature_maps_block1.png",
    "feature_maps_block2.png",
    "misclassified.png",
    "gradcam.png",
    "embedding_tsne.png",
}


def trained(cwd, *overrides: str):
    proc = run_cli("train.py", *overrides, "epochs=1", QUIET, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(cwd / "logs", "train/runs/*")
    return run / "checkpoints" / "best.ckpt"


def visualized(cwd, ckpt, *overrides: str, env: dict | None = None):
    proc = run_cli("eval.py", f"ckpt_path={ckpt}", *overrides, QUIET, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(cwd / "logs", "eval/runs/*")
    return run, proc


def pictures_in(run) -> set[str]:
    return {p.name for p in (run / "plots").glob("*.png")}


def assert_real_pngs(run, names) -> None:
    for name in names:
        with Image.open(run / "plots" / name) as image:
            assert image.format == "PNG" and min(image.size) >= 200, name


@pytest.fixture(scope="module")
def cnn_eval(tmp_path_factory):
    """A 1-epoch scratch CNN on digits, evaluated with visualize=true and W&B offline."""
    cwd = tmp_path_factory.mktemp("visualize_cnn")
    ckpt = trained(cwd, "model=cnn", "mode=scratch")
    run, proc = visualized(
        cwd,
        ckpt,
        "visualize=true",  # the switch, then an option: both forms must compose
        "visualize.max_images=5",
        "logger=wandb",
        env={"WANDB_MODE": "offline"},
    )
    return ckpt, run, proc


def test_visualize_draws_filters_feature_maps_misclassified_gradcam_and_tsne(cnn_eval):
    _, run, _ = cnn_eval
    assert pictures_in(run) == CNN_PICTURES
    assert_real_pngs(run, CNN_PICTURES)
    assert summary(run)["status"] == "completed"


def test_visualize_pictures_reach_wandb_as_images(cnn_eval):
    _, run, _ = cnn_eval
    (offline,) = (run / "wandb").glob("offline-run-*")
    logged = {p.name.split("_1_")[0] for p in (offline / "files/media/images/plots").glob("*")}
    assert logged == {name.removesuffix(".png") for name in CNN_PICTURES}


class Predictions(L.Callback):
    """Each test batch's labels and the module's own predictions, read from the batch the
    trainer hands the module, so whatever preprocessing the pipeline does is included."""

    def __init__(self) -> None:
        self.labels, self.preds = [], []

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.labels.append(batch[1])
        self.preds.append(pl_module(batch[0]).argmax(1))


def recomputed(ckpt) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    module = ClassifierModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    hp = module.hparams
    data = build_datamodule(
        hp["data"],
        instantiate(hp["data"]["source"]),
        Preprocess(**hp["preprocess"]),
        batch_size=64,  # not eval's 256: batching must not change what is misclassified
        seed=hp["data"]["seed"],
    )
    seen = Predictions()
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        callbacks=[seen],
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    trainer.test(module, datamodule=data, verbose=False)
    return torch.cat(seen.labels), torch.cat(seen.preds), list(hp["classes"])


def test_misclassified_record_is_exactly_the_test_images_the_model_gets_wrong(cnn_eval):
    ckpt, run, _ = cnn_eval
    record = json.loads((run / "plots" / "misclassified.json").read_text())
    labels, preds, classes = recomputed(ckpt)
    wrong = (preds != labels).nonzero().flatten().tolist()
    assert len(wrong) > 5, "the 1-epoch CNN should miss more than the grid's limit of 5"
    assert record["test_images"] == len(labels)
    assert record["misclassified_indices"] == wrong
    assert record["misclassified"] == len(wrong)
    # the grid: the first max_images of them, each with its true and predicted class name
    assert [(r["index"], r["true"], r["predicted"]) for r in record["shown"]] == [
        (i, classes[labels[i]], classes[preds[i]]) for i in wrong[:5]
    ]
    # and the count agrees with the accuracy the eval run itself reported
    accuracy = summary(run)["metrics"]["test/acc"]
    assert len(wrong) / len(labels) == pytest.approx(1 - accuracy, abs=1e-6)


def test_an_unknown_layer_name_exits_2_naming_the_layer_groups(cnn_eval, tmp_path):
    ckpt, _, _ = cnn_eval
    proc = run_cli(
        "eval.py",
        f"ckpt_path={ckpt}",
        "visualize=true",
        "visualize.layers=[block9]",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "'block9'" in proc.stderr and "block1, block2, block3" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (next(iter(run_dirs(tmp_path / "logs", "eval/runs/*"))) / "plots").exists()


def test_an_unknown_embedding_exits_2_before_torch_loads(tmp_path):
    proc = run_cli(
        "eval.py",
        "ckpt_path=/no/such/best.ckpt",
        "visualize=true",
        "visualize.embedding=umap",
        QUIET,
        cwd=tmp_path,
        env={"PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "visualize.embedding=umap" in proc.stderr and "tsne or pca" in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr)


def test_an_mlp_gets_the_grid_and_embedding_and_the_log_says_why_not_the_rest(tmp_path):
    ckpt = trained(tmp_path, "model=mlp", "mode=scratch")
    run, _ = visualized(tmp_path, ckpt, "visualize=true", "visualize.embedding=pca")
    assert pictures_in(run) == {"misclassified.png", "embedding_pca.png"}
    assert_real_pngs(run, pictures_in(run))
    assert "model=mlp has no conv layer" in (run / "eval.log").read_text()


@pytest.mark.slow
def test_a_frozen_lite0_gets_all_five_kinds_of_picture(tmp_path):
    """Feature-extract: no backbone parameter wants a gradient, yet Grad-CAM must work."""
    ckpt = trained(tmp_path, "mode=feature_extract")
    run, _ = visualized(tmp_path, ckpt, "visualize=true")
    expected = {
        "filters.png",
        "feature_maps_conv_stem+bn1.png",  # the first layer group
        "feature_maps_blocks.3.png",  # the middle one
        "misclassified.png",
        "gradcam.png",
        "embedding_tsne.png",
    }
    assert pictures_in(run) == expected
    assert_real_pngs(run, expected)


def test_layer_names_are_groups_or_module_paths_of_every_kind_of_net():
    small = cnn(num_classes=3, in_chans=1, image_size=8)
    assert find_layer(small, "block2") is small.backbone.block2
    assert find_layer(small, "block2.0") is small.backbone.block2[0]
    assert default_layers(small) == ["block1", "block2"]
    alexnet = torchvision_classifier(
        name="alexnet",
        num_classes=3,
        in_chans=3,
        image_size=64,
        head={},
        pretrained=False,
        weights=None,
    )
    # torchvision groups are not modules: a group ends at the layer of its last parameters
    assert find_layer(alexnet, "conv1") is alexnet.backbone.features[0]
    assert find_layer(alexnet, "features.10") is alexnet.backbone.features[10]
    with pytest.raises(UserError, match="conv1, conv2, conv3, conv4, conv5, fc6, fc7"):
        find_layer(alexnet, "conv9")
