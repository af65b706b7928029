"""``flask kitsession ...``: thin commands over importable functions."""

from __future__ import annotations

import itertools
import sys
import time
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from . import migrate
from .exceptions import StoreUnavailableError
from .helpers import purge_expired
from .helpers import remove_all_sessions_for_user
from .helpers import remove_session
from .signals import ADMIN
from .state import get_state
from .stores import SessionRecord
from .stores import SessionStore
from .stores.sql import SQLAlchemyStore


class _Commands(AppGroup):
    """Commands whose expected failures (the store down or not created, a
    revision Alembic does not know) end in a message, not a traceback.
    """

    def invoke(self, ctx: click.Context) -> t.Any:
        from alembic.util import CommandError

        try:
            return super().invoke(ctx)
        except StoreUnavailableError as e:
            raise click.ClickException(e.message) from e
        except CommandError as e:
            raise click.ClickException(f"Alembic: {e}") from e


kitsession_command = _Commands("kitsession", help="Server-side sessions: schema and maintenance.")
db_command = AppGroup("db", help="Create and upgrade the session tables.")
kitsession_command.add_command(db_command)


@db_command.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the session tables to REVISION (default: the latest)."""
    migrate.upgrade(revision=revision)
    click.echo(f"Session tables are at revision {migrate.current_revision()}.")


# A relative revision such as -1 is Alembic's usual spelling, not an option.
@db_command.command("downgrade", context_settings={"ignore_unknown_options": True})
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Downgrade the session tables to REVISION (default: one step; -2 two;
    'base' drops them).
    """
    migrate.downgrade(revision=revision)
    click.echo(f"Session tables are at revision {migrate.current_revision() or 'base (none)'}.")


@db_command.command("current")
def db_current() -> None:
    """Show the revision the session tables are at."""
    revision = migrate.current_revision()
    if revision is not None:
        click.echo(revision)
        return
    store = get_state().store
    if isinstance(store, SQLAlchemyStore) and sa.inspect(store.engine).has_table(
        store.session_table.name, schema=store.session_table.schema
    ):
        # Flask-Migrate or the app's own Alembic made them, in its history.
        click.echo(
            "none: the session table exists, but kitsession's own migrations did not"
            " make it (your app's migrations did?); `db check` compares it with the models."
        )
    else:
        click.echo("base (no session tables)")


@db_command.command("check")
def db_check() -> None:
    """Fail if the session tables differ from what this version expects."""
    differences = migrate.check()
    if differences:
        for difference in differences:
            click.echo(f"  {difference}")
        raise click.ClickException(
            "The session tables differ from the models: run `flask kitsession db upgrade`."
        )
    click.echo("The session tables match the models.")


@kitsession_command.command("cleanup")
@click.option(
    "--batch-size",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Sessions deleted per transaction.",
)
def cleanup(batch_size: int) -> None:
    """Delete expired sessions, in batches.

    On a terminal a running count shows how many are gone and how fast; in
    a script or cron job (output not a terminal) only the last line is
    printed.
    """
    state = get_state()
    if not state.store.needs_purge:
        click.echo(f"Nothing to do: {type(state.store).__name__} expires sessions by itself.")
        return
    counter = _Progress(sys.stdout.isatty())
    count = purge_expired(batch_size=batch_size, progress=counter.add)
    counter.done()
    # A plain number: scripts read this line.
    click.echo(f"Deleted {count} expired {_plural(count, 'session')}.")


class _Progress:
    """A running count of deleted sessions, redrawn in place on a terminal."""

    def __init__(self, terminal: bool) -> None:
        self.terminal = terminal
        self.deleted = 0
        self.started = time.monotonic()

    def add(self, count: int) -> None:
        self.deleted += count
        if not self.terminal:
            return
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = self.deleted / elapsed
        # \r and "erase to the end of the line": one line, rewritten.
        click.echo(
            f"\r\x1b[KDeleting expired sessions: {self.deleted:,} deleted ({rate:,.0f}/s)",
            nl=False,
        )

    def done(self) -> None:
        if self.terminal and self.deleted:
            click.echo("\r\x1b[K", nl=False)


def _plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


#: Characters of a session id that ``list`` shows (``--full-ids`` for all).
SHORT_ID = 12
#: The shortest id prefix ``revoke --session`` accepts.
MIN_PREFIX = 8


def _ago(delta: timedelta) -> str:
    """``delta`` the way a person says it: "4 min", "3 h", "12 days"."""
    seconds = int(abs(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} days"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    """Columns as wide as their widest cell, two spaces apart."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _printable(text: str) -> str:
    """``text`` with every character a terminal would act on (escape
    sequences, control characters) shown as ``?``: user agents and addresses
    come from clients.
    """
    return "".join(c if c.isprintable() else "?" for c in text)


def _rows(records: t.Iterable[SessionRecord], now: datetime, *, full_ids: bool) -> list[list[str]]:
    rows = []
    for record in records:
        expires = record.expires_at - now
        rows.append(
            [
                record.id if full_ids else record.id[:SHORT_ID],
                "-" if record.user_id is None else _printable(str(record.user_id)),
                f"{record.created_at:%Y-%m-%d %H:%M}",
                f"{_ago(now - record.last_seen_at)} ago",
                f"in {_ago(expires)}" if expires.total_seconds() > 0 else "expired",
                _printable(record.ip_address or "-"),
                _cut(_printable(record.user_agent or "-"), 40),
            ]
        )
    return rows


HEADERS = ["SESSION", "USER", "CREATED (UTC)", "LAST SEEN", "EXPIRES", "IP", "USER AGENT"]


@kitsession_command.command("list")
@click.option("--user", "user_id", help="Only this user's sessions.")
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Show at most this many.",
)
@click.option("--include-expired", is_flag=True, help="Also show expired sessions.")
@click.option(
    "--full-ids",
    is_flag=True,
    help=f"Show whole session ids, not their first {SHORT_ID} characters.",
)
def list_sessions(user_id: str | None, limit: int, include_expired: bool, full_ids: bool) -> None:
    """List stored sessions as a table.

    Ids are cut to their first characters, which `revoke --session` takes
    too.
    """
    state = get_state()
    now = state.clock()
    kwargs: dict[str, t.Any] = {
        "now": None if include_expired else now,
        "batch_size": min(limit + 1, 500),
    }
    if user_id is not None:
        kwargs["user_id"] = user_id
    records = list(itertools.islice(state.store.iterate(**kwargs), limit + 1))
    more = len(records) > limit
    records = records[:limit]
    if not records:
        click.echo("No sessions.")
        return
    click.echo(_table(HEADERS, _rows(records, now, full_ids=full_ids)))
    click.echo(f"{len(records):,} {_plural(len(records), 'session')}.")
    if more:
        click.echo("There are more: raise --limit to see them.")


def _find_session(store: SessionStore, prefix: str) -> SessionRecord:
    """The one stored session whose id starts with ``prefix``."""
    if len(prefix) < MIN_PREFIX:
        raise click.UsageError(
            f"--session needs at least {MIN_PREFIX} characters of the id, as `list` shows it."
        )
    if len(prefix) == 64:
        # A whole id: one lookup, expired or not.
        record = store.get(prefix, datetime.min.replace(tzinfo=timezone.utc))
        matches = [] if record is None else [record]
    else:
        # An admin command: reading every id once is affordable here.
        matches = list(itertools.islice((r for r in store.iterate() if r.id.startswith(prefix)), 2))
    if not matches:
        raise click.ClickException(f"No session {prefix!r} (its id, as `list` shows it).")
    if len(matches) > 1:
        raise click.ClickException(
            f"More than one session starts with {prefix!r}: give more of the id (--full-ids)."
        )
    return matches[0]


@kitsession_command.command("revoke")
@click.option("--user", "user_id", help="Revoke every session of this user.")
@click.option(
    "--session",
    "session_id",
    help=f"Revoke this session: its id, or its first {MIN_PREFIX} or more characters.",
)
def revoke(user_id: str | None, session_id: str | None) -> None:
    """Revoke sessions: every session of a user, or one session. Shows what
    was revoked, as a table.
    """
    if (user_id is None) == (session_id is None):
        raise click.UsageError("Pass exactly one of --user ID or --session ID.")
    state = get_state()
    store = state.store
    now = state.clock()
    if user_id is not None:
        records = list(store.iterate(user_id=user_id))
        count = remove_all_sessions_for_user(user_id, reason=ADMIN)
        # Sessions created between the listing and the delete are revoked too.
        shown = records if count >= len(records) else []
        if shown:
            click.echo(_table(HEADERS, _rows(shown, now, full_ids=False)))
        click.echo(f"Revoked {count:,} {_plural(count, 'session')} of user {user_id}.")
        return
    assert session_id is not None
    record = _find_session(store, session_id.strip().lower())
    if not remove_session(record.id, reason=ADMIN):
        raise click.ClickException(f"Session {record.id} was deleted meanwhile.")
    click.echo(_table(HEADERS, _rows([record], now, full_ids=True)))
    click.echo(f"Revoked session {record.id}.")
