"""timm, imported without its W&B probe: `from transferlab.models.timm_lib import timm`.

timm.utils.summary runs `try: import wandb` at import time (0.3 s of every run's start-up
on 2 CPU cores) for a logging helper that transferlab never calls. W&B is hidden while timm
loads; logger=wandb imports it as usual afterwards.
"""

import sys

_hide_wandb = "wandb" not in sys.modules
if _hide_wandb:
    sys.modules["wandb"] = None  # type: ignore[assignment]  # makes `import wandb` fail fast
try:
    import timm
    import timm.models
finally:
    if _hide_wandb:
        del sys.modules["wandb"]

__all__ = ["timm"]
