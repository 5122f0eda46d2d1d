"""`python study.py resume=<study folder>`: the study's own overrides, into its own folder."""

from __future__ import annotations

from pathlib import Path

import yaml

from transferlab.errors import UserError


def study_argv(argv: list[str]) -> list[str]:
    """Rewrite `resume=<folder>` into that study's overrides + `hydra.run.dir=<folder>`.

    Overrides given beside resume= are added after the study's own (later wins).
    """
    given = [a for a in argv if a.startswith("resume=")]
    if not given:
        return argv
    folder = Path(given[-1].split("=", 1)[1]).expanduser().resolve()
    overrides, plan = folder / ".hydra" / "overrides.yaml", folder / "plan.json"
    if not overrides.is_file() or not plan.is_file():
        raise UserError(
            f"resume={given[-1].split('=', 1)[1]} is not a study folder that can be resumed: "
            f"it needs .hydra/overrides.yaml and plan.json (looked in {folder}). Give a folder "
            "such as resume=logs/study/<time>_<id>, one whose probe finished."
        )
    merged: dict[str, str] = {}
    for item in [*yaml.safe_load(overrides.read_text()), *(a for a in argv if a not in given)]:
        merged[item.split("=", 1)[0]] = item
    return [*merged.values(), f"hydra.run.dir={folder}"]
