"""The seconds train.py and eval.py save at start and exit, each with what it measured.

Measured on 2 CPU cores (docs/benchmarks.md, "Set-up and start-up"). One more lives
where it must act, at timm's import: models/timm_lib.py hides W&B from timm's probe
(0.3 s of every start-up). Torch-free: cli imports this module before the config checks.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable

from transferlab import compat


def without_gc_until_training(main: Callable[[], None]) -> None:
    """Run an entry point with the cyclic garbage collector off until its first batch.

    Importing torch, Lightning, torchmetrics and timm allocates millions of long-lived
    objects, and the collector's passes over them took 1.7 of the 5 s those imports took:
    start-up to the first batch went from 5.0-6.7 s to 3.7-4.1 s (2026-12-02).
    `gc_after_startup` turns it back on before the first batch; this `finally` makes sure.
    """
    gc.disable()
    try:
        main()
    finally:
        gc.enable()


def gc_after_startup() -> None:
    """Turn the garbage collector back on once start-up is over (if it was turned off).

    Freezing first moves every object alive now (modules, the model, the data) out of the
    collector's generations: they live as long as the run, and later passes skip them.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def exit_fast(code: int = 0) -> None:
    """End a finished train.py/eval.py process without the interpreter's teardown.

    Freeing torch's modules and tensors one by one took 1.9 s after the last log line of a
    13 s cached run (2026-11-25). Everything a run writes is on disk by now; what Python
    would still do is run here first: threads are stopped and joined, atexit hooks (W&B's
    finish, logging's flush, multiprocessing's clean-up) run, stdout and stderr are flushed.
    """
    if sys.getprofile() or sys.gettrace():
        return  # cProfile, a debugger or coverage: they write their output at a normal exit
    if not compat.run_exit_hooks_now():
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say
            stream.flush()
    os._exit(code)
