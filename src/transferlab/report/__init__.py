"""Reads run folders and shows what is in them: compare tables and seed statistics. What
writes a run folder (summary.json, plots, pictures, loggers, checkpoints) lives in runs/;
the maintainers' results page is results/, outside the package."""
