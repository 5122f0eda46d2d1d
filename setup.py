"""The package from src/, with the clone's conf/ shipped inside it as `transferlab.conf`.

pyproject.toml holds everything else; only a setup.py can add one mapped folder to the
packages setuptools finds (config_dirs.py finds the configs either way).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages("src"), "transferlab.conf"],
    package_dir={"": "src", "transferlab.conf": "conf"},
)
