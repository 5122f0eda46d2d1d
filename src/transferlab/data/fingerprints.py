"""What identifies a split's images without decoding them: the feature cache's question.

Each dataset class of ours answers it itself (`fingerprint_parts()`: `TensorImages` by
value, `ImageFiles` by file signatures, `HFImages` by its Arrow table's fingerprint), so a
new kind of data is a method on its class, not a branch here. A library's own dataset
class (a torchvision set read from its files) cannot grow the method; torchvision_sets
answers for it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Dataset, Subset

from transferlab.data.torchvision_sets import library_fingerprint_parts


def fingerprint_parts(split: Dataset) -> Iterator[bytes | memoryview]:
    """The bytes to hash for `split`: the indices of each Subset around it, then its base data."""
    dataset = split
    while True:
        if isinstance(dataset, Subset):
            yield np.asarray(dataset.indices, dtype=np.int64).tobytes()
        elif not (hasattr(dataset, "dataset") and hasattr(dataset, "transform")):
            break  # reached the base data; a `Transformed` wrapper is looked through
        dataset = dataset.dataset
    own = getattr(dataset, "fingerprint_parts", None)
    yield from own() if own is not None else library_fingerprint_parts(dataset)
