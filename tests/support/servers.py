"""The shared database and Redis servers: where they are, whether they
answer, and a private schema, database or key prefix on each for every test.
"""

from __future__ import annotations

import os
import secrets
import typing as t
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from alembic import command

from flask_kitsession.migrate import alembic_config
from flask_kitsession.migrate import MigrationTarget
from flask_kitsession.stores.redis import _glob_escape as glob_escape
from flask_kitsession.stores.sql import create_store_engine

POSTGRESQL_URL = os.environ.get(
    "KITSESSION_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "KITSESSION_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
REDIS_URL = os.environ.get("KITSESSION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def server_problem(url: str) -> str | None:
    """Why the database server at ``url`` cannot be used, or ``None`` when it answers."""
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    except ImportError as e:
        return f"its driver is not installed ({e})"
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as e:
        return str(e.orig)
    finally:
        engine.dispose()
    return None


def redis_problem(url: str) -> str | None:
    """Why the Redis server at ``url`` cannot be used, or ``None`` when it answers."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        return str(e)
    finally:
        client.close()
    return None


def _from_dead_run(name: str) -> bool:
    """Whether a ``kitsession_test_<pid>_...`` name belongs to a test run of this
    machine that has ended without cleaning up (killed by a timeout, say).
    """
    parts = name.split("_")
    if len(parts) < 4 or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class SchemaFactory:
    """Makes PostgreSQL schemas private to this test run and drops them after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.run_id = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.schemas: list[str] = []
        self.admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with self.admin.begin() as connection:
            names = connection.execute(
                sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kitsession_test_%'")
            ).scalars()
            for name in [n for n in names if _from_dead_run(n)]:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))

    def engine(
        self,
        *,
        connect_args_extra: dict[str, t.Any] | None = None,
        url: str | sa.URL | None = None,
        **options: t.Any,
    ) -> sa.Engine:
        """An engine on a new schema; ``url`` reaches the server another way
        (through a proxy, say).
        """
        name = f"kitsession_test_{self.run_id}_{len(self.schemas)}"
        with self.admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        self.schemas.append(name)
        # prepare_threshold=None: psycopg sends every statement's text, so
        # QueryRecorder can name what each request ran.
        return create_store_engine(
            self.url if url is None else url,
            connect_args={
                "options": f"-csearch_path={name}",
                "prepare_threshold": None,
                **(connect_args_extra or {}),
            },
            **options,
        )

    def url_for_last(self) -> str:
        """The URL (with its search_path) of the newest schema, for subprocesses."""
        from urllib.parse import quote

        return f"{self.url}?options={quote('-csearch_path=' + self.schemas[-1])}"

    def drop_all(self) -> None:
        with self.admin.begin() as connection:
            for name in self.schemas:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self.admin.dispose()


class MariaDBDatabaseFactory:
    """Makes MariaDB databases private to this test run and drops them after."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        self.run_id = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.databases: list[str] = []
        self.admin = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        with self.admin.begin() as connection:
            names = connection.execute(sa.text("SHOW DATABASES LIKE 'kitsession_test_%'")).scalars()
            for name in [n for n in names if _from_dead_run(n)]:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))

    def engine(self, **options: t.Any) -> sa.Engine:
        name = f"kitsession_test_{self.run_id}_{len(self.databases)}"
        with self.admin.begin() as connection:
            connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        self.databases.append(name)
        return create_store_engine(self.url.set(database=name), **options)

    def url_for_last(self) -> str:
        return self.url.set(database=self.databases[-1]).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.begin() as connection:
            for name in self.databases:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        self.admin.dispose()


class RedisKeyspace:
    """Gives each test a key prefix of its own under this run's prefix, and
    deletes the keys after. Never FLUSHDB: the server is shared.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.run_prefix = f"kitsession_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.count = 0
        self.admin = redis.Redis.from_url(url, decode_responses=True)
        dead = [
            key
            for key in self.admin.scan_iter(match="kitsession_test_*", count=1000)
            if _from_dead_run(key.split(":", 1)[0])
        ]
        self._unlink(dead)

    def new_prefix(self) -> str:
        self.count += 1
        return f"{self.run_prefix}:{self.count}:"

    def keys(self, prefix: str) -> list[str]:
        pattern = glob_escape(prefix) + "*"
        return list(self.admin.scan_iter(match=pattern, count=1000))

    def delete(self, prefix: str) -> None:
        self._unlink(self.keys(prefix))

    def _unlink(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 500):
            self.admin.unlink(*keys[start : start + 500])

    def drop_all(self) -> None:
        self.delete(self.run_prefix + ":")
        self.admin.close()


def make_engine(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    """A new, empty database of ``kind`` (``sqlite`` or ``postgresql``)."""
    if kind == "sqlite":
        return create_store_engine(f"sqlite:///{tmp_path / 'kitsession.sqlite3'}")
    factory: SchemaFactory | MariaDBDatabaseFactory = request.getfixturevalue(
        "pg_schemas" if kind == "postgresql" else "mariadb_databases"
    )
    return factory.engine()


def upgrade(engine: sa.Engine, target: MigrationTarget | None = None) -> None:
    """Create the tables with the bundled migrations."""
    with engine.begin() as connection:
        config = alembic_config(connection=connection, target=target)
        command.upgrade(config, "head")
