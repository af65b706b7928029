"""``flask kitsession ...`` commands."""

from __future__ import annotations

import os
import pty
import re
import select
import sys
from datetime import timedelta
from pathlib import Path

import click
import pytest
import sqlalchemy as sa
from flask import Flask

from flask_kitsession import create_session
from flask_kitsession import get_session
from flask_kitsession import KitSession
from flask_kitsession import SessionRecord
from flask_kitsession.cli import cleanup

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

    result = runner.invoke(args=["kitsession", "db", "downgrade", "-1"])  # as alembic spells it
    assert result.exit_code == 0 and "revision 0001" in result.output, result.output
    result = runner.invoke(args=["kitsession", "db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["kitsession", "db", "check"])
    assert result.exit_code != 0 and "db upgrade" in result.output


def test_commands_before_the_tables_exist_say_what_to_do(empty_database: sa.Engine) -> None:
    """A store that is not there yet, or a revision Alembic does not know,
    ends in a message and status 1, not a traceback (review 6).
    """
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, engine=empty_database)
    runner = app.test_cli_runner()
    for args in (["list"], ["cleanup"], ["revoke", "--user", "1"]):
        result = runner.invoke(args=["kitsession", *args])
        assert result.exit_code == 1, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "flask kitsession db upgrade" in result.output, (args, result.output)
    result = runner.invoke(args=["kitsession", "db", "upgrade", "nosuchrev"])
    assert result.exit_code == 1 and "nosuchrev" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


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
    shown = [s.id[:12] for s in adas if s.id[:12] in result.output]
    assert len(shown) == 2, result.output
    assert bobs.id[:12] not in result.output
    assert "2 sessions." in result.output and "There are more" in result.output

    result = runner.invoke(args=["kitsession", "revoke", "--session", adas[0].id])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["kitsession", "revoke", "--user", str(ada)])
    assert "Revoked 2 sessions of user" in result.output
    result = runner.invoke(args=["kitsession", "list"])
    assert "1 session." in result.output and bobs.id[:12] in result.output
    assert bobs.id not in result.output
    result = runner.invoke(args=["kitsession", "list", "--full-ids"])
    assert bobs.id in result.output


def test_revoke_needs_one_target(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["kitsession", "revoke"])
    assert result.exit_code == 2 and "exactly one" in result.output
    result = runner.invoke(args=["kitsession", "revoke", "--session", "0" * 64])
    assert result.exit_code == 1 and "No session" in result.output
    result = runner.invoke(args=["kitsession", "revoke", "--session", "0" * 7])
    assert result.exit_code == 2 and "at least 8 characters" in result.output


def test_db_commands_on_a_memory_store_explain(clock: Clock, tmp_path: Path) -> None:
    from flask_kitsession import MemoryStore

    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=MemoryStore())
    result = app.test_cli_runner().invoke(args=["kitsession", "db", "upgrade"])
    assert result.exit_code != 0
    assert "no SQL schema" in str(result.exception)


def test_list_is_a_table_a_person_can_read(app: Flask, backend: Backend, clock: Clock) -> None:
    ada = backend.add_user("ada@example.com")
    agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124"
    with app.test_request_context(
        headers={"User-Agent": agent}, environ_base={"REMOTE_ADDR": "203.0.113.7"}
    ):
        create_session(user_id=ada)
    clock.advance(minutes=5)
    with app.app_context():
        create_session(data={"cart": "2 pears"})
    result = app.test_cli_runner().invoke(args=["kitsession", "list"])
    assert result.exit_code == 0, result.output
    header, *rows, total = result.output.splitlines()
    assert header.split() == [
        "SESSION",
        "USER",
        "CREATED",
        "(UTC)",
        "LAST",
        "SEEN",
        "EXPIRES",
        "IP",
        "USER",
        "AGENT",
    ]
    assert total == "2 sessions."
    # Every column starts where its heading does.
    starts = [header.index(name) for name in ("USER", "LAST SEEN", "EXPIRES", "IP")]
    by_user = {row.split()[1]: row for row in rows}
    assert set(by_user) == {str(ada), "-"}
    for row in rows:
        for start in starts:
            assert row[start - 2 : start] == "  " and row[start] != " ", (row, start)
    signed_in = by_user[str(ada)]
    assert "5 min ago" in signed_in and "in 31 days" in signed_in
    assert "203.0.113.7" in signed_in
    # A long user agent is cut, so a row fits a terminal.
    assert "Mozilla/5.0 (X11; Linux x86_64) AppleWe…" in signed_in
    assert len(signed_in) < 150
    assert "0 s ago" in by_user["-"]


def test_list_without_sessions_says_so(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["kitsession", "list"])
    assert result.output == "No sessions.\n"


def test_revoke_shows_what_it_revoked(app: Flask, backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    with app.app_context():
        first, second = create_session(user_id=ada), create_session(user_id=ada)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["kitsession", "revoke", "--session", first.id[:12]])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].startswith("SESSION")
    assert first.id in result.output and f"Revoked session {first.id}." in result.output
    with app.app_context():
        assert get_session(first.id) is None and get_session(second.id) is not None

    result = runner.invoke(args=["kitsession", "revoke", "--user", str(ada)])
    assert result.exit_code == 0, result.output
    assert second.id[:12] in result.output
    assert result.output.splitlines()[-1] == f"Revoked 1 session of user {ada}."


def test_revoke_refuses_a_prefix_of_two_sessions(
    app: Flask, backend: Backend, clock: Clock
) -> None:
    now = clock()
    ids = ["abcdef01" + "0" * 56, "abcdef01" + "1" * 56]
    for session_id in ids:
        backend.store.create(
            SessionRecord(
                id=session_id,
                data={},
                user_id=None,
                created_at=now,
                updated_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(days=1),
            )
        )
    runner = app.test_cli_runner()
    result = runner.invoke(args=["kitsession", "revoke", "--session", "abcdef01"])
    assert result.exit_code == 1 and "More than one session" in result.output
    result = runner.invoke(args=["kitsession", "revoke", "--session", "abcdef010"])
    assert result.exit_code == 0, result.output
    assert f"Revoked session {ids[0]}." in result.output
    with app.app_context():
        assert get_session(ids[0]) is None and get_session(ids[1]) is not None


def expire_sessions(app: Flask, clock: Clock, count: int) -> None:
    with app.app_context():
        for n in range(count):
            create_session(data={"n": n})
    clock.advance(days=40)


def test_cleanup_in_a_script_prints_one_line(app: Flask, backend: Backend, clock: Clock) -> None:
    if not backend.store.needs_purge:
        pytest.skip("this store expires sessions by itself")
    expire_sessions(app, clock, 25)
    result = app.test_cli_runner().invoke(args=["kitsession", "cleanup", "--batch-size", "10"])
    assert result.exit_code == 0, result.output
    assert result.output == "Deleted 25 expired sessions.\n"


def test_cleanup_on_a_terminal_shows_its_progress(
    app: Flask, backend: Backend, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not backend.store.needs_purge:
        pytest.skip("this store expires sessions by itself")
    expire_sessions(app, clock, 25)
    controller, terminal = pty.openpty()
    with open(terminal, "w", closefd=True) as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        with app.app_context(), click.Context(cleanup) as context:
            context.invoke(cleanup, batch_size=10)
        monkeypatch.undo()
    output = b""
    while select.select([controller], [], [], 0.5)[0]:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal side is closed: all read
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    text = output.decode()
    # One line redrawn after each batch: 10, 20, 25 deleted, with the rate.
    counts = re.findall(r"Deleting expired sessions: (\d+) deleted \([\d,]+/s\)", text)
    assert counts == ["10", "20", "25"], text
    assert text.count("\r\x1b[K") == 4, text
    assert text.endswith("Deleted 25 expired sessions.\r\n"), text
