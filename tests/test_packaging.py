"""The built wheel carries the migration scripts, and they run from it."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent

APP = """
from flask import Flask
from flask_kitsession import KitSession

def create_app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "packaging test"
    app.config["KITSESSION_DATABASE_URL"] = {url!r}
    KitSession(app)
    return app
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    [built] = out.glob("flask_kitsession-*.whl")
    return built


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "flask_kitsession/py.typed",
        "flask_kitsession/migrations/env.py",
        "flask_kitsession/migrations/script.py.mako",
        "flask_kitsession/migrations/versions/0001_initial.py",
        "flask_kitsession/migrations/versions/0002_link_by_login_id.py",
    ):
        assert name in names
    assert not any("__pycache__" in name or name.startswith("tests/") for name in names)


def test_db_upgrade_from_the_installed_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    database = tmp_path / "app.sqlite3"
    work = tmp_path / "work"
    work.mkdir()
    (work / "packaged_app.py").write_text(APP.format(url=f"sqlite:///{database}"))
    env = {
        **os.environ,
        # The wheel first, so the checkout's editable install is not what runs.
        "PYTHONPATH": os.pathsep.join([str(site), str(work)]),
        "FLASK_APP": "packaged_app:create_app",
    }
    probe = subprocess.run(
        [sys.executable, "-c", "import flask_kitsession; print(flask_kitsession.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.stdout.startswith(str(site)), probe.stdout + probe.stderr
    result = subprocess.run(
        [sys.executable, "-m", "flask", "kitsession", "db", "upgrade"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "revision 0002" in result.stdout
    engine = sa.create_engine(f"sqlite:///{database}")
    assert {"user", "session", "kitsession_alembic_version"} <= set(
        sa.inspect(engine).get_table_names()
    )
    engine.dispose()
