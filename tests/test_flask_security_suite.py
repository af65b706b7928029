"""Flask-Security's own test suite passes with kitsession under every app.

The suite is downloaded from PyPI at run time (none of its code is kept here)
and runs in a virtual environment of its own; see
``tests/flask_security_suite/run.py``. It takes about five minutes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.flask_security
def test_flask_security_suite_passes_on_kitsession() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.flask_security_suite.run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    output = result.stdout[-6000:] + result.stderr[-4000:]
    summary = [line for line in result.stdout.splitlines() if line.startswith("Flask-Security")]
    assert result.returncode == 0, output
    assert summary and ", 0 regressions," in summary[0], output
    print("\n".join(line for line in result.stdout.splitlines() if line.startswith(("F", "  "))))
