"""Reads run folders and shows what is in them: summary.json, compare tables, seed
statistics, plots, pictures (eval visualize=true) and the results page. What makes a run
(loggers, progress bar, resume, sweeps, checkpoints) lives in runs/."""
