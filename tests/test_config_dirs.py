"""A user's configs beside the package's: ./conf on Hydra's search path, conf/local, .env;
`python -m transferlab <command>`; a missing extra named with its pip command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT
from transferlab import config_dirs
from transferlab.errors import UserError
from transferlab.extras import require


def test_a_users_conf_folder_adds_groups_and_local_settings_read_from_dotenv(tmp_path):
    (tmp_path / "conf" / "data").mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "conf" / "data" / "mine.yaml").write_text(
        "defaults:\n  - digits\n  - _self_\nimage_size: 24\n"
    )
    (tmp_path / "conf" / "local" / "default.yaml").write_text(
        "# @package _global_\ntags:\n  - ${oc.env:MACHINE_TAG}\n"
    )
    (tmp_path / ".env").write_text("MACHINE_TAG=lab-box-7\n")
    proc = subprocess.run(
        [sys.executable, "-m", "transferlab", "train", "data=mine", "--cfg", "job", "--resolve"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin", "PYTHONPATH": str(ROOT / "src")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "image_size: 24" in proc.stdout
    assert "- lab-box-7" in proc.stdout


def test_the_clone_conf_is_not_added_twice_and_the_env_variable_wins(tmp_path, monkeypatch):
    assert config_dirs.search_path_override(ROOT) == []  # the clone's conf/ is the package's
    assert config_dirs.search_path_override(tmp_path) == []  # no ./conf: nothing added
    monkeypatch.setenv(config_dirs.USER_CONF_ENV, str(tmp_path))
    assert config_dirs.search_path_override(ROOT) == [f"hydra.searchpath=[file://{tmp_path}]"]


def test_python_m_transferlab_lists_its_commands_and_refuses_an_unknown_one():
    listed = subprocess.run(
        [sys.executable, "-m", "transferlab", "--help"], capture_output=True, text=True
    )
    assert listed.returncode == 0
    for command in ("train", "eval", "predict", "export", "compare", "study", "rank"):
        assert f"  {command} " in listed.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "transferlab", "fit"], capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "no command 'fit'" in unknown.stderr


def test_a_missing_extra_is_one_paragraph_naming_the_pip_command():
    with pytest.raises(UserError, match=r'pip install "transferlab\[export\]"') as err:
        require("onnx_is_not_here", "export", "export.py format=onnx")
    assert "\n" not in str(err.value)
    assert require("json", "export", "anything").dumps([]) == "[]"
