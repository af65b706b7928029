"""The Flask extension: wires the session interface, store and CLI into an app."""

from __future__ import annotations

import copy
import os
import typing as t
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask import Flask
from flask import request
from sqlalchemy.engine import Engine

from .interface import KitSessionInterface
from .interface import STORE_ERROR_ENVIRON_KEY
from .models import utc_now
from .settings import DEFAULTS
from .settings import Settings
from .stores.base import SessionStore
from .stores.redis import RedisStore
from .stores.sql import create_store_engine
from .stores.sql import SQLAlchemyStore

#: Name of the SQLite file used when no database URL is configured.
DEFAULT_SQLITE_FILE = "kitsession.sqlite3"


@dataclass
class KitSessionState:
    """What kitsession keeps for one app, in ``app.extensions["kitsession"]``."""

    extension: KitSession
    store: SessionStore
    settings: Settings
    interface: KitSessionInterface


class KitSession:
    """Server-side sessions for Flask, tied to users.

    Create it once and call :meth:`init_app` in your app factory, or pass
    the app right away::

        kitsession = KitSession()
        kitsession.init_app(app)

    Sessions are kept in the SQL database named by ``KITSESSION_DATABASE_URL``
    (a SQLite file in the instance folder by default) unless a store or an
    engine is given here. With ``KITSESSION_REDIS_URL`` set they are kept in
    Redis, and ``session.user`` is read from that SQL database.

    :param app: Call :meth:`init_app` on this app right away.
    :param store: Keep sessions in this store (shared by every app it is
        initialised on) instead of one made from the app's config.
    :param engine: Use this SQLAlchemy engine (for instance your app's own,
        to share its connection pool) instead of ``KITSESSION_DATABASE_URL``.
    :param user_model: The app's user table or mapped class; overrides
        ``KITSESSION_USER_MODEL``.
    :param interface_class: The session interface to install.
    :param clock: Returns the current aware UTC time; tests may pass their own.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        store: SessionStore | None = None,
        engine: Engine | None = None,
        user_model: t.Any = None,
        interface_class: type[KitSessionInterface] = KitSessionInterface,
        clock: t.Callable[[], datetime] = utc_now,
    ) -> None:
        if store is not None and (engine is not None or user_model is not None):
            raise TypeError(
                "Pass either store= or engine=/user_model=, not both: the store has its own."
            )
        self._store = store
        self._engine = engine
        self._user_model = user_model
        self.interface_class = interface_class
        self.clock = clock
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Install server-side sessions on ``app``.

        Sets the ``KITSESSION_*`` config defaults, makes the store, replaces
        ``app.session_interface`` and adds the ``flask kitsession`` commands.

        :raises RuntimeError: if kitsession is already installed on ``app``.
        """
        if "kitsession" in app.extensions:
            raise RuntimeError(
                "flask-kitsession is already initialized on this app. Call"
                " init_app() once per app (one KitSession can serve many apps)."
            )
        for key, value in DEFAULTS.items():
            # A copy, so that no app changes the defaults of another.
            app.config.setdefault(key, copy.copy(value))
        settings = Settings.from_config(app.config)
        store = self._store if self._store is not None else self._make_store(app)
        store.serializer.max_size = settings.max_data_size
        interface = self.interface_class(store, settings, clock=self.clock)
        app.session_interface = interface
        app.extensions["kitsession"] = KitSessionState(self, store, settings, interface)
        # First, so that no other hook runs on a session that failed to load.
        app.before_request_funcs.setdefault(None, []).insert(0, _fail_if_unavailable)

        from .cli import kitsession_command

        app.cli.add_command(kitsession_command)

    def _make_store(self, app: Flask) -> SessionStore:
        engine = self._engine
        if engine is None:
            url = app.config["KITSESSION_DATABASE_URL"]
            if url is None:
                os.makedirs(app.instance_path, exist_ok=True)
                url = "sqlite:///" + os.path.join(app.instance_path, DEFAULT_SQLITE_FILE)
            engine = create_store_engine(url, **app.config["KITSESSION_ENGINE_OPTIONS"])
        user_model = self._user_model
        if user_model is None:
            user_model = app.config["KITSESSION_USER_MODEL"]
        sql_store = SQLAlchemyStore(
            engine,
            user_model=user_model,
            user_fields=app.config["KITSESSION_USER_FIELDS"],
        )
        redis_url = app.config["KITSESSION_REDIS_URL"]
        if redis_url is None:
            return sql_store
        # Sessions in Redis, users where they are: each user is one SQL query.
        return RedisStore.from_url(
            redis_url,
            prefix=app.config["KITSESSION_REDIS_PREFIX"],
            user_loader=sql_store.load_user,
            user_id_type=sql_store.user_id_type,
        )

    @property
    def store(self) -> SessionStore:
        """The store of the current app."""
        return get_state().store


def get_state(app: Flask | None = None) -> KitSessionState:
    """Return kitsession's state for ``app`` (default: the current app).

    :raises RuntimeError: if kitsession was not initialised on the app.
    """
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return t.cast(KitSessionState, app.extensions["kitsession"])
    except KeyError:
        raise RuntimeError(
            "flask-kitsession is not initialized on this app. Call"
            " KitSession(app) or kitsession.init_app(app) in your app factory."
        ) from None


def _fail_if_unavailable() -> None:
    """Answer 503 (or the app's handler for it) when the session could not be
    loaded, rather than run the view without the visitor's session.
    """
    error = request.environ.get(STORE_ERROR_ENVIRON_KEY)
    if error is not None:
        raise error
