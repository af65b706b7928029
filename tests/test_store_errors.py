"""Errors that say what to do: each database problem names its own fix, and
no message carries session data.
"""

from __future__ import annotations

import logging
import re
import sys
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from flask_kitsession import KitSession
from flask_kitsession.stores.sql import create_store_engine
from flask_kitsession.stores.sqlerrors import explain

from .support.apps import add_views
from .support.apps import SECRET_KEY
from .support.pooler import PgBouncer
from .support.pooler import require_pgbouncer
from .support.servers import MARIADB_URL
from .support.servers import POSTGRESQL_URL

UPGRADE = "flask kitsession db upgrade"


def failing_save(url: str | sa.URL, caplog: pytest.LogCaptureFixture) -> str:
    """Save a session with the store at ``url``; return the logged error."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, KITSESSION_DATABASE_URL=url)
    KitSession(app)
    add_views(app)
    try:
        with caplog.at_level(logging.ERROR, logger="flask_kitsession"):
            response = app.test_client().post("/set", data={"a": "1"})
    finally:
        app.extensions["kitsession"].store.close()
    assert response.status_code == 503
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    return record.getMessage()


def missing_database_url(kind: str, tmp_path: Path) -> str | sa.URL:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'no such folder' / 'sessions.sqlite3'}"
    base = POSTGRESQL_URL if kind == "postgresql" else MARIADB_URL
    return sa.make_url(base).set(database="kitsession_no_such_database")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_a_database_that_does_not_exist_says_so(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    if kind != "sqlite":
        request.getfixturevalue(f"{kind}_server")
    message = failing_save(missing_database_url(kind, tmp_path), caplog)
    assert UPGRADE not in message
    expected = {
        "sqlite": "Create the folder of the SQLite file",
        "postgresql": "Create the database (`createdb NAME`)",
        "mariadb": "Create the database (CREATE DATABASE",
    }[kind]
    assert expected in message


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_a_refused_login_says_so(
    kind: str, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(f"{kind}_server")
    url = sa.make_url(server).set(username="kitsession_no_such_user", password="wrong")
    message = failing_save(url, caplog)
    assert UPGRADE not in message
    assert "Check the user name and password" in message


def test_an_unreachable_server_says_so(caplog: pytest.LogCaptureFixture) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    message = failing_save("postgresql+psycopg://postgres@127.0.0.1:9/test", caplog)
    assert UPGRADE not in message
    assert "Check that the database server is running" in message


def test_pooler_errors_name_the_pooler_setting(
    postgresql_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    require_pgbouncer()
    with PgBouncer(postgresql_server) as pooler:
        # The search_path option every test schema uses: PgBouncer refuses it.
        with_options = pooler.url.set(query={"options": "-csearch_path=x"})
        message = failing_save(with_options, caplog)
        assert UPGRADE not in message
        assert "ignore_startup_parameters" in message and "options" in message
        caplog.clear()
        message = failing_save(pooler.url.set(database="kitsession_unknown"), caplog)
        assert UPGRADE not in message
        assert "[databases] section" in message


def test_missing_tables_still_say_how_to_create_them(
    empty_database: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, engine=empty_database)
    add_views(app)
    with caplog.at_level(logging.ERROR, logger="flask_kitsession"):
        assert app.test_client().post("/set", data={"a": "1"}).status_code == 503
    assert f"Create the tables with `{UPGRADE}`" in caplog.text


def test_a_postgres_url_names_the_one_to_write() -> None:
    with pytest.raises(ValueError, match=r"postgresql\+psycopg://"):
        create_store_engine("postgres://user:secret@db.example.com/app")
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, KITSESSION_DATABASE_URL="postgres://db/app")
    with pytest.raises(ValueError, match="postgres://"):
        KitSession(app)


@pytest.mark.parametrize(
    ("url", "module", "expected"),
    [
        (
            "postgresql+psycopg://postgres@127.0.0.1/test",
            "psycopg",
            "pip install 'flask-kitsession[postgresql]'",
        ),
        ("mysql+pymysql://root@127.0.0.1/test", "pymysql", "pip install 'flask-kitsession[mysql]'"),
        ("mariadb+pymysql://root@127.0.0.1/test", "pymysql", "flask-kitsession[mysql]"),
        # Drivers other than the extras' (SQLAlchemy 2.0's default for
        # postgresql://, MySQLdb for mysql://).
        (
            "postgresql+psycopg2://postgres@127.0.0.1/test",
            "psycopg2",
            "Write postgresql+psycopg://",
        ),
        ("mysql://root@127.0.0.1/test", "MySQLdb", "Write mysql+pymysql://"),
    ],
)
def test_a_missing_driver_names_the_extra(
    url: str, module: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Python does for a package that is not installed.
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ModuleNotFoundError, match=re.escape(expected)):
        create_store_engine(url)


MARKER = "MARKER-4c1d-never-logged"


@pytest.mark.parametrize(
    ("kind", "statement"),
    [
        ("postgresql", "SELECT CAST(:value AS jsonb)"),
        ("postgresql", "SELECT CAST(:value AS integer)"),
    ],
)
def test_database_errors_quoting_data_are_described_without_it(
    kind: str, statement: str, request: pytest.FixtureRequest
) -> None:
    """The database quotes refused values (PostgreSQL's DETAIL and CONTEXT
    lines, its "invalid input syntax ... "value"", MariaDB's "Duplicate entry
    'value'"): the message kitsession logs keeps none of it.
    """
    engine = sa.create_engine(request.getfixturevalue(f"{kind}_server"))
    value = '{"csrf": "' + MARKER + '\\u0000"}' if "json" in statement else MARKER
    try:
        with engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as info:
            connection.execute(sa.text(statement), {"value": value})
    finally:
        engine.dispose()
    assert MARKER in str(info.value)
    message = explain(info.value, "save the session")
    assert MARKER not in message
    assert message.startswith("Cannot save the session: the session database failed")


def test_duplicate_entries_are_described_without_the_value(
    mariadb_engine: sa.Engine,
) -> None:
    table = sa.Table(
        f"kitsession_dup_{id(mariadb_engine)}",
        sa.MetaData(),
        sa.Column("id", sa.String(64), primary_key=True),
    )
    table.create(mariadb_engine)
    try:
        with mariadb_engine.begin() as connection:
            connection.execute(table.insert(), {"id": MARKER})
        with mariadb_engine.begin() as connection, pytest.raises(sa.exc.DBAPIError) as info:
            connection.execute(table.insert(), {"id": MARKER})
    finally:
        table.drop(mariadb_engine)
    assert MARKER in str(info.value)
    assert MARKER not in explain(info.value, "store the session")


def test_init_app_without_a_secret_key_warns_once_naming_it() -> None:
    app = Flask(__name__)
    with pytest.warns(UserWarning, match="SECRET_KEY") as warned:
        KitSession(app, store=_memory_store())
    assert len(warned) == 1
    # Signing turned off: no key is needed, nothing to warn about.
    unsigned = Flask(__name__)
    unsigned.config["KITSESSION_SIGN_COOKIE"] = False
    KitSession(unsigned, store=_memory_store())


def _memory_store() -> t.Any:
    from flask_kitsession import MemoryStore

    return MemoryStore()
