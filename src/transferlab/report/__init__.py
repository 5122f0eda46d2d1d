"""Run summaries, comparison tables and plots."""
