"""transferlab: which wins on your dataset — scratch, fine-tuning or frozen features?"""

import time

__version__ = "0.1.0"

# A run's start-up (to its first training batch, runs.timing) counts from here: train.py's
# first import, before Hydra and torch load. Only a value taken at import can see that
# moment; nothing changes it later.
STARTED = time.perf_counter()
