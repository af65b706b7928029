"""``flask kitsession ...``: thin commands over importable functions."""

from __future__ import annotations

import typing as t

import click
from flask.cli import AppGroup

from . import migrate
from .models import utc_now
from .state import get_state

kitsession_command = AppGroup("kitsession", help="Server-side sessions: schema and maintenance.")
db_command = AppGroup("db", help="Create and upgrade the session tables.")
kitsession_command.add_command(db_command)


@db_command.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Upgrade the session tables to REVISION (default: the latest)."""
    migrate.upgrade(revision=revision)
    click.echo(f"Session tables are at revision {migrate.current_revision()}.")


@db_command.command("downgrade")
@click.argument("revision", default="-1")
def db_downgrade(revision: str) -> None:
    """Downgrade the session tables to REVISION (default: one step; 'base' drops them)."""
    migrate.downgrade(revision=revision)
    click.echo(f"Session tables are at revision {migrate.current_revision() or 'base (none)'}.")


@db_command.command("current")
def db_current() -> None:
    """Show the revision the session tables are at."""
    click.echo(migrate.current_revision() or "base (no session tables)")


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
    """Delete expired sessions, in batches."""
    state = get_state()
    if not state.store.needs_purge:
        click.echo(f"Nothing to do: {type(state.store).__name__} expires sessions by itself.")
        return
    # The database's own clock, unless the app runs on a clock of its own (tests).
    now = None if state.clock is utc_now else state.clock()
    count = state.store.purge_expired(now, batch_size=batch_size)
    click.echo(f"Deleted {count} expired session{'s' if count != 1 else ''}.")


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
def list_sessions(user_id: str | None, limit: int, include_expired: bool) -> None:
    """List stored sessions, most recently used first within each page."""
    state = get_state()
    now = state.clock()
    kwargs: dict[str, t.Any] = {
        "now": None if include_expired else now,
        "batch_size": min(limit, 500),
    }
    if user_id is not None:
        kwargs["user_id"] = user_id
    shown = 0
    click.echo(f"{'SESSION':<64}  {'USER':<10}  {'LAST SEEN (UTC)':<19}  {'EXPIRES (UTC)':<19}  IP")
    for record in state.store.iterate(**kwargs):
        if shown == limit:
            click.echo("... (more; raise --limit to see them)")
            break
        expired = " (expired)" if record.expires_at <= now else ""
        user = "-" if record.user_id is None else str(record.user_id)
        click.echo(
            f"{record.id}  {user:<10}  {record.last_seen_at:%Y-%m-%d %H:%M:%S}"
            f"  {record.expires_at:%Y-%m-%d %H:%M:%S}  {record.ip_address or '-'}{expired}"
        )
        shown += 1
    click.echo(f"{shown} session{'s' if shown != 1 else ''}.")


@kitsession_command.command("revoke")
@click.option("--user", "user_id", help="Revoke every session of this user.")
@click.option("--session", "session_id", help="Revoke this session (its id, as `list` shows it).")
def revoke(user_id: str | None, session_id: str | None) -> None:
    """Revoke sessions: every session of a user, or one session."""
    if (user_id is None) == (session_id is None):
        raise click.UsageError("Pass exactly one of --user ID or --session ID.")
    store = get_state().store
    if user_id is not None:
        count = store.delete_all_for_user(user_id)
        click.echo(f"Revoked {count} session{'s' if count != 1 else ''} of user {user_id}.")
        return
    assert session_id is not None
    session_id = session_id.strip().lower()
    if not store.delete(session_id):
        raise click.ClickException(
            f"No session {session_id!r} (give the full id, as `list` shows it)."
        )
    click.echo(f"Revoked session {session_id}.")
