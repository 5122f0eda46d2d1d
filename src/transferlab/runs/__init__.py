"""What a run needs around the model: checkpoints, loggers, progress, resume, sweeps,
DDP, timing."""
