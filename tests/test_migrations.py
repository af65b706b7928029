"""The bundled migrations: they build exactly the models, and undo cleanly."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_kitsession.migrate import alembic_config
from flask_kitsession.migrate import MigrationTarget
from flask_kitsession.migrate import schema_differences
from flask_kitsession.migrate import VERSION_TABLE
from flask_kitsession.stores.sql import create_store_engine

from .support.servers import SchemaFactory
from .support.servers import upgrade

ROOT = Path(__file__).resolve().parent.parent


class AppBase(DeclarativeBase):
    pass


class Account(AppBase):
    """An app's own user model: table ``users``, string keys."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255))
    password_hash: Mapped[str] = mapped_column(sa.String(255))


class Thing(AppBase):
    """A table of the app's that kitsession must leave alone."""

    __tablename__ = "thing"
    id: Mapped[int] = mapped_column(primary_key=True)


def downgrade(engine: sa.Engine, target: MigrationTarget | None = None) -> None:
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection=connection, target=target), "base")


def table_names(engine: sa.Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_upgrade_builds_exactly_the_models(empty_database: sa.Engine) -> None:
    upgrade(empty_database)
    assert table_names(empty_database) == {"user", "session", VERSION_TABLE}
    with empty_database.connect() as connection:
        assert schema_differences(connection) == []
    # Running it again changes nothing.
    upgrade(empty_database)
    foreign_keys = sa.inspect(empty_database).get_foreign_keys("session")
    assert [fk["referred_table"] for fk in foreign_keys] == ["user"]
    assert foreign_keys[0]["options"].get("ondelete") == "CASCADE"


def test_downgrade_removes_everything(empty_database: sa.Engine) -> None:
    upgrade(empty_database)
    downgrade(empty_database)
    assert table_names(empty_database) <= {VERSION_TABLE}
    upgrade(empty_database)
    with empty_database.connect() as connection:
        assert schema_differences(connection) == []


def test_the_apps_own_user_table(empty_database: sa.Engine) -> None:
    AppBase.metadata.create_all(empty_database)
    target = MigrationTarget.for_user_model(Account)
    upgrade(empty_database, target)
    assert table_names(empty_database) == {"users", "thing", "session", VERSION_TABLE}
    with empty_database.connect() as connection:
        assert schema_differences(connection, target) == []
    [foreign_key] = sa.inspect(empty_database).get_foreign_keys("session")
    assert foreign_key["referred_table"] == "users"
    columns = {c["name"]: c for c in sa.inspect(empty_database).get_columns("session")}
    assert isinstance(columns["user_id"]["type"], sa.String)
    downgrade(empty_database, target)
    assert table_names(empty_database) <= {"users", "thing", VERSION_TABLE}


def test_autogenerate_leaves_the_apps_tables_alone(empty_database: sa.Engine) -> None:
    AppBase.metadata.create_all(empty_database)
    upgrade(empty_database)
    with empty_database.connect() as connection:
        # "users" and "thing" are in the database but not in kitsession's
        # models: a naive autogenerate would propose dropping them.
        assert schema_differences(connection) == []


def test_version_table_is_kitsessions_own(empty_database: sa.Engine) -> None:
    with empty_database.begin() as connection:
        connection.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(sa.text("INSERT INTO alembic_version VALUES ('apps_own_head')"))
    upgrade(empty_database)
    with empty_database.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
            ("apps_own_head",)
        ]
        assert connection.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all() == [
            ("0002",)
        ]


def alembic_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_alembic_command_with_the_top_level_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    result = alembic_cli("-x", f"url={url}", "upgrade", "head")
    assert result.returncode == 0, result.stderr
    engine = sa.create_engine(url)
    assert table_names(engine) == {"user", "session", VERSION_TABLE}
    result = alembic_cli("current", env={"KITSESSION_DATABASE_URL": url})
    assert result.returncode == 0 and "0002 (head)" in result.stdout, result.stderr
    result = alembic_cli("-x", f"url={url}", "downgrade", "base")
    assert result.returncode == 0, result.stderr
    assert table_names(engine) == {VERSION_TABLE}
    engine.dispose()


def test_alembic_command_on_postgresql(pg_schemas: SchemaFactory) -> None:
    engine = pg_schemas.engine()
    result = alembic_cli(
        "upgrade", "head", env={"KITSESSION_DATABASE_URL": pg_schemas.url_for_last()}
    )
    assert result.returncode == 0, result.stderr
    with engine.connect() as connection:
        assert schema_differences(connection) == []
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mariadb"])
def test_concurrent_upgrades_wait_for_each_other(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Several workers starting at once all upgrade; one creates the tables."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'workers.sqlite3'}"
        engine = sa.create_engine(url)
    else:
        factory = request.getfixturevalue(
            "pg_schemas" if kind == "postgresql" else "mariadb_databases"
        )
        engine = factory.engine()
        url = factory.url_for_last()
    env = {**os.environ, "KITSESSION_DATABASE_URL": url}
    command_line = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    workers = [
        subprocess.Popen(
            [*command_line, "upgrade", "head"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    # Every worker's pipes are read and closed before any is judged.
    errors = [worker.communicate(timeout=120)[1] for worker in workers]
    for worker, stderr in zip(workers, errors, strict=True):
        assert worker.returncode == 0, stderr
    with engine.connect() as connection:
        assert schema_differences(connection) == []
    engine.dispose()


def test_a_sqlite_upgrade_holds_the_write_lock_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole upgrade, every revision, is one transaction that takes
    SQLite's write lock first. Alembic commits after each revision on a
    database it thinks has no transactional DDL; a worker that waited for the
    lock then ran the next revision too, and one of the two found the version
    row already moved (seen in CI: "expected to match one row when updating
    '0001' to '0002'").
    """
    from alembic.config import Config

    monkeypatch.setenv("KITSESSION_DATABASE_URL", f"sqlite:///{tmp_path / 'lock.sqlite3'}")
    events: list[str] = []

    def statement(conn: t.Any, cursor: t.Any, sql: str, *args: t.Any) -> None:
        events.append(sql.split(None, 2)[0].upper() + " " + sql.split(None, 2)[1].upper())

    def commit(conn: t.Any) -> None:
        events.append("COMMIT")

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", statement)
    sa.event.listen(sa.engine.Engine, "commit", commit)
    try:
        command.upgrade(Config(str(ROOT / "alembic.ini")), "head")
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", statement)
        sa.event.remove(sa.engine.Engine, "commit", commit)
    # Only the engine's own set-up (the WAL switch) may come before the lock.
    writes = events[events.index("BEGIN IMMEDIATE") :]
    assert writes.count("COMMIT") == 1 and writes[-1] == "COMMIT", events
    assert any(event.startswith("UPDATE") for event in writes), events  # 0001 -> 0002


def test_alembic_command_without_a_url_says_what_to_do() -> None:
    env = {"KITSESSION_DATABASE_URL": ""}
    result = alembic_cli("upgrade", "head", env=env)
    assert result.returncode != 0
    assert "KITSESSION_DATABASE_URL" in result.stderr


def test_offline_sql_script(tmp_path: Path) -> None:
    result = alembic_cli("-x", "url=postgresql+psycopg://", "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    assert "CREATE TABLE session" in result.stdout
    assert "JSONB" in result.stdout


@pytest.mark.parametrize("revision", ["0001", "0002"])
def test_every_revision_downgrades(empty_database: sa.Engine, revision: str) -> None:
    upgrade(empty_database)
    with empty_database.begin() as connection:
        config = alembic_config(connection=connection)
        command.downgrade(config, "base")
        command.upgrade(config, revision)


def test_a_worker_connecting_while_another_writes_waits_to_use_wal(tmp_path: Path) -> None:
    """Switching a SQLite file to WAL fails at once, without SQLite's busy
    timeout, while another connection writes (a worker creating the tables
    as several start together; seen in CI as "database is locked"): the
    engine tries again until the file is switched.
    """
    path = tmp_path / "busy.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    committer = threading.Timer(0.5, writer.execute, ["COMMIT"])
    committer.start()
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("SELECT x FROM t").scalar() == 1
    finally:
        committer.join()
        engine.dispose()
        writer.close()
