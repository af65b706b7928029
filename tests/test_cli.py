"""``flask kitsession ...`` commands."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from flask_kitsession import create_session
from flask_kitsession import get_session
from flask_kitsession import KitSession

from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend


def test_db_upgrade_check_current_and_downgrade(empty_database: sa.Engine) -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, engine=empty_database)
    runner = app.test_cli_runner()

    result = runner.invoke(args=["kitsession", "db", "current"])
    assert "base" in result.output
    result = runner.invoke(args=["kitsession", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "revision 0002" in result.output
    result = runner.invoke(args=["kitsession", "db", "check"])
    assert result.exit_code == 0 and "match" in result.output
    assert "session" in sa.inspect(empty_database).get_table_names()

    result = runner.invoke(args=["kitsession", "db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["kitsession", "db", "check"])
    assert result.exit_code != 0 and "db upgrade" in result.output


def test_cleanup_deletes_only_expired_sessions(app: Flask, backend: Backend, clock: Clock) -> None:
    runner = app.test_cli_runner()
    with app.app_context():
        old = [create_session(data={"n": n}) for n in range(5)]
        clock.advance(days=30)
        fresh = create_session(data={"fresh": True})
        clock.advance(days=2)  # the first five are now past the 31-day idle timeout
    result = runner.invoke(args=["kitsession", "cleanup", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    if backend.store.needs_purge:
        assert "Deleted 5 expired sessions." in result.output
    else:
        assert "expires sessions by itself" in result.output
    with app.app_context():
        assert get_session(fresh.id) is not None
        assert all(get_session(s.id) is None for s in old)
    if backend.store.needs_purge:
        result = runner.invoke(args=["kitsession", "cleanup"])
        assert "Deleted 0 expired sessions." in result.output


def test_list_and_revoke(app: Flask, backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    with app.app_context():
        adas = [create_session(user_id=ada) for _ in range(3)]
        bobs = create_session(user_id=bob)
    runner = app.test_cli_runner()

    result = runner.invoke(args=["kitsession", "list"])
    assert result.exit_code == 0, result.output
    assert "4 sessions." in result.output
    result = runner.invoke(args=["kitsession", "list", "--user", str(ada), "--limit", "2"])
    assert adas[0].id in result.output or adas[1].id in result.output
    assert bobs.id not in result.output
    assert "2 sessions." in result.output and "more" in result.output

    result = runner.invoke(args=["kitsession", "revoke", "--session", adas[0].id])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["kitsession", "revoke", "--user", str(ada)])
    assert "Revoked 2 sessions of user" in result.output
    result = runner.invoke(args=["kitsession", "list"])
    assert "1 session." in result.output and bobs.id in result.output


def test_revoke_needs_one_target(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["kitsession", "revoke"])
    assert result.exit_code == 2 and "exactly one" in result.output
    result = runner.invoke(args=["kitsession", "revoke", "--session", "0" * 64])
    assert result.exit_code == 1 and "No session" in result.output


def test_db_commands_on_a_memory_store_explain(clock: Clock, tmp_path: Path) -> None:
    from flask_kitsession import MemoryStore

    app = Flask(__name__)
    KitSession(app, store=MemoryStore())
    result = app.test_cli_runner().invoke(args=["kitsession", "db", "upgrade"])
    assert result.exit_code != 0
    assert "no SQL schema" in str(result.exception)
