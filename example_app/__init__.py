"""A small app that uses flask-kitsession the way a real one would.

Run it on the embedded SQLite database::

    flask --app example_app run

or on PostgreSQL by setting one variable::

    KITSESSION_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/app flask --app example_app run
"""

from __future__ import annotations

import os
import secrets
import typing as t
from pathlib import Path

from flask import Flask

from flask_kitsession import KitSession
from flask_kitsession import migrate

kitsession = KitSession()


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Create the example app.

    :param test_config: Config that overrides everything else (for tests).
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SESSION_COOKIE_SAMESITE="Lax",
        KITSESSION_DATABASE_URL=os.environ.get("KITSESSION_DATABASE_URL"),
    )
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret_key(Path(app.instance_path))

    kitsession.init_app(app)
    # The bundled migrations create (or upgrade) the session and user tables.
    migrate.upgrade(app)

    from . import csrf
    from . import views

    csrf.init_app(app)
    app.register_blueprint(views.bp)
    return app


def _instance_secret_key(instance: Path) -> str:
    """A random key kept in the instance folder, so sessions survive restarts."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
