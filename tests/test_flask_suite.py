"""Flask's own session tests pass with kitsession under every app.

The tests are downloaded from PyPI at run time (none of Flask's code is kept
here); see ``tests/flask_suite/run.py``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.flask_suite.run import session_tests

ROOT = Path(__file__).resolve().parent.parent


def test_flask_session_tests_pass_on_kitsession() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.flask_suite.run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = [line for line in result.stdout.splitlines() if line.startswith("Flask ")]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert summary and "; 0 regressions," in summary[0], result.stdout
    print(summary[0])


def test_session_tests_are_chosen_by_name_and_by_what_they_use(tmp_path: Path) -> None:
    test_file = tmp_path / "tests" / "test_basic.py"
    test_file.parent.mkdir()
    test_file.write_text(
        textwrap.dedent(
            """
            import flask
            from flask import flash
            from flask.globals import request_ctx

            def test_session_path(app): pass
            def test_extended_flashing(app): pass
            def test_reads_session(app): assert flask.session.get("a") is None
            def test_flashes_by_name(app): flash("hello")
            def test_request_context(app): assert not request_ctx._session.modified
            def test_messages(app): assert flask.get_flashed_messages() == []
            def test_max_cookie_size(app, client): client.set_cookie("other", "x")
            def test_static_files(app, client): client.get("/static/index.html")
            def helper_session(): pass

            class TestSessionGroup:
                def test_in_a_class(self): pass

            class TestRouting:
                def test_flash_in_a_method(self): flask.flash("hello")
                def test_route(self): pass
            """
        ),
        encoding="utf-8",
    )
    assert session_tests(test_file) == [
        "tests/test_basic.py::test_session_path",
        "tests/test_basic.py::test_extended_flashing",
        "tests/test_basic.py::test_reads_session",
        "tests/test_basic.py::test_flashes_by_name",
        "tests/test_basic.py::test_request_context",
        "tests/test_basic.py::test_messages",
        "tests/test_basic.py::TestSessionGroup::test_in_a_class",
        "tests/test_basic.py::TestRouting::test_flash_in_a_method",
    ]
