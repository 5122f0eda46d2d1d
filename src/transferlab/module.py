"""The LightningModule: any `Classifier`, cross-entropy, torchmetrics, configured optimizers."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from torch import nn
from torch.nn import functional as F
from torchmetrics import MaxMetric
from torchmetrics.classification import MulticlassAccuracy

from transferlab import defaults, heads, lr_schedules, modes
from transferlab.data.balance import class_weights
from transferlab.data.transforms import Preprocess
from transferlab.distill import Teacher, distillation_loss
from transferlab.errors import UserError
from transferlab.features import slim
from transferlab.features.extract import read_layers
from transferlab.finetune import freeze
from transferlab.finetune.param_groups import param_groups
from transferlab.models import build_model
from transferlab.stage_metrics import StageMetrics
from transferlab.weights_files.tensor_headers import WeightsFile


class ClassifierModule(L.LightningModule):
    """Trains a `Classifier` under a freeze policy; the checkpoint describes itself.

    Every constructor argument is plain data saved in the checkpoint, so
    `ClassifierModule.load_from_checkpoint(path)` rebuilds the network (without fetching
    pretrained weights: the checkpoint's tensors fill it).
    """

    def __init__(
        self,
        model: dict,
        mode: dict,
        optimizer: dict,
        scheduler: dict | None,
        num_classes: int,
        in_chans: int,
        image_size: int | None,
        label_smoothing: float = 0.0,
        classes: list[str] | None = None,
        data: dict | None = None,
        preprocess: dict | None = None,
        features: dict | None = None,
        head: dict | None = None,
        distill: dict | None = None,
        fetch_weights: bool = False,
        feature_input: bool = False,
    ) -> None:
        """`fetch_weights`: fetch the pretrained weights (False: a checkpoint fills the net).
        `feature_input`: batches are the frozen backbone's cached features, so only the head
        runs (features/training.py decides it). Neither is saved: a restored module reads
        images with the weights of its checkpoint."""
        super().__init__()
        self.save_hyperparameters(ignore=["fetch_weights", "feature_input"])
        # Its state_dict names are NET_PREFIX + the network's: how a run's checkpoint is told
        # apart before torch loads (weights_files.tensor_headers; test_weights_file asserts it).
        self.net = build_model(
            model,
            num_classes=num_classes,
            in_chans=in_chans,
            image_size=image_size,
            fetch_weights=fetch_weights,
        )
        if features:  # the backbone yields features.layers instead of its pooled output
            read_layers(self.net, features, head=model.get("head"))
        self.feature_input = feature_input
        self.cut = None  # see train_behind
        self.backbone_loaded = fetch_weights  # False: restored from a checkpoint
        self._finding_lr = False  # see searching_lr
        # What the network reads, not what the data has: a checkpoint rebuilds this stem.
        self.hparams["in_chans"] = self.net.data_config["input_size"][0]
        if preprocess is None:  # a new run: how inputs are prepared follows the weights
            self.hparams["preprocess"] = asdict(Preprocess.following(data or {}, self.net))
        # mode=distill's frozen teacher: built for training only, never saved with the student
        self.teacher = None
        if distill and fetch_weights:
            self.teacher = load_teacher(distill["teacher"], self.preprocess, num_classes)
        k = modes.get(mode["name"]).trainable_groups(len(self.net.groups), model.get("unfreeze"))
        freeze.set_trainable(self.net, k)
        # Lightning 2.x never calls .train() at fit start: frozen layers go to eval mode now.
        self.train()
        if model.get("channels_last"):
            self.net.to(memory_format=torch.channels_last)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        self.register_buffer("class_weights", None, persistent=False)  # set in setup()
        self.metrics = StageMetrics(num_classes, calibrated=heads.of(head).calibrated)
        if distill:  # the teacher's accuracy on the student's test split, for the summary
            self.teacher_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # a resumed run remembers its best epoch

    @property
    def preprocess(self) -> Preprocess:
        """How this module's inputs are prepared (recorded in its checkpoint for eval.py)."""
        return Preprocess(**self.hparams["preprocess"])

    @contextlib.contextmanager
    def searching_lr(self):
        """tune.find_lr's range test drives the loss up on purpose: no divergence error."""
        self._finding_lr = True
        try:
            yield
        finally:
            self._finding_lr = False

    def use_lr(self, lr: float) -> None:
        """Train with `lr` (the lr finder's pick): configure_optimizers and checkpoints read it."""
        self.hparams.optimizer["lr"] = float(lr)

    def train_behind(self, cut) -> None:
        """Read the activations of a `features.prefix.BackboneCut` (None: images) from now
        on: only the layers after the cut and the head run. Not saved: a restored module
        reads images."""
        self.cut = cut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.feature_input:
            return self.net.head(x)
        if x.dtype == torch.float16 and self.cut is not None:
            x = x.float()  # features.dtype=float16 stores activations, the tail runs float32
        if x.dim() == 4 and self.hparams.model.get("channels_last"):
            x = x.contiguous(memory_format=torch.channels_last)  # weights and inputs alike
        if self.cut is not None:
            return self.net.head(self.cut.tail(x))
        return self.net(x)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and defaults.get(self.hparams.model, "model.frozen_bn") == "eval":
            freeze.eval_frozen_modules(self.net)
        return self

    def _lr_now(self) -> str:
        """ ", 5e+05 now" when a scheduler has moved the largest lr away from the configured one."""
        try:
            now = max(g["lr"] for g in self.trainer.optimizers[0].param_groups)
        except (RuntimeError, IndexError, AttributeError):  # no trainer or optimizer attached
            return ""
        return "" if now == self.hparams.optimizer.get("lr") else f", {now:.3g} now"

    def _step(self, batch, stage: str) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y)  # y may be soft (MixUp/CutMix): class probabilities
        if stage == "train" and self.class_weights is not None:  # data.balance=weights
            loss = F.cross_entropy(
                logits, y, self.class_weights, label_smoothing=self.hparams.label_smoothing
            )
        if self.teacher is not None and stage != "val":
            loss = self._with_teacher(x, y, logits, loss, stage)
        if y.is_floating_point():
            y = y.argmax(dim=1)  # accuracy counts the dominant label of each mixed image
        if stage == "train" and not torch.isfinite(loss) and not self._finding_lr:
            raise UserError(
                f"The training loss became {loss.item()} at epoch {self.current_epoch}, step "
                f"{self.global_step}: the run diverged. Lower the learning rate (lr is "
                f"{self.hparams.optimizer.get('lr')}{self._lr_now()}), add gradient clipping "
                f"(trainer.gradient_clip_val=1.0) or check the data for NaNs. The last good "
                f"checkpoint stays in checkpoints/."
            )
        logged = self.metrics.update(stage, loss.detach(), logits.detach(), y)
        for name, (metric, prog_bar) in logged.items():
            self.log(name, metric, on_step=False, on_epoch=True, prog_bar=prog_bar)
        return loss

    def _with_teacher(self, x, y, logits, loss, stage: str) -> torch.Tensor:
        """Training: the distillation loss. Test: the labels' loss, and the teacher's accuracy."""
        teacher = self.teacher.logits(x)
        if stage == "test":
            self.teacher_acc(teacher, y)
            self.log("test/teacher_acc", self.teacher_acc, on_step=False, on_epoch=True)
            return loss
        cfg = self.hparams.distill
        return distillation_loss(logits, teacher, loss, cfg["temperature"], cfg["alpha"])

    def training_step(self, batch, batch_idx: int) -> torch.Tensor | None:
        loss = self._step(batch, "train")
        # head=svm|logreg was fitted by scikit-learn: its epoch only logs, nothing steps.
        return loss if heads.of(self.hparams.get("head")).needs_optimizer else None

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")

    def setup(self, stage: str) -> None:
        if stage == "fit" and (self.hparams.get("data") or {}).get("balance") == "weights":
            labels = self.trainer.datamodule.train_labels()
            self.class_weights = class_weights(labels, self.hparams.num_classes).to(self.device)

    def on_train_start(self) -> None:
        # The sanity check's validation must not count as the best epoch (unless resuming).
        if self.trainer.ckpt_path is None:
            self.val_acc_best.reset()

    def on_train_epoch_end(self) -> None:
        trainable, total = self.param_counts()
        self.log("params/trainable", float(trainable))
        self.log("params/total", float(total))

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            return
        self.val_acc_best(self.metrics.acc["val_"].compute())
        self.log("val/acc_best", self.val_acc_best.compute(), sync_dist=True, prog_bar=True)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # A head trained on cached features leaves its frozen backbone out of every epoch's
        # checkpoint (14 MB each for Lite0); pipeline.train puts it back once, after fit.
        if self.feature_input or not defaults.get(
            self.hparams.get("features"), "features.save_backbone"
        ):
            slim.drop_backbone(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        slim.restore_backbone(self, checkpoint)  # no-op unless saved without the backbone

    def param_counts(self) -> tuple[int, int]:
        params = list(self.net.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)

    def configure_optimizers(self):
        opt_cfg = dict(self.hparams.optimizer)
        model = self.hparams.model
        groups = param_groups(
            self.net,
            lr=opt_cfg["lr"],
            weight_decay=opt_cfg.get("weight_decay", 0.0),
            backbone_lr_mult=model.get("backbone_lr_mult", 1.0),
            layer_decay=model.get("layer_decay"),
        )
        optimizer = instantiate(opt_cfg)(params=groups)
        if not self.hparams.scheduler:
            return optimizer
        return {
            "optimizer": optimizer,
            "lr_scheduler": lr_schedules.lightning_config(
                dict(self.hparams.scheduler), optimizer, self.trainer
            ),
        }


def load_run(checkpoint: str | Path) -> ClassifierModule:
    """A run's module from its checkpoint, read from the handle its header check opened."""
    return WeightsFile.of(checkpoint).load(
        lambda stream: ClassifierModule.load_from_checkpoint(
            stream, map_location="cpu", weights_only=True
        )
    )


def load_teacher(checkpoint: str | Path, student: Preprocess, num_classes: int) -> Teacher:
    """mode=distill's frozen teacher: a run's checkpoint, fed the student's batches."""
    return Teacher(load_run(checkpoint), checkpoint, student, num_classes)
