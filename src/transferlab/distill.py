"""mode=distill: a student learns from a frozen teacher's softened logits and the labels.

Teacher logits are computed on the fly, batch by batch, from the student's own input
tensors: that works with augmentation, DDP and resumed runs alike, and on small data the
teacher's forward pass costs little next to the student's training step. The teacher's
checkpoint records how its inputs were prepared (hparams["preprocess"]); the student's
normalised batch is turned back into [0, 1] pixels and prepared that way (channels, size,
interpolation, mean and std), so a 64 px RGB ImageNet teacher can teach an 8 px
grayscale CNN.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from transferlab.data.transforms import INTERPOLATIONS, Preprocess
from transferlab.errors import UserError

# ITU-R 601 luma, what torchvision's Grayscale uses: RGB student input for a gray teacher.
_LUMA = (0.299, 0.587, 0.114)


class Teacher:
    """A frozen network from a run's checkpoint that maps student batches to its logits.

    Deliberately not an nn.Module attribute of the student: its weights stay out of the
    student's checkpoints, and it stays in eval mode whatever the student's mode.
    """

    def __init__(self, loaded, checkpoint: str | Path, student: Preprocess, num_classes: int):
        """`loaded`: the ClassifierModule of `checkpoint` (pipeline.load_teacher loads it)."""
        if loaded.hparams["num_classes"] != num_classes:
            raise UserError(
                f"distill.teacher={checkpoint} predicts {loaded.hparams['num_classes']} classes "
                f"but the student's data has {num_classes}. Use a teacher trained on the same "
                f"classes (the same data=...)."
            )
        self.net = loaded.net.eval().requires_grad_(False)
        self.pre = Preprocess(**loaded.hparams["preprocess"])
        self.student = student

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        """The student's normalised batch, prepared as the teacher's own data was."""
        if self.pre == self.student:
            return x
        s, t = self.student, self.pre
        pixels = x * _column(s.std, x) + _column(s.mean, x)
        if t.channels == 3 and s.channels == 1:
            pixels = pixels.expand(-1, 3, -1, -1)
        elif t.channels == 1 and s.channels == 3:
            pixels = (pixels * _column(_LUMA, x)).sum(1, keepdim=True)
        if t.image_size and tuple(pixels.shape[-2:]) != (t.image_size, t.image_size):
            # Resized as the teacher's own pipeline did it: torchvision on 8-bit images
            # (float interpolation without the rounding and clipping moved a Lite0 teacher's
            # accuracy on digits by 2-4%).
            image = pixels.clamp(0, 1).mul(255).round().to(torch.uint8)
            image = v2.functional.resize(
                image, [t.image_size], INTERPOLATIONS[t.interpolation], antialias=True
            )
            image = v2.functional.center_crop(image, [t.image_size])
            pixels = image.to(x.dtype) / 255
        return (pixels - _column(t.mean, x)) / _column(t.std, x)

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        first = next(self.net.parameters())
        if first.device != x.device:
            self.net.to(x.device)
        return self.net(self.adapt(x).to(first.dtype)).float()


def _column(values, like: torch.Tensor) -> torch.Tensor:
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(1, -1, 1, 1)


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels_loss: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * the labels' loss (Hinton et al.).

    T^2 keeps the soft term's gradients on the scale of the hard one as T changes.
    """
    soft = F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    return alpha * temperature**2 * soft + (1 - alpha) * labels_loss
