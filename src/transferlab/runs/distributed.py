"""DDP inside Hydra: child processes re-run exactly this job, in this job's folder.

Lightning starts DDP ranks 1..N-1 by re-running `sys.argv`. Under `-m` that is the whole
sweep, so every child would run a sweep of its own (lightning-hydra-template issues 90,
226, 393). The command built here replays only this job's overrides, with no `-m`, into
the parent's run folder, and tells Hydra not to write a second `.hydra/`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Sequence

import torch.distributed as dist

from transferlab import compat


def hydra_child_command(local_rank: int) -> tuple[Sequence[str], str]:
    """The command and working directory of DDP rank `local_rank` for the running Hydra job."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd, to_absolute_path

    import __main__

    hc = HydraConfig.get()
    if sys.argv[0].startswith("transferlab "):  # the package's command line (__main__.py)
        command = [sys.executable, "-m", *sys.argv[0].split()]
    elif __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    # Quoted: job folder names hold '=' and ',' which Hydra would parse as a sweep.
    command += [
        *hc.overrides.task,
        f'hydra.run.dir="{hc.runtime.output_dir}"',
        f"hydra.job.name={hc.job.name}",
        "hydra.output_subdir=null",
    ]
    return command, get_original_cwd()


def install() -> None:
    """Route Lightning's subprocess launcher through `hydra_child_command`."""
    compat.route_ddp_children(hydra_child_command)


@contextlib.contextmanager
def job_scope() -> Iterator[None]:
    """Leave no DDP state behind for the next job of a sweep run in this process.

    Lightning exports LOCAL_RANK, WORLD_SIZE, MASTER_PORT...; the next job's Trainer would
    read them as "processes already launched" and wait for peers that never come.
    """
    saved = dict(os.environ)
    try:
        yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        os.environ.clear()
        os.environ.update(saved)


def gpu_pool_slot(cfg, hydra_cfg) -> int | None:
    """`hydra/launcher=gpu_pool`: sweep job i trains on GPU i mod N, N = launcher.n_jobs.

    The device index goes to `trainer.devices` rather than CUDA_VISIBLE_DEVICES because
    joblib reuses worker processes, whose CUDA context was fixed by their first job.
    Returns the slot (also recorded in summary.json), or None outside a GPU pool.
    """
    if hydra_cfg.runtime.choices.get("hydra/launcher") != "gpu_pool":
        return None
    import torch
    from omegaconf import open_dict

    slot = hydra_cfg.job.num % int(hydra_cfg.launcher.n_jobs)
    if torch.cuda.is_available() and slot < torch.cuda.device_count():
        with open_dict(cfg):
            cfg.trainer.accelerator = "gpu"
            cfg.trainer.devices = [slot]
    return slot
