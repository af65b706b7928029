"""Flask-Login's own test suite passes with kitsession under every app.

The suite is downloaded from PyPI at run time (none of its code is kept here);
see ``tests/flask_login_suite/run.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_flask_login_suite_passes_on_kitsession() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.flask_login_suite.run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = [line for line in result.stdout.splitlines() if line.startswith("Flask-Login")]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert summary and ", 0 regressions;" in summary[0], result.stdout
    print(summary[0])
