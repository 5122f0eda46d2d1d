"""timm, imported without its W&B probe: `from transferlab.models.timm_lib import timm`.

timm.utils.summary runs `try: import wandb` at import time (0.3 s of every run's start-up
on 2 CPU cores) for a logging helper that transferlab never calls. W&B is hidden while timm
loads (compat.module_hidden); logger=wandb imports it as usual afterwards.
"""

from transferlab import compat

with compat.module_hidden("wandb"):
    import timm
    import timm.models

__all__ = ["timm"]
