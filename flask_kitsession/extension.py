"""The Flask extension: wires the session interface, store and CLI into an app."""

from __future__ import annotations

import copy
import os
import typing as t
from datetime import datetime

import sqlalchemy as sa
from flask import Flask
from flask import request
from sqlalchemy.engine import Engine

from .cli import kitsession_command
from .interface import KitSessionInterface
from .interface import STORE_ERROR_ENVIRON_KEY
from .loaders import user_loader_for
from .login import connect_signals
from .models import utc_now
from .settings import DEFAULTS
from .settings import Settings
from .state import EXTENSION_KEY
from .state import get_state
from .state import KitSessionState
from .stores.base import SessionStore
from .stores.redis import RedisStore
from .stores.sql import create_store_engine
from .stores.sql import SQLAlchemyStore

#: Name of the SQLite file used when no database URL is configured.
DEFAULT_SQLITE_FILE = "kitsession.sqlite3"


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
    :param db: The app's Flask-SQLAlchemy extension: kitsession then uses its
        engine (one connection pool for the app), attaches ``session.user`` to
        ``db.session``, and defines the session table in ``db.metadata`` so
        that Flask-Migrate's ``flask db migrate`` includes it. Needs the app's
        user model, and ``db.init_app(app)`` before ``init_app``.
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
        db: t.Any = None,
        interface_class: type[KitSessionInterface] = KitSessionInterface,
        clock: t.Callable[[], datetime] = utc_now,
    ) -> None:
        if store is not None and (engine is not None or user_model is not None or db is not None):
            raise TypeError(
                "Pass either store= or engine=/db=/user_model=, not both: the store has its own."
            )
        if engine is not None and db is not None:
            raise TypeError("Pass engine= or db=, not both: db= brings its own engine.")
        self._store = store
        self._engine = engine
        self._db = db
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
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "flask-kitsession is already initialized on this app. Call"
                " init_app() once per app (one KitSession can serve many apps)."
            )
        for key, value in DEFAULTS.items():
            # A copy, so that no app changes the defaults of another.
            app.config.setdefault(key, copy.copy(value))
        settings = Settings.from_config(app.config)
        store = self._store if self._store is not None else self._make_store(app)
        app.extensions[EXTENSION_KEY] = KitSessionState(self, store, settings, self.clock)
        interface = self.interface_class(store, settings, clock=self.clock)
        interface.signer.warn_without_key(app)
        app.session_interface = interface
        # First, so that no other hook runs on a session that failed to load.
        app.before_request_funcs.setdefault(None, []).insert(0, _fail_if_unavailable)
        connect_signals(app)
        app.cli.add_command(kitsession_command)

    def _make_store(self, app: Flask) -> SessionStore:
        if self._db is not None:
            sql_store = self._make_db_store(app)
        else:
            sql_store = self._make_sql_store(app)
        redis_url = app.config["KITSESSION_REDIS_URL"]
        if redis_url is None:
            return sql_store
        # Sessions in Redis, users where they are: each user is one SQL query.
        sentinels = app.config["KITSESSION_REDIS_SENTINELS"]
        try:
            return RedisStore.from_url(
                redis_url,
                cluster=app.config["KITSESSION_REDIS_CLUSTER"],
                sentinels=sentinels,
                prefix=app.config["KITSESSION_REDIS_PREFIX"],
                user_loader=sql_store.load_user,
                user_attacher=sql_store.attach_user,
                user_id_type=sql_store.user_key_type,
            )
        except (TypeError, ValueError) as e:
            keys = "KITSESSION_REDIS_URL" + (
                " or KITSESSION_REDIS_SENTINELS" if sentinels is not None else ""
            )
            raise type(e)(f"{keys}: {e}") from e

    def _make_sql_store(self, app: Flask) -> SQLAlchemyStore:
        engine = self._engine
        if engine is None:
            url = app.config["KITSESSION_DATABASE_URL"]
            if url is None:
                os.makedirs(app.instance_path, exist_ok=True)
                url = "sqlite:///" + os.path.join(app.instance_path, DEFAULT_SQLITE_FILE)
            engine = _engine_from_config(url, app.config["KITSESSION_ENGINE_OPTIONS"])
        user_model = self._user_model
        if user_model is None:
            user_model = _configured_user_model(app)
        return SQLAlchemyStore(
            engine,
            user_model=user_model,
            user_fields=app.config["KITSESSION_USER_FIELDS"],
            user_id_column=app.config["KITSESSION_USER_ID_COLUMN"],
        )

    def _make_db_store(self, app: Flask) -> SQLAlchemyStore:
        db = self._db
        user_model = self._user_model
        if user_model is None:
            user_model = _configured_user_model(app)
        if user_model is None:
            raise ValueError(
                "With db=, name the app's user model: KitSession(app, db=db, user_model=User)"
                " or app.config['KITSESSION_USER_MODEL']."
            )
        try:
            with app.app_context():
                engine = db.engine
        except (RuntimeError, KeyError) as e:
            raise RuntimeError(
                "Flask-SQLAlchemy is not initialized on this app: call db.init_app(app)"
                " (or SQLAlchemy(app)) before kitsession.init_app(app)."
            ) from e
        return SQLAlchemyStore(
            engine,
            user_model=user_model,
            user_fields=app.config["KITSESSION_USER_FIELDS"],
            user_id_column=app.config["KITSESSION_USER_ID_COLUMN"],
            orm_session=lambda: db.session,
            metadata=db.metadata,
        )

    @property
    def store(self) -> SessionStore:
        """The store of the current app."""
        return get_state().store

    @property
    def metadata(self) -> sa.MetaData:
        """The metadata holding the current app's session table, for Alembic's
        autogenerate (``target_metadata = [db.metadata, kitsession.metadata]``).
        """
        store = get_state().store
        if not isinstance(store, SQLAlchemyStore):
            raise RuntimeError(f"The app's {type(store).__name__} has no SQL tables.")
        return store.metadata

    def init_login_manager(self, login_manager: t.Any) -> None:
        """Make Flask-Login's ``current_user`` the user loaded with the session.

        An authenticated request then costs one SQL statement in all, not
        Flask-Login's usual second query. Users that are not the session's
        own (a remember cookie) are loaded by the store. Call it after
        :meth:`init_app`, in a request or app context or with the app as
        ``login_manager``'s app::

            login_manager = LoginManager(app)
            kitsession.init_login_manager(login_manager)

        With Flask-Security, call it after ``Security(app, ...)`` with
        ``security.login_manager``: what its own loader does besides loading
        the user is kept (see :mod:`flask_kitsession.loaders`).

        :param login_manager: A :class:`flask_login.LoginManager`.
        """
        login_manager.user_loader(user_loader_for(login_manager))


def _configured_user_model(app: Flask) -> t.Any:
    """``KITSESSION_USER_MODEL``, imported if it is an import string."""
    model = app.config["KITSESSION_USER_MODEL"]
    if isinstance(model, str):
        from .stores.sql import _import_string

        try:
            return _import_string(model)
        except (ImportError, AttributeError, ValueError) as e:
            raise ValueError(
                f"KITSESSION_USER_MODEL is {model!r}, which does not import: {e}."
                " Name the model as 'package.module:User'."
            ) from e
    return model


def _engine_from_config(url: str | sa.URL, options: t.Mapping[str, t.Any]) -> Engine:
    """The engine of ``KITSESSION_DATABASE_URL`` with ``KITSESSION_ENGINE_OPTIONS``.

    :raises TypeError: or :exc:`ValueError` naming the key, when
        :func:`sqlalchemy.create_engine` refuses an option (a misspelt name, a
        string where it wants a number or a class).
    """
    try:
        return create_store_engine(url, **options)
    except sa.exc.NoSuchModuleError:
        raise  # the URL's dialect, which SQLAlchemy names
    except (TypeError, ValueError, KeyError, AttributeError, sa.exc.ArgumentError) as e:
        if not options:
            raise
        kind = ValueError if isinstance(e, ValueError) else TypeError
        raise kind(
            f"KITSESSION_ENGINE_OPTIONS {dict(options)!r} were refused by"
            f" sqlalchemy.create_engine(): {type(e).__name__}: {e}"
        ) from e


def _fail_if_unavailable() -> None:
    """Answer 503 (or the app's handler for it) when the session could not be
    loaded, rather than run the view without the visitor's session.
    """
    error = request.environ.get(STORE_ERROR_ENVIRON_KEY)
    if error is not None:
        raise error
