"""sklearn's handwritten digits: the offline dataset every quick run and test starts from."""

from __future__ import annotations

import torch
from torch.utils.data import Subset

from transferlab.data.sources import Splits, TensorImages, stratified_split
from transferlab.data.subsets import cut
from transferlab.datasets import DATASETS


class Digits:
    """sklearn's 1797 real 8x8 greyscale digits: offline, seconds to train on."""

    channels, image_size = DATASETS["digits"].channels, DATASETS["digits"].native_size

    def __init__(
        self,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        limit: int | None = None,
        shots: int | None = None,
        eval_limit: int | None = None,
    ) -> None:
        self.classes = list(DATASETS["digits"].classes)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.limit, self.shots, self.eval_limit = limit, shots, eval_limit

    def prepare(self) -> None:
        """Nothing to fetch: the data ships with scikit-learn."""

    def splits(self, seed: int) -> Splits:
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values run 0..16; scale to the full uint8 range like any other image.
        images = torch.from_numpy(digits.images * (255 / 16)).round().to(torch.uint8)
        data = TensorImages(images.unsqueeze(1), torch.from_numpy(digits.target))
        idx = stratified_split(digits.target, self.val_fraction, self.test_fraction, seed)
        splits = tuple(Subset(data, i.tolist()) for i in idx)
        return cut(splits, self.limit, self.shots, seed, self.eval_limit)
