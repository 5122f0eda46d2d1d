"""`python eval.py ckpt_path=<ckpt> visualize=true`: pictures of what a trained model learnt.

A callback rides along the test pass: forward hooks on the network read the images exactly
as the network receives them (after whatever preprocessing the datamodule and module
apply), its logits, and the backbone's pooled features. After the pass, `save` writes to
the eval run's plots/ folder, from where a W&B run receives them with the other plots:

    filters.png                  the first conv layer's kernels
    feature_maps_<layer>.png     the first test images as seen by each chosen layer
    misclassified.png + .json    misclassified test images (up to visualize.max_images)
    gradcam.png                  Grad-CAM for the predicted and the true class
    embedding_<tsne|pca>.png     the test set's pooled backbone features in 2-D
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from torch import nn

from transferlab.errors import UserError
from transferlab.models.classifier import Classifier
from transferlab.runs import pictures

log = logging.getLogger("transferlab")


def find_layer(net: Classifier, name: str) -> nn.Module:
    """The module whose output is layer group `name`'s, or the module at path `name`."""
    groups = {g.name: g for g in net.groups}
    paths = [name, f"backbone.{name}"]
    if name in groups:
        # timm and our nets name a group by its modules ('blocks.3', 'conv_stem+bn1', the
        # last ends it); torchvision's 'conv1', 'block1' are not modules: the layer holding
        # the group's last parameters ends it.
        paths = [f"backbone.{name.split('+')[-1]}", groups[name].param_names[-1].rsplit(".", 1)[0]]
    for path in paths:
        try:
            return net.get_submodule(path)
        except AttributeError:
            continue
    conv = next((n for n, m in net.backbone.named_modules() if isinstance(m, nn.Conv2d)), "")
    example = f" (e.g. {conv})" if conv else ""
    raise UserError(
        f"visualize.layers (or visualize.gradcam_layer) names {name!r}, which is neither a "
        f"layer group nor a module of this model. Its layer groups are: {', '.join(groups)}; "
        f"module paths as in the backbone's state_dict work too{example}. Fix: e.g. "
        f"visualize.layers=[{net.groups[0].name}]."
    )


def default_layers(net: Classifier) -> list[str]:
    """The first layer group and the middle one."""
    names = [net.groups[0].name, net.groups[len(net.groups) // 2].name]
    return list(dict.fromkeys(names))


class ModelPictures(Callback):
    """Records the test pass (see the module docstring); `save` then draws the pictures."""

    def __init__(self, options: dict, module: LightningModule, seed: int) -> None:
        self.options, self.seed, self.module = options, seed, module
        self.net: Classifier = module.net
        classes = module.hparams.get("classes") or range(module.hparams["num_classes"])
        self.classes = [str(c) for c in classes]
        convs = [(n, m) for n, m in self.net.backbone.named_modules() if isinstance(m, nn.Conv2d)]
        self.first_conv = convs[0] if convs else None
        self.layers: dict[str, nn.Module] = {}
        self.cam_layer: tuple[str, nn.Module] | None = None
        if convs:  # names are checked now, before the test pass, not after it
            names = options.get("layers") or default_layers(self.net)
            self.layers = {n: find_layer(self.net, n) for n in names}
            chosen = options.get("gradcam_layer")
            self.cam_layer = (chosen, find_layer(self.net, chosen)) if chosen else convs[-1]
        else:
            log.info(
                "model=%s has no conv layer: filters, feature maps and Grad-CAM are skipped; "
                "the misclassified images and the embedding are drawn.",
                module.hparams["model"].get("name"),
            )
        self.labels: list[torch.Tensor] = []
        self.preds: list[torch.Tensor] = []
        self.confidence: list[torch.Tensor] = []  # the predicted class's probability
        self.features: list[torch.Tensor] = []
        self.images: dict[int, torch.Tensor] = {}  # test index -> the network's input
        self._seen = self._wrong_kept = 0
        self._batch: dict[str, torch.Tensor] = {}
        self._hooks: list = []

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.world_size > 1:  # each rank sees a shard: test indices would not add up
            raise UserError(
                f"visualize=true runs in one process, but this eval runs {trainer.world_size}. "
                "Fix: add trainer=default (or trainer.devices=1)."
            )
        self._hooks = [
            self.net.register_forward_hook(self._read_network),
            self.net.backbone.register_forward_hook(self._read_features),
        ]

    def _read_network(self, module, inputs, output) -> None:
        self._batch["images"], self._batch["logits"] = inputs[0], output

    def _read_features(self, module, inputs, output) -> None:
        self._batch["features"] = output

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        images = self._batch.pop("images").detach().cpu()
        logits = self._batch.pop("logits").detach().float().cpu()
        self.features.append(self._batch.pop("features").detach().flatten(1).float().cpu())
        labels = batch[1].detach().cpu()
        preds = logits.argmax(1)  # as the accuracy metric decides
        self.labels.append(labels)
        self.preds.append(preds)
        self.confidence.append(logits.softmax(1).gather(1, preds[:, None]).flatten())
        wrong = preds != labels
        for i in range(len(labels)):
            index = self._seen + i
            keep_wrong = bool(wrong[i]) and self._wrong_kept < self.options["max_images"]
            self._wrong_kept += keep_wrong
            if keep_wrong or index < self.options["feature_map_images"]:
                self.images[index] = images[i].clone()
        self._seen += len(labels)

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for hook in self._hooks:
            hook.remove()
        self._hooks = []

    def save(self, plot_dir: Path) -> list[Path]:
        """Write the pictures (and misclassified.json) into `plot_dir`; returns the PNGs."""
        plot_dir.mkdir(parents=True, exist_ok=True)
        labels, preds = torch.cat(self.labels), torch.cat(self.preds)
        confidence = torch.cat(self.confidence)
        wrong = (preds != labels).nonzero().flatten().tolist()
        shown = wrong[: self.options["max_images"]]
        self._save_misclassified(plot_dir, labels, preds, confidence, wrong, shown)
        training = self.module.training
        self.module.eval()  # the test pass handed the module back in train mode
        try:
            if self.first_conv is not None:
                name, conv = self.first_conv
                pictures.save_filters(conv.weight.detach().cpu(), name, plot_dir / "filters.png")
                self._save_feature_maps(plot_dir)
                if self.options["gradcam"]:
                    self._save_gradcam(plot_dir, shown[: self.options["gradcam"]], labels, preds)
        finally:
            self.module.train(training)
        self._save_embedding(plot_dir, labels.numpy(), (preds != labels).numpy())
        files = sorted(plot_dir.glob("*.png"))
        log.info("visualize: %d pictures in %s", len(files), plot_dir)
        return files

    def _save_misclassified(self, plot_dir, labels, preds, confidence, wrong, shown) -> None:
        record = {
            "test_images": len(labels),
            "misclassified": len(wrong),
            "max_images": self.options["max_images"],
            # positions in the datamodule's test split, in the order the test pass read them
            "misclassified_indices": wrong,
            "shown": [
                {
                    "index": i,
                    "true": self.classes[labels[i]],
                    "true_index": int(labels[i]),
                    "predicted": self.classes[preds[i]],
                    "predicted_index": int(preds[i]),
                    "confidence": round(float(confidence[i]), 4),
                }
                for i in shown
            ],
        }
        (plot_dir / "misclassified.json").write_text(json.dumps(record, indent=2) + "\n")
        captions = [
            f"#{r['index']} true {r['true']}\npred {r['predicted']} ({r['confidence']:.2f})"
            for r in record["shown"]
        ]
        title = (
            f"misclassified test images: {len(shown)} shown of {len(wrong)} "
            f"({len(labels)} test images)"
        )
        images = [self.images[i] for i in shown]
        pictures.save_misclassified(images, captions, title, plot_dir / "misclassified.png")

    def _save_feature_maps(self, plot_dir: Path) -> None:
        count = min(self.options["feature_map_images"], self._seen)
        images = torch.stack([self.images[i] for i in range(count)])
        outputs: dict[str, torch.Tensor] = {}
        hooks = [
            layer.register_forward_hook(
                # cloned: a following in-place ReLU (torchvision) would overwrite it
                lambda m, i, out, name=name: outputs.__setitem__(name, out.detach().clone())
            )
            for name, layer in self.layers.items()
        ]
        try:
            with torch.inference_mode():
                self.net(images)
        finally:
            for hook in hooks:
                hook.remove()
        for name, maps in outputs.items():
            if maps.dim() != 4:
                log.info(
                    "visualize: layer %s gives %s, not feature maps; skipped.",
                    name,
                    tuple(maps.shape),
                )
                continue
            safe = re.sub(r"[^\w.+-]", "_", name)
            file = plot_dir / f"feature_maps_{safe}.png"
            pictures.save_feature_maps(images, maps, name, file)

    def _save_gradcam(self, plot_dir: Path, indices: list[int], labels, preds) -> None:
        if not indices:
            log.info("visualize: no misclassified test image, so no Grad-CAM.")
            return
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        # cloned outside inference mode, so autograd may record operations on them
        images = torch.stack([self.images[i] for i in indices]).clone()
        name, layer = self.cam_layer
        maps = {}
        with GradCAM(model=self.net, target_layers=[layer]) as cam:
            # A frozen backbone (feature_extract) has no parameter needing a gradient, so
            # the gradient reaches the target layer only if the input asks for one.
            cam.compute_input_gradient = True
            for key, classes in (("pred", preds), ("true", labels)):
                targets = [ClassifierOutputTarget(int(classes[i])) for i in indices]
                maps[key] = cam(input_tensor=images, targets=targets)
        self.net.zero_grad(set_to_none=True)
        cams = list(zip(maps["pred"], maps["true"], strict=True))
        # An all-zero map is a finding (no positive gradient evidence), not a blank picture.
        none = [
            "" if cam.max() > 0 else "\n(no positive evidence)" for pair in cams for cam in pair
        ]
        captions = [
            (
                f"why {self.classes[preds[i]]} (pred){none[2 * k]}",
                f"where {self.classes[labels[i]]} (true){none[2 * k + 1]}",
            )
            for k, i in enumerate(indices)
        ]
        pictures.save_gradcam(list(images), cams, captions, name, plot_dir / "gradcam.png")

    def _save_embedding(self, plot_dir: Path, labels: np.ndarray, wrong: np.ndarray) -> None:
        features = torch.cat(self.features).numpy()
        method, limit = self.options["embedding"], self.options["embedding_max_points"]
        keep = np.arange(len(features))
        if len(keep) > limit:  # t-SNE's cost grows with the square of the points
            keep = np.sort(np.random.default_rng(self.seed).choice(len(keep), limit, replace=False))
        if len(keep) < 3:
            log.info("visualize: %d test images are too few for an embedding; skipped.", len(keep))
            return
        if method == "pca":
            from sklearn.decomposition import PCA

            points = PCA(n_components=2, random_state=self.seed).fit_transform(features[keep])
        else:
            from sklearn.manifold import TSNE
            from threadpoolctl import threadpool_limits

            perplexity = min(30.0, (len(keep) - 1) / 3)
            tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=self.seed)
            # One OpenMP thread: on shared cores its spinning threads made t-SNE of 270
            # points take 110 s instead of 2 s; one thread embeds 2000 points in seconds.
            with threadpool_limits(limits=1, user_api="openmp"):
                points = tsne.fit_transform(features[keep])
        title = (
            f"{'t-SNE' if method == 'tsne' else 'PCA'} of the backbone's pooled features "
            f"({features.shape[1]}-D) of {len(keep)} test images"
        )
        file = plot_dir / f"embedding_{method}.png"
        pictures.save_embedding(points, labels[keep], wrong[keep], self.classes, title, file)
