"""`python study.py resume=<study folder>`: the study's own overrides, into its own folder."""

from __future__ import annotations

from transferlab.runs.resume import replayed


def study_argv(argv: list[str]) -> list[str]:
    """Rewrite `resume=<folder>` into that study's overrides + `hydra.run.dir=<folder>`.

    Overrides given beside resume= are added after the study's own (later wins).
    """
    example = "resume=logs/study/<time>_<id>, one whose probe finished"
    folder, overrides = replayed(argv, "study", ("plan.json",), example)
    if folder is None:
        return argv
    return [*overrides, f"hydra.run.dir={folder}"]
