"""A pytest plugin that puts kitsession under every Flask app a test creates.

Loaded with ``-p tests.flask_suite.plugin`` by ``run.py``: every
``Flask(...)`` gets ``KitSession(app)`` right after it is made, so Flask's own
session tests run on server-side sessions instead of Flask's cookie session,
with no change to the tests.

``KITSESSION_SUITE_STORE`` picks the store:

- ``memory`` (the default): a :class:`~flask_kitsession.MemoryStore` per app.
- ``sqlite``: a SQLite file of its own per app, in the folder named by
  ``KITSESSION_SUITE_DATABASE_FOLDER``, given to the app as
  ``KITSESSION_DATABASE_URL``; its tables are made the documented way, with
  :func:`flask_kitsession.migrate.upgrade`. The store's connections are
  closed after each test.
"""

from __future__ import annotations

import itertools
import os
import typing as t
import warnings
import weakref
from pathlib import Path

import flask
import pytest

from flask_kitsession import KitSession
from flask_kitsession import KitSessionInterface
from flask_kitsession import MemoryStore
from flask_kitsession import migrate
from flask_kitsession import SessionStore

STORES = ("memory", "sqlite")

_original_init = flask.Flask.__init__
_app_numbers = itertools.count(1)
# The apps made by the running test (weakly: Flask checks that an app is
# freed as soon as its last reference goes), and the stores to close after it.
_apps: weakref.WeakSet[flask.Flask] = weakref.WeakSet()
_stores: list[SessionStore] = []


def _store_name() -> str:
    store = os.environ.get("KITSESSION_SUITE_STORE", "memory")
    if store not in STORES:
        raise ValueError(f"KITSESSION_SUITE_STORE must be one of {STORES}, got {store!r}.")
    return store


def _init_with_kitsession(self: flask.Flask, *args: t.Any, **kwargs: t.Any) -> None:
    _original_init(self, *args, **kwargs)
    with warnings.catch_warnings():
        # Installed before the test sets its SECRET_KEY, as no app would be.
        warnings.filterwarnings("ignore", "SECRET_KEY is not set", UserWarning)
        _install(self)
    _apps.add(self)


def _install(self: flask.Flask) -> None:
    if _store_name() == "memory":
        KitSession(self, store=MemoryStore())
    else:
        folder = Path(os.environ["KITSESSION_SUITE_DATABASE_FOLDER"])
        # A database per app: no test sees another's sessions, as with cookies.
        database = folder / f"app-{next(_app_numbers)}.sqlite3"
        self.config["KITSESSION_DATABASE_URL"] = f"sqlite:///{database}"
        extension = KitSession(self)
        migrate.upgrade(self)
        with self.app_context():
            _stores.append(extension.store)


def pytest_configure(config: pytest.Config) -> None:
    _store_name()
    flask.Flask.__init__ = _init_with_kitsession  # type: ignore[method-assign]


def pytest_runtest_call(item: pytest.Item) -> None:
    # Each test really runs on kitsession: checked, not assumed.
    assert flask.Flask.__init__ is _init_with_kitsession
    for app in _apps:
        assert isinstance(app.session_interface, KitSessionInterface), app


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> t.Generator[None, None, None]:
    try:
        yield
    finally:
        _apps.clear()
        while _stores:
            _stores.pop().close()
