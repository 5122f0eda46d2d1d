"""transferlab: which wins on your dataset — scratch, fine-tuning or frozen features?"""

import time

__version__ = "0.1.0"

# train.py's first import: a run's start-up (to its first training batch) counts from here.
STARTED = time.perf_counter()
