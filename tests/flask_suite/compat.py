"""Lets Flask's ``tests/conftest.py`` run on the installed pytest.

Loaded with ``-p tests.flask_suite.compat`` on every run, Flask's cookie
session and kitsession alike, so it cannot tell them apart. Flask 3.1's
conftest uses ``_pytest.monkeypatch.notset`` as a "no value" marker; pytest
9.1 dropped that alias of ``_pytest.compat.NOTSET`` (Flask issue #6071). This
puts it back when it is missing, and does nothing on a pytest that has it.
"""

from __future__ import annotations

from _pytest import compat
from _pytest import monkeypatch

if not hasattr(monkeypatch, "notset"):
    monkeypatch.notset = compat.NOTSET  # type: ignore[attr-defined]
