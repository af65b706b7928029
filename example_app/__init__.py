"""A small app that uses flask-kitsession the way a real one would.

Run it on the embedded SQLite database::

    flask --app example_app run

or on PostgreSQL by setting one variable::

    KITSESSION_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/app flask --app example_app run

or under a production server, with one secret key for all its workers::

    FLASK_SECRET_KEY=... gunicorn -w 4 'example_app:create_app()'

Config beyond Flask's and kitsession's (set ``FLASK_<NAME>`` in the
environment, or pass ``test_config``):

``EXAMPLE_WORKER_HEADER``
    ``False`` by default. ``True`` adds an ``X-Worker-Pid`` header to every
    response, so a test can tell which worker process answered.
"""

from __future__ import annotations

import os
import secrets
import typing as t
from pathlib import Path

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

from flask_kitsession import KitSession
from flask_kitsession import migrate
from flask_kitsession import session_created

kitsession = KitSession()
#: Every form's POST must carry the token of the session that showed it.
csrf = CSRFProtect()


def create_app(test_config: t.Mapping[str, t.Any] | None = None) -> Flask:
    """Create the example app.

    :param test_config: Config that overrides everything else (for tests).
    """
    app = Flask(__name__, instance_relative_config=True)
    app.config.from_mapping(
        SESSION_COOKIE_SAMESITE="Lax",
        KITSESSION_DATABASE_URL=os.environ.get("KITSESSION_DATABASE_URL"),
        # Flask-WTF keeps the CSRF token in the session, which lives on the
        # server: it ends when the session expires, logs out or is signed
        # out from another device. No second clock is needed for a form
        # left open (Flask-WTF's default refuses it after an hour).
        WTF_CSRF_TIME_LIMIT=None,
        EXAMPLE_WORKER_HEADER=False,
    )
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret_key(Path(app.instance_path))

    kitsession.init_app(app)
    # The bundled migrations create (or upgrade) the session and user tables.
    migrate.upgrade(app)

    from . import notices
    from . import views

    # Checked in before_request, before @with_new_session starts a login's
    # session over: the login form's token is the visitor's session's.
    csrf.init_app(app)
    app.register_blueprint(views.bp)
    session_created.connect(notices.tell_other_devices, app)
    if app.config["EXAMPLE_WORKER_HEADER"]:
        app.after_request(_add_worker_header)
    return app


def _add_worker_header(response: Response) -> Response:
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


def _instance_secret_key(instance: Path) -> str:
    """A random key kept in the instance folder, so sessions survive restarts.

    Several workers of a server may start at once with no key yet: the key is
    written to a file of its own and linked into place, which succeeds for
    one of them only, so all of them read the same, complete key.
    """
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        draft = instance / f".secret_key.{os.getpid()}.{secrets.token_hex(4)}"
        draft.write_text(secrets.token_hex(32))
        draft.chmod(0o600)
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()
