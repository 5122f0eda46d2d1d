"""Hyperparameter search: Optuna's ask-and-tell behind Hydra's sweeper interface.

`space` reads the search space, `study` opens the stored study (samplers, pruners,
heartbeats), `sweeper` runs trials through Hydra's launcher, `pruning` is the per-epoch
Lightning callback inside each trial, `outputs` writes what a finished search leaves.
"""
