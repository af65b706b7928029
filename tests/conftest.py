"""Fixtures: every behaviour runs on every backend.

Backends: ``memory`` (MemoryStore), ``sqlite`` (a file), ``postgresql``,
``mariadb`` and ``redis`` (real servers; URLs from
``KITSESSION_TEST_POSTGRESQL_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``,
``KITSESSION_TEST_MARIADB_URL``, default
``mysql+pymysql://root@127.0.0.1:3306/test``, and ``KITSESSION_TEST_REDIS_URL``,
default ``redis://127.0.0.1:6379/0``). Each test run works in its own
PostgreSQL schemas, MariaDB databases and Redis key prefix, dropped at the
end, so runs never collide. Without a server its tests are skipped, except under ``CI=true``
where that is a failure.
"""

from __future__ import annotations

import logging
import secrets
import typing as t
import urllib.parse
from pathlib import Path

import pytest
import sqlalchemy as sa
from example_app import create_app
from flask import Flask
from flask.testing import FlaskClient

from flask_kitsession import KitSession
from flask_kitsession import RedisStore
from flask_kitsession import SQLAlchemyStore
from flask_kitsession.models import user_table
from flask_kitsession.models import utc_now
from flask_kitsession.stores.sql import create_store_engine

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import LoginApp
from .support.apps import make_login_app
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.backends import MemoryBackend
from .support.backends import RedisBackend
from .support.backends import SQLBackend
from .support.backends import StoreSpec
from .support.faults import TCPProxy
from .support.processes import CHROMIUM
from .support.processes import CHROMIUM_ARGS
from .support.processes import chromium_problem
from .support.processes import GunicornServer
from .support.processes import LocalServer
from .support.processes import Soak
from .support.processes import soak_seconds
from .support.servers import IN_CI
from .support.servers import make_engine
from .support.servers import MARIADB_URL
from .support.servers import MariaDBDatabaseFactory
from .support.servers import POSTGRESQL_URL
from .support.servers import redis_problem
from .support.servers import REDIS_URL
from .support.servers import RedisKeyspace
from .support.servers import SchemaFactory
from .support.servers import server_problem
from .support.servers import upgrade

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def postgresql_server() -> str:
    """The PostgreSQL URL, once the server answers (skip or fail otherwise)."""
    return require_server("PostgreSQL", POSTGRESQL_URL)


def require_server(
    name: str, url: str, find_problem: t.Callable[[str], str | None] = server_problem
) -> str:
    problem = find_problem(url)
    if problem is not None:
        message = f"{name} at {url} is unreachable: {problem}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: {name} is required)")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def mariadb_server() -> str:
    """The MariaDB URL, once the server answers (skip or fail otherwise)."""
    return require_server("MariaDB", MARIADB_URL)


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The Redis URL, once the server answers (skip or fail otherwise)."""
    return require_server("Redis", REDIS_URL, redis_problem)


@pytest.fixture(scope="session")
def redis_keyspace(redis_server: str) -> t.Iterator[RedisKeyspace]:
    keyspace = RedisKeyspace(redis_server)
    yield keyspace
    keyspace.drop_all()


@pytest.fixture(scope="session")
def mariadb_databases(mariadb_server: str) -> t.Iterator[MariaDBDatabaseFactory]:
    factory = MariaDBDatabaseFactory(mariadb_server)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def mariadb_engine(mariadb_databases: MariaDBDatabaseFactory) -> t.Iterator[sa.Engine]:
    engine = mariadb_databases.engine()
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def pg_schemas(postgresql_server: str) -> t.Iterator[SchemaFactory]:
    factory = SchemaFactory(postgresql_server)
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def sqlite_engine(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[sa.Engine]:
    path = tmp_path_factory.mktemp("sqlite") / "kitsession.sqlite3"
    engine = create_store_engine(f"sqlite:///{path}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgresql_engine(pg_schemas: SchemaFactory) -> t.Iterator[sa.Engine]:
    engine = pg_schemas.engine()
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql", "mariadb", "redis"])
def backend(request: pytest.FixtureRequest) -> t.Iterator[Backend]:
    """The store under test, on each backend."""
    if request.param == "memory":
        yield MemoryBackend()
        return
    if request.param == "redis":
        redis_backend = RedisBackend(request.getfixturevalue("redis_keyspace"))
        yield redis_backend
        redis_backend.reset()
        return
    engine: sa.Engine = request.getfixturevalue(f"{request.param}_engine")
    sql = SQLBackend(request.param, engine)
    sql.reset()
    yield sql
    sql.reset()


@pytest.fixture
def redis_backend(redis_keyspace: RedisKeyspace) -> t.Iterator[RedisBackend]:
    """The Redis store only, for what is about Redis itself."""
    backend = RedisBackend(redis_keyspace)
    yield backend
    backend.reset()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def sql_backend(request: pytest.FixtureRequest) -> t.Iterator[SQLBackend]:
    """The SQL stores only, for what is about SQL itself."""
    engine: sa.Engine = request.getfixturevalue(f"{request.param}_engine")
    sql = SQLBackend(request.param, engine)
    sql.reset()
    yield sql
    sql.reset()


@pytest.fixture(params=["sqlite", "postgresql", "redis"])
def shared_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> t.Iterator[tuple[StoreSpec, Backend]]:
    """A new store that other processes can open too (the memory store cannot,
    and MariaDB adds nothing here that PostgreSQL does not test).
    """
    if request.param == "redis":
        redis_backend = RedisBackend(request.getfixturevalue("redis_keyspace"))
        spec = StoreSpec("redis", redis_backend.keyspace.url, redis_backend.store.prefix)
        yield spec, redis_backend
        redis_backend.reset()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
        engine = create_store_engine(url)
    else:
        schemas: SchemaFactory = request.getfixturevalue("pg_schemas")
        engine = schemas.engine()
        url = schemas.url_for_last()
    upgrade(engine)
    yield StoreSpec(request.param, url), SQLBackend(request.param, engine)
    engine.dispose()


@pytest.fixture(params=["postgresql", "mariadb", "redis"])
def proxied_backend(request: pytest.FixtureRequest) -> t.Iterator[tuple[Backend, TCPProxy]]:
    """A backend whose store reaches its server through a :class:`TCPProxy`
    that the test breaks at will (an outage, a restart), for this store's
    connections only; the server itself is shared and never touched. The
    backend's own checks (rows, users) go to the server directly.
    """
    kind = request.param
    url = request.getfixturevalue(f"{kind}_server")
    if kind == "redis":
        parts = urllib.parse.urlsplit(url)
        target = (parts.hostname or "127.0.0.1", parts.port or 6379)
    else:
        server = sa.make_url(url)
        target = (server.host or "127.0.0.1", server.port or {"postgresql": 5432}.get(kind, 3306))
    with TCPProxy(target) as proxy:
        if kind == "redis":
            redis_backend = RedisBackend(request.getfixturevalue("redis_keyspace"))
            proxied_url = urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{proxy.port}"))
            redis_backend.store = RedisStore.from_url(
                proxied_url,
                prefix=redis_backend.store.prefix,
                user_loader=redis_backend.users.get,
                user_id_type=int,
            )
            yield redis_backend, proxy
            redis_backend.store.close()
            redis_backend.reset()
            return
        if kind == "postgresql":
            schemas: SchemaFactory = request.getfixturevalue("pg_schemas")
            proxied = schemas.engine(
                url=server.set(host="127.0.0.1", port=proxy.port),
                # So a test can end this engine's backends, and only them.
                connect_args_extra={"application_name": f"kitsession-{secrets.token_hex(6)}"},
            )
            upgrade(proxied)
            direct = create_store_engine(schemas.url_for_last())
        else:
            databases: MariaDBDatabaseFactory = request.getfixturevalue("mariadb_databases")
            direct = databases.engine()
            upgrade(direct)
            proxied = create_store_engine(
                sa.make_url(databases.url_for_last()).set(host="127.0.0.1", port=proxy.port)
            )
        sql = SQLBackend(kind, direct)
        sql.store = SQLAlchemyStore(proxied)
        yield sql, proxy
        proxied.dispose()
        direct.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fast_read_backend(request: pytest.FixtureRequest) -> t.Iterator[SQLBackend]:
    """The SQL stores whose reads skip transactions entirely (pysqlite, psycopg).

    MySQL drivers read on SQLAlchemy's ordinary path, which ends each read with
    a ROLLBACK when the connection returns to the pool.
    """
    engine: sa.Engine = request.getfixturevalue(f"{request.param}_engine")
    sql = SQLBackend(request.param, engine)
    sql.reset()
    yield sql
    sql.reset()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[sa.Engine]:
    """A new database with no tables at all, on each SQL backend."""
    engine = make_engine(request.param, request, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture
def app(request: pytest.FixtureRequest, backend: Backend, clock: Clock) -> Flask:
    """An app on the backend with the views of ``add_views``; a test marked
    ``@pytest.mark.app_config(KEY=value)`` gets that config too.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
    marker = request.node.get_closest_marker("app_config")
    if marker is not None:
        app.config.update(marker.kwargs)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# -- the example app ------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def example(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[Flask]:
    """The example app on a new database, SQLite or PostgreSQL."""
    config: dict[str, t.Any] = {"TESTING": True, "SECRET_KEY": "example test"}
    if request.param == "postgresql":
        schemas: SchemaFactory = request.getfixturevalue("pg_schemas")
        schemas.engine().dispose()
        config["KITSESSION_DATABASE_URL"] = schemas.url_for_last()
    else:
        config["KITSESSION_DATABASE_URL"] = f"sqlite:///{tmp_path / 'example.sqlite3'}"
    app = create_app(config)
    yield app
    app.extensions["kitsession"].store.close()


@pytest.fixture
def example_server(tmp_path: Path) -> t.Iterator[LocalServer]:
    """The example app on its embedded default (a SQLite file), served on
    127.0.0.1 for a browser. No response may be a 5xx.
    """
    app = create_app(
        {
            "SECRET_KEY": SECRET_KEY,
            "KITSESSION_DATABASE_URL": f"sqlite:///{tmp_path / 'example.sqlite3'}",
        }
    )
    with LocalServer(app) as server:
        yield server
    app.extensions["kitsession"].store.close()
    assert server.errors() == []


@pytest.fixture(scope="module")
def browser() -> t.Iterator[Browser]:
    """Debian's Chromium, headless, driven by Playwright. Missing: skipped,
    or a failure under ``CI=true``. Never downloads a browser.
    """
    problem = chromium_problem()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"{problem} (CI=true: the browser tests are required)")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def example_workers(pg_schemas: SchemaFactory, tmp_path: Path) -> t.Iterator[GunicornServer]:
    """The example app under gunicorn, 4 worker processes, on a PostgreSQL
    schema of this test run; every response says which worker made it.
    """
    pg_schemas.engine().dispose()
    env = {
        "KITSESSION_DATABASE_URL": pg_schemas.url_for_last(),
        # One key for every worker, as in production.
        "FLASK_SECRET_KEY": SECRET_KEY,
        "FLASK_EXAMPLE_WORKER_HEADER": "true",
    }
    with GunicornServer(tmp_path, env, workers=4) as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new, empty database on each SQL backend, for apps that make
    their own engine (Flask-SQLAlchemy).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'app.sqlite3'}"
    factory = request.getfixturevalue(
        "pg_schemas" if request.param == "postgresql" else "mariadb_databases"
    )
    factory.engine().dispose()
    return str(factory.url_for_last())


@pytest.fixture
def login_app(empty_database_url: str, clock: Clock) -> t.Iterator[LoginApp]:
    """A Flask-SQLAlchemy + Flask-Login app with its own ``users`` table
    (string keys), and kitsession installed with ``db=``.
    """
    login_app = make_login_app(empty_database_url, clock=clock)
    with login_app.app.app_context():
        login_app.db.create_all()
    yield login_app
    with login_app.app.app_context():
        login_app.db.drop_all()
        login_app.db.engine.dispose()


@pytest.fixture
def keep_loggers() -> t.Iterator[None]:
    """Undo what a logging.config.fileConfig() does to existing loggers (Flask-
    Migrate's env.py disables them all), so later tests still see their logs.
    """
    loggers = [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    disabled = {logger: logger.disabled for logger in loggers}
    yield
    for logger, was_disabled in disabled.items():
        logger.disabled = was_disabled


@pytest.fixture
def soak(pg_schemas: SchemaFactory, tmp_path: Path) -> t.Iterator[Soak]:
    """The soak app (tests/soak_app.py) under gunicorn, 4 worker processes,
    on a PostgreSQL schema of this test run with its tables and 8 users;
    its connections carry an application_name of their own.
    """
    seconds = soak_seconds()
    engine = pg_schemas.engine()
    upgrade(engine)
    with engine.begin() as connection:
        user_ids = [
            connection.execute(
                user_table.insert().values(email=f"soak{n}@example.com", created_at=utc_now())
            ).inserted_primary_key[0]  # type: ignore[index]
            for n in range(8)
        ]
    name = f"kitsession-soak-{secrets.token_hex(4)}"
    env = {
        "KITSESSION_DATABASE_URL": f"{pg_schemas.url_for_last()}&application_name={name}",
        "FLASK_SECRET_KEY": SECRET_KEY,
    }
    with GunicornServer(
        tmp_path, env, workers=4, max_seconds=int(seconds) + 90, app="tests.soak_app:create_app()"
    ) as server:
        yield Soak(server, engine, name, user_ids)
    engine.dispose()
