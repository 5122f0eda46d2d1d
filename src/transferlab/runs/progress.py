"""The progress bar: Lightning's RichProgressBar, with images per second beside batches per second.

Batches per second hide what a user compares across runs (batch 32 vs 256, a smaller image
size), so each bar also shows images/s: its recent batch rate times the mean batch size of
the batches it has counted. Elapsed time and the time remaining (ETA) are Lightning's own.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.utilities.data import extract_batch_size
from rich.progress import ProgressColumn, Task
from rich.text import Text


class ImagesPerSecond(ProgressColumn):
    """`1,234 img/s` of a bar, from its batch rate and the mean size of its batches."""

    def __init__(self, bar: ImageProgressBar, style: Any = None) -> None:
        super().__init__()
        self.bar, self.style = bar, style

    def render(self, task: Task) -> Text:
        size = self.bar.mean_batch_size(task.id)
        if task.speed is None or size is None:
            return Text("", style=self.style)
        return Text(f"{task.speed * size:,.0f} img/s", style=self.style)


class ImageProgressBar(RichProgressBar):
    """RichProgressBar whose train, validation, test and predict bars also show images/s."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (progress display, task id) -> [images, batches]; a new display reuses task ids.
        self._counts: defaultdict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])

    def configure_columns(self, trainer) -> list:
        return [
            *super().configure_columns(trainer),
            ImagesPerSecond(self, self.theme.processing_speed),
        ]

    def mean_batch_size(self, task_id: int) -> float | None:
        images, batches = self._counts.get((id(self.progress), task_id), (0, 0))
        return images / batches if batches else None

    def _count(self, task_id: int | None, batch: Any) -> None:
        if task_id is None or self.progress is None:
            return
        try:
            size = extract_batch_size(batch)
        except Exception:  # a batch with no tensor in it: nothing to count
            return
        counts = self._counts[(id(self.progress), task_id)]
        counts[0] += size
        counts[1] += 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # Counted first: the bar redraws inside Lightning's hook.
        self._count(self.train_progress_bar_id, batch)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        sanity = trainer.sanity_checking
        self._count(self.val_sanity_progress_bar_id if sanity else self.val_progress_bar_id, batch)
        super().on_validation_batch_end(
            trainer, pl_module, outputs, batch, batch_idx, dataloader_idx
        )

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._count(self.test_progress_bar_id, batch)
        super().on_test_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_predict_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self._count(self.predict_progress_bar_id, batch)
        super().on_predict_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
