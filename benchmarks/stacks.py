"""The stacks measured, each a Flask app with the same endpoints.

=================  ==========================================================
``/anon``          a page view that asks whether the visitor is signed in
``/read``          an authenticated read: the user id from the session and
                   the user's row
``/write``         an authenticated write: a counter in the session
``/login``         log in the user named in the form (every stack first reads
                   the user row, as a password check would)
``/logout``        log out
``/sign-out-others``  sign out the user's other sessions (kitsession only:
                   the others cannot)
=================  ==========================================================
"""

from __future__ import annotations

import collections
import hashlib
import os
import secrets
import tempfile
import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timezone
from urllib.parse import quote

import sqlalchemy as sa
from flask import Flask
from flask import make_response
from flask import request
from flask import Response
from flask import session
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_kitsession import current_session
from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session
from flask_kitsession.migrate import alembic_config
from flask_kitsession.models import user_table
from flask_kitsession.stores.sql import create_store_engine

SECRET_KEY = "benchmark secret key: " + "k" * 32
USERS = 100
#: The user every authenticated scenario is signed in as.
USER_ID = 1

POSTGRESQL_URL = os.environ.get(
    "KITSESSION_BENCH_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class Database:
    """A database of its own for one benchmark run, with kitsession's tables
    and :data:`USERS` users.
    """

    kind: str
    url: str
    cleanup: t.Callable[[], None] = field(default=lambda: None)
    #: Passed to :func:`create_store_engine` for every engine.
    engine_options: dict[str, t.Any] = field(default_factory=dict)

    def engine(self, **options: t.Any) -> Engine:
        return create_store_engine(self.url, **{**self.engine_options, **options})


def prepare_database(kind: str) -> Database:
    """Create a fresh SQLite file or PostgreSQL schema with the tables and users."""

    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="kitsession-bench-")
        path = os.path.join(folder, "bench.sqlite3")
        database = Database(kind, f"sqlite:///{path}", cleanup=lambda: _remove_tree(folder))
    elif kind == "postgresql":
        schema = f"kitsession_bench_{os.getpid()}_{secrets.token_hex(3)}"
        admin = sa.create_engine(POSTGRESQL_URL, poolclass=sa.pool.NullPool)
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

        def drop() -> None:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            admin.dispose()

        options = quote(f"-csearch_path={schema}")
        database = Database(kind, f"{POSTGRESQL_URL}?options={options}", cleanup=drop)
    else:
        raise ValueError(f"Unknown database {kind!r}: sqlite or postgresql.")
    populate(database)
    return database


def populate(database: Database) -> None:
    """Create kitsession's tables and :data:`USERS` users in an empty database."""
    from alembic import command

    engine = database.engine()
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection=connection), "head")
            now = datetime.now(timezone.utc)
            connection.execute(
                user_table.insert(),
                [{"email": f"user{n}@example.com", "created_at": now} for n in range(1, USERS + 1)],
            )
    finally:
        engine.dispose()


def _remove_tree(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Stack:
    """One stack under test."""

    name: str
    app: Flask
    #: Engines whose statements are counted.
    engines: list[Engine]
    #: Scenarios the stack can do at all.
    scenarios: frozenset[str]
    close: t.Callable[[], None] = field(default=lambda: None)
    #: A Redis client whose commands are counted as round trips too.
    redis: t.Any = None


ALL_SCENARIOS = frozenset({"anon", "read", "write", "login", "logout", "sign-out-others"})
WITHOUT_REVOCATION = ALL_SCENARIOS - {"sign-out-others"}

_user_row = sa.select(user_table.c.id, user_table.c.email).where(
    user_table.c.id == sa.bindparam("id")
)


def floor(database: Database) -> Stack:
    """A bare Flask view running one Core SELECT of a user row on an
    autocommit connection: what any server-side session must cost at least.
    """
    engine = database.engine(isolation_level="AUTOCOMMIT")
    app = Flask("floor")

    @app.get("/anon")
    def anon() -> str:
        return "hello guest"

    @app.get("/read")
    def read() -> str:
        with engine.connect() as connection:
            row = connection.execute(_user_row, {"id": USER_ID}).one()
        return str(row.email)

    @app.post("/login")
    def login() -> Response:
        # Any app sets a cookie at login: the floor's requests carry one too,
        # as a browser's would, though the floor never reads it.
        response = make_response("in")
        response.set_cookie("floor", "f" * 87, httponly=True)
        return response

    return Stack(
        f"floor ({database.kind})", app, [engine], frozenset({"anon", "read"}), engine.dispose
    )


#: The raw floor's statement, in each driver's parameter style.
_RAW_USER_ROW = {
    "sqlite": 'SELECT id, email FROM "user" WHERE id = ?',
    "postgresql": 'SELECT id, email FROM "user" WHERE id = %s',
}


def raw_floor(database: Database) -> Stack:
    """A bare Flask view running one raw DBAPI statement on a pooled
    connection, no session at all: the true minimum any server-side session
    pays for an authenticated read.
    """
    # Autocommit and no reset on return: the statement is the only round
    # trip (psycopg sends no BEGIN before it, the pool no ROLLBACK after).
    engine = database.engine(isolation_level="AUTOCOMMIT", pool_reset_on_return=None)
    sql = _RAW_USER_ROW[database.kind]
    app = Flask("raw-floor")

    @app.get("/anon")
    def anon() -> str:
        return "hello guest"

    @app.get("/read")
    def read() -> str:
        connection = engine.raw_connection()
        try:
            cursor = connection.cursor()
            cursor.execute(sql, (USER_ID,))
            row = cursor.fetchone()
            cursor.close()
        finally:
            connection.close()
        assert row is not None
        return str(row[1])

    @app.post("/login")
    def login() -> Response:
        response = make_response("in")
        response.set_cookie("floor", "f" * 87, httponly=True)
        return response

    return Stack(
        f"raw floor ({database.kind})", app, [engine], frozenset({"anon", "read"}), engine.dispose
    )


def _kitsession_views(app: Flask, find_user: t.Callable[[int], t.Any]) -> None:
    @app.get("/anon")
    def anon() -> str:
        return "hello member" if session.get("user_id") else "hello guest"

    @app.get("/read")
    def read() -> str:
        assert session["user_id"] == USER_ID
        return str(current_session.user.email)

    @app.post("/write")
    def write() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(current_session.user.email)

    @app.post("/login")
    @with_new_session
    def login() -> str:
        user = find_user(int(request.form["user_id"]))
        session["user_id"] = user.id
        return "in"

    @app.post("/logout")
    @with_delete_session
    def logout() -> str:
        return "out"

    @app.post("/sign-out-others")
    def sign_out_others() -> str:
        count = remove_all_sessions_for_user(current_session.user_id, current_session)
        return str(count)


def _user_finder(engine: Engine) -> t.Callable[[int], t.Any]:
    """The login views' password check, reduced to reading the user row."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")

    def find_user(user_id: int) -> t.Any:
        with autocommit.connect() as connection:
            return connection.execute(_user_row, {"id": user_id}).one()

    return find_user


def kitsession_sql(database: Database) -> Stack:
    """kitsession with its SQLAlchemyStore."""
    engine = database.engine()
    app = Flask("kitsession")
    app.config.update(SECRET_KEY=SECRET_KEY, KITSESSION_USER_FIELDS=["id", "email"])
    KitSession(app, engine=engine)
    _kitsession_views(app, _user_finder(engine))
    return Stack(f"kitsession ({database.kind})", app, [engine], ALL_SCENARIOS, engine.dispose)


def kitsession_sql_watched(database: Database) -> Stack:
    """kitsession with its SQLAlchemyStore while a tool watches the engine: a
    ``before_cursor_execute`` and an ``after_cursor_execute`` listener that do
    nothing, so that the row shows what kitsession itself pays for being
    watched (an OpenTelemetry or Sentry listener adds its own cost on top).
    """
    stack = kitsession_sql(database)
    [engine] = stack.engines

    def listener(*args: t.Any) -> None:
        pass

    sa.event.listen(engine, "before_cursor_execute", listener)
    sa.event.listen(engine, "after_cursor_execute", listener)
    stack.name = f"kitsession + engine listener ({database.kind})"
    # It shares the database with the plain stack: signing out the other
    # devices there would find this stack's sessions of the same user too.
    stack.scenarios = WITHOUT_REVOCATION
    return stack


REDIS_URL = os.environ.get("KITSESSION_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
#: "1": REDIS_URL names a node of a Redis Cluster.
REDIS_CLUSTER = os.environ.get("KITSESSION_BENCH_REDIS_CLUSTER") == "1"


def kitsession_redis(database: Database) -> Stack:
    """kitsession with its RedisStore: sessions in Redis, users read from SQL."""
    from flask_kitsession import RedisStore
    from flask_kitsession import SQLAlchemyStore

    engine = database.engine()
    users = SQLAlchemyStore(engine, user_fields=["id", "email"])
    # Named after the database, so that every worker of a server shares it.
    prefix = f"kitsession_bench_{hashlib.sha256(database.url.encode()).hexdigest()[:12]}:"
    store = RedisStore.from_url(
        REDIS_URL,
        cluster=REDIS_CLUSTER,
        prefix=prefix,
        user_loader=users.load_user,
        user_id_type=int,
    )
    app = Flask("kitsession-redis")
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=store)
    _kitsession_views(app, _user_finder(engine))

    def close() -> None:
        for key in store.client.scan_iter(match=prefix + "*", count=1000):
            store.client.delete(key)
        store.client.close()
        engine.dispose()

    return Stack(
        f"kitsession + Redis ({database.kind})", app, [engine], ALL_SCENARIOS, close, store.client
    )


def kitsession_memory(database: Database | None = None) -> Stack:
    """kitsession with its MemoryStore (users in a dict): no database at all."""
    User = collections.namedtuple("User", ["id", "email"])
    users = {n: User(n, f"user{n}@example.com") for n in range(1, USERS + 1)}
    app = Flask("kitsession-memory")
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=MemoryStore(user_loader=users.get, user_id_type=int))
    _kitsession_views(app, users.__getitem__)
    return Stack("kitsession (memory)", app, [], ALL_SCENARIOS)


def _flask_login_app(name: str, database: Database) -> tuple[Flask, t.Any]:
    """A Flask-SQLAlchemy + Flask-Login app on the benchmark's user table."""
    from flask_login import current_user
    from flask_login import login_required
    from flask_login import login_user
    from flask_login import LoginManager
    from flask_login import logout_user
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(name)
    app.config.update(SECRET_KEY=SECRET_KEY, SQLALCHEMY_DATABASE_URI=database.url)
    db = SQLAlchemy(app)

    class User(UserMixin, db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "user"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str]

    login_manager = LoginManager(app)

    @login_manager.user_loader
    def load_user(user_id: str) -> t.Any:
        return db.session.get(User, int(user_id))

    @app.get("/anon")
    def anon() -> str:
        return "hello member" if current_user.is_authenticated else "hello guest"

    @app.get("/read")
    @login_required
    def read() -> str:
        return str(current_user.email)

    @app.post("/write")
    @login_required
    def write() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(current_user.email)

    @app.post("/login")
    def login() -> str:
        login_user(db.session.get(User, int(request.form["user_id"])))
        return "in"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "out"

    return app, db


def flask_session_login(database: Database) -> Stack:
    """Flask-Session 0.8's SQLAlchemy backend with Flask-Login: the usual choice today."""
    from flask_session import Session

    app, db = _flask_login_app("flask-session", database)
    app.config.update(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=db)
    Session(app)
    with app.app_context():
        engine = db.engine
    return Stack(
        f"Flask-Session + Flask-Login ({database.kind})",
        app,
        [engine],
        WITHOUT_REVOCATION,
        engine.dispose,
    )


def cookie_login(database: Database) -> Stack:
    """Flask's own signed-cookie session with Flask-Login."""
    app, db = _flask_login_app("cookie", database)
    with app.app_context():
        engine = db.engine
    return Stack(
        f"cookie session + Flask-Login ({database.kind})",
        app,
        [engine],
        WITHOUT_REVOCATION,
        engine.dispose,
    )


#: The stacks of one database, in the order of the table.
SQL_STACKS: list[t.Callable[[Database], Stack]] = [
    raw_floor,
    floor,
    kitsession_sql,
    kitsession_sql_watched,
    kitsession_redis,
    flask_session_login,
    cookie_login,
]
