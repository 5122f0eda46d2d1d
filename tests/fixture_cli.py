"""python tests/fixture_cli.py <script> [overrides]: run train.py/eval.py on the fixture files.

The script runs as `python <script> [overrides]` would (same argv, `__name__ == "__main__"`,
its folder first on sys.path), with torchvision's md5 checks skipped for the tiny copies
(tests/torchvision_files.py). Its exit code is the process's: `sys.exit` leaves through
here, and `exit_fast` ends the process itself.
"""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    script = str(Path(sys.argv[1]).resolve())
    sys.argv = [script, *sys.argv[2:]]
    sys.path[0] = str(Path(script).parent)
    from tests.torchvision_files import md5_checks_skipped

    with md5_checks_skipped():
        runpy.run_path(script, run_name="__main__")
