"""A pytest plugin that puts kitsession under every app Flask-Security's tests build.

Loaded by ``run.py`` with ``-p kitsession_plugin`` (this folder is on
``PYTHONPATH``; the module is top-level so that Flask-Security's own
``tests`` package stays the only ``tests``). When Flask-Security's
``tests/conftest.py`` is registered, the functions it builds its datastores
with are wrapped, so each app gets kitsession right after its database:

- Flask-SQLAlchemy (``sqlalchemy_setup``, behind the ``client`` fixture most
  tests use): ``KitSession(app, db=db, user_model=User)``, the session table
  created with ``db.create_all()`` as a Flask-SQLAlchemy app does, and
  ``init_login_manager`` once Flask-Security made its login manager.
- Plain SQLAlchemy and Flask-SQLAlchemy-Lite: the SQL store on the app's own
  engine (``KitSession(app, engine=..., user_model=User)``), its table made by
  kitsession's migrations.
- MongoDB, Peewee, Pony: the memory store.

Its helpers ``get_session(response)`` and ``get_existing_session(client)``
decode Flask's cookie; they are replaced with ones that read the stored
session the cookie names. Each test records in its JUnit properties
(``kitsession_store``) which stores its apps ran on, so the run can show
that the tests really ran on kitsession.
"""

from __future__ import annotations

import sys
import types
import typing as t

import flask
import pytest
from werkzeug.http import parse_cookie

from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import migrate
from flask_kitsession import ServerSession
from flask_kitsession import SQLAlchemyStore

#: The apps given kitsession during the current test, and the kind of store.
_apps: list[tuple[flask.Flask, str]] = []

#: The JUnit property naming the stores a test ran on.
PROPERTY = "kitsession_store"


def _install(app: flask.Flask, kind: str, **options: t.Any) -> KitSession:
    kitsession = KitSession(app, **options)
    _apps.append((app, kind))
    return kitsession


def _wrap_flask_sqlalchemy(original: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    def sqlalchemy_setup(app: flask.Flask, *args: t.Any, **kwargs: t.Any) -> t.Any:
        datastore, tear_down = original(app, *args, **kwargs)
        db = datastore.db
        _install(app, "sql-flask-sqlalchemy", db=db, user_model=datastore.user_model)
        with app.app_context():
            # The session table is in db.metadata now: what an app's own
            # db.create_all() (or Flask-Migrate) would make.
            db.create_all()
        return datastore, tear_down

    return sqlalchemy_setup


def _wrap_own_engine(
    original: t.Callable[..., t.Any], engine_of: t.Callable[[flask.Flask, t.Any], t.Any]
) -> t.Callable[..., t.Any]:
    def setup(app: flask.Flask, *args: t.Any, **kwargs: t.Any) -> t.Any:
        datastore, tear_down = original(app, *args, **kwargs)
        engine = engine_of(app, datastore)
        _install(app, "sql-engine", engine=engine, user_model=datastore.user_model)
        with app.app_context():
            migrate.upgrade(app)
        return datastore, tear_down

    return setup


def _session_scoped_engine(app: flask.Flask, datastore: t.Any) -> t.Any:
    # SQLAlchemySessionUserDatastore keeps its scoped_session as db.session.
    return datastore.db.session.get_bind()


def _lite_engine(app: flask.Flask, datastore: t.Any) -> t.Any:
    with app.app_context():
        return datastore.db.engine


def _wrap_memory(original: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    def setup(app: flask.Flask, *args: t.Any, **kwargs: t.Any) -> t.Any:
        datastore, tear_down = original(app, *args, **kwargs)
        _install(app, "memory", store=MemoryStore())
        return datastore, tear_down

    return setup


def _stored_session(cookie: str) -> dict[str, t.Any] | None:
    """The data of the stored session ``cookie`` names, read through the
    session interface of the app that signed it; ``None`` if none did.
    """
    for app, _ in reversed(_apps):
        header = f"{app.config['SESSION_COOKIE_NAME']}={cookie}"
        with app.test_request_context(headers={"Cookie": header}):
            session = app.session_interface.open_session(app, flask.request)
            if isinstance(session, ServerSession) and session.record is not None:
                return dict(session)
    return None


def _on_kitsession() -> bool:
    return bool(_apps)


def _replace_helpers(test_utils: types.ModuleType) -> None:
    original_get_session = getattr(test_utils, "get_session")  # noqa: B009
    original_get_existing_session = getattr(test_utils, "get_existing_session")  # noqa: B009

    def get_session(response: t.Any) -> t.Any:
        """The session the response's cookie names, as stored; empty when the
        response expired the cookie (its session was deleted, as kitsession
        does at logout where Flask's cookie session keeps what the logout
        left in it); ``None`` when it set no session cookie.
        """
        if not _on_kitsession():
            return original_get_session(response)
        for name, value in response.headers.items():
            if name.lower() == "set-cookie":
                cookies = parse_cookie(value)
                if "session" in cookies:
                    cookie = cookies["session"]
                    return _stored_session(cookie) if cookie else {}
        return None

    def get_existing_session(client: t.Any) -> t.Any:
        """The session the client's cookie names, as stored."""
        if not _on_kitsession():
            return original_get_existing_session(client)
        cookie = client.get_cookie("session")
        return _stored_session(cookie.value) if cookie else None

    setattr(test_utils, "get_session", get_session)  # noqa: B010
    setattr(test_utils, "get_existing_session", get_existing_session)  # noqa: B010


def _wrap_login_manager_factory() -> None:
    """Call ``init_login_manager`` on the login manager Flask-Security makes.

    Its own ``Security.init_app`` is left as it is: the warnings it issues are
    filtered by the module that calls it (its pytest.ini), which a wrapper
    around it would change.
    """
    from flask_security import core

    original = core._get_login_manager

    def _get_login_manager(app: flask.Flask, security: t.Any) -> t.Any:
        login_manager = original(app, security)
        state = app.extensions.get("kitsession")
        if (
            state is not None
            and isinstance(state.store, SQLAlchemyStore)
            and (app, "sql-flask-sqlalchemy") in _apps
        ):
            state.extension.init_login_manager(login_manager)
        return login_manager

    core._get_login_manager = _get_login_manager


def pytest_plugin_registered(plugin: t.Any, manager: t.Any) -> None:
    if getattr(plugin, "__name__", None) != "tests.conftest":
        return
    conftest = plugin
    conftest.sqlalchemy_setup = _wrap_flask_sqlalchemy(conftest.sqlalchemy_setup)
    conftest.sqlalchemy_session_setup = _wrap_own_engine(
        conftest.sqlalchemy_session_setup, _session_scoped_engine
    )
    conftest.fsqlalite_setup = _wrap_own_engine(conftest.fsqlalite_setup, _lite_engine)
    for name in ("mongoengine_setup", "peewee_setup", "pony_setup"):
        setattr(conftest, name, _wrap_memory(getattr(conftest, name)))
    # The conftest imported tests.test_utils already; the test modules import
    # its helpers by name later, so they get these.
    _replace_helpers(sys.modules["tests.test_utils"])
    _wrap_login_manager_factory()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: t.Any) -> None:
    _apps.clear()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: t.Any) -> None:
    for kind in sorted({kind for _, kind in _apps}):
        item.user_properties.append((PROPERTY, kind))
