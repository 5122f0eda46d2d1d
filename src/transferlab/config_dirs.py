"""Where configs come from: the package's own, a user's own beside them, and `.env`.

Torch-free, read before Hydra composes. In a clone the configs are `<clone>/conf`; an
installed wheel carries the same files as `transferlab/conf` (pyproject maps one onto the
other), so `transferlab train` composes the same default from any folder.
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CLONE_CONF = _PACKAGE.parents[1] / "conf"  # src/transferlab -> <clone>/conf


def package_conf_dir() -> Path:
    """The shipped configs: the clone's conf/ when running from one, else the wheel's copy."""
    if (_CLONE_CONF / "train.yaml").is_file():
        return _CLONE_CONF
    return _PACKAGE / "conf"


CONF_DIR = str(package_conf_dir())

# A user's own config groups (conf/data/mine.yaml, conf/local/default.yaml) are searched
# after the shipped ones: TRANSFERLAB_CONFIG_DIR names the folder, else ./conf of the
# folder a command runs in.
USER_CONF_ENV = "TRANSFERLAB_CONFIG_DIR"


def user_conf_dir(cwd: Path | None = None) -> Path | None:
    """The user's config folder to add to Hydra's search path, or None."""
    given = os.environ.get(USER_CONF_ENV)
    folder = Path(given).expanduser() if given else (cwd or Path.cwd()) / "conf"
    if not folder.is_dir() or folder.resolve() == Path(CONF_DIR).resolve():
        return None
    return folder.resolve()


def search_path_override(cwd: Path | None = None) -> list[str]:
    """`hydra.searchpath=[file://...]` for the user's configs, or nothing.

    Hydra reads the search path from the primary config or the command line only; the
    command line is the one place that needs no edit of every primary config.
    """
    folder = user_conf_dir(cwd)
    return [f"hydra.searchpath=[file://{folder}]"] if folder else []


def load_dotenv_file(cwd: Path | None = None) -> Path | None:
    """Environment from `./.env` (machine paths, API keys); the real environment wins."""
    path = (cwd or Path.cwd()) / ".env"
    if not path.is_file():
        return None
    from dotenv import load_dotenv

    load_dotenv(path, override=False)
    return path


def with_user_configs(overrides: list[str]) -> list[str]:
    """A command line with `./.env` loaded and the user's config folder on the search path."""
    load_dotenv_file()
    if any(a.startswith("hydra.searchpath=") for a in overrides):
        return overrides  # the user's own choice
    # beside the other overrides: Hydra's parser takes them as one run of arguments
    at = next((i for i, a in enumerate(overrides) if "=" in a and a[0] != "-"), len(overrides))
    return [*overrides[:at], *search_path_override(), *overrides[at:]]
