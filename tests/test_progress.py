"""The progress bar shows images/s: its batch rate times the mean size of its batches."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from transferlab.runs.progress import ImageProgressBar, ImagesPerSecond


class TinyClassifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Linear(4, 3)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/loss", torch.nn.functional.cross_entropy(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n: int, batch_size: int) -> DataLoader:
    data = TensorDataset(torch.randn(n, 4), torch.randint(0, 3, (n,)))
    return DataLoader(data, batch_size=batch_size)


def test_each_bar_shows_images_per_second_from_its_own_batch_sizes(tmp_path):
    bar = ImageProgressBar(refresh_rate=4)
    trainer = L.Trainer(
        max_epochs=1,
        callbacks=[bar],
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
    )
    # 37 training images in batches of 8 (the last holds 5); 12 validation images in 4s.
    trainer.fit(TinyClassifier(), loader(37, 8), loader(12, 4))

    assert any(isinstance(c, ImagesPerSecond) for c in bar.progress.columns)
    train = next(t for t in bar.progress.tasks if t.id == bar.train_progress_bar_id)
    assert bar.mean_batch_size(train.id) == 37 / 5
    assert bar.mean_batch_size(bar.val_progress_bar_id) == 4
    column = next(c for c in bar.progress.columns if isinstance(c, ImagesPerSecond))
    shown = column.render(train).plain
    assert train.speed is not None  # five timed updates: rich knows the batch rate
    assert shown == f"{train.speed * 37 / 5:,.0f} img/s"
    assert bar.mean_batch_size(12345) is None  # a bar that counted nothing shows nothing
