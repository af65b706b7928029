"""Telling the app's receivers what the store did (see :mod:`.signals`).

The session interface and the helpers call these once the store has carried
out a change; nothing here decides a session's fate. Every function first asks
blinker whether anyone listens (a dict's truth value), so an app without
receivers pays nothing beyond that, and a request that changes nothing never
gets here at all.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone

from flask import current_app
from flask import Flask
from flask import g

from .exceptions import UnknownUserError
from .lifecycle import Action
from .signals import LOGOUT
from .signals import session_authenticated
from .signals import session_created
from .signals import session_revoked
from .signals import session_rotated
from .state import get_state

if t.TYPE_CHECKING:
    from .lifecycle import Outcome
    from .session import ServerSession

#: Where a request (or app context) remembers the sessions it has told
#: ``session_revoked`` about already: a helper that deleted the current
#: session tells at once, and the end of the request must not tell again.
_TOLD_KEY = "_kitsession_revoked"
#: Why the request's own ended session is deleted, when a helper was told.
_REASONS_KEY = "_kitsession_end_reasons"

#: The earliest time: a lookup at it finds a session whether it expired or not.
_EVER = datetime.min.replace(tzinfo=timezone.utc)


def _listening() -> bool:
    return bool(
        session_created.receivers
        or session_rotated.receivers
        or session_authenticated.receivers
        or session_revoked.receivers
    )


def _app(app: Flask | None) -> Flask:
    if app is None:
        return t.cast(Flask, current_app._get_current_object())  # type: ignore[attr-defined]
    return app


@dataclass(frozen=True, slots=True)
class StoreNews:
    """What one carried-out outcome tells the receivers, gathered before the
    session's lifecycle forgets how it got there, sent once the response's
    cookie is set.
    """

    session: ServerSession
    #: The session is a new one, replacing this id (or none).
    created: bool = False
    replaced: str | None = None
    #: The session got a new token; it was stored under this id.
    previous_id: str | None = None
    #: The session's user logged in, or proved who they are again.
    authenticated: bool = False
    fresh: bool = False
    #: A user's session that ended here: its user and id.
    ended_user: t.Any = None
    ended_id: str | None = None

    def send(self, app: Flask | None = None) -> None:
        sender = _app(app)
        session = self.session
        if self.ended_id is not None and not _told(self.ended_id):
            reasons: dict[str, str] = g.get(_REASONS_KEY) or {}
            revoked(
                user_id=self.ended_user,
                session_id=self.ended_id,
                count=1,
                reason=reasons.get(self.ended_id, LOGOUT),
                app=app,
            )
        if self.created and session_created.receivers:
            session_created.send(sender, session=session, replaced=self.replaced)
        if self.previous_id is not None and session_rotated.receivers:
            session_rotated.send(sender, session=session, previous_id=self.previous_id)
        if self.authenticated and session_authenticated.receivers:
            session_authenticated.send(
                sender, session=session, user_id=session.user_id, fresh=self.fresh
            )


def store_changed(session: ServerSession, outcome: Outcome, *, deleted: bool) -> StoreNews | None:
    """Gather what ``outcome``, carried out on the store, tells the receivers;
    ``None`` when nobody listens or there is nothing to tell.

    Call it after the store's change and before ``lifecycle.stored()``: the
    lifecycle still knows the origin and why the session changed.

    :param deleted: Whether the store deleted the outcome's target (a
        ``DELETE`` outcome); it may have been gone already.
    """
    if not _listening():
        return None
    action = outcome.action
    record = outcome.record
    lifecycle = session.lifecycle
    origin = lifecycle.origin
    user_of_origin = None
    if origin is not None and origin.id == outcome.target:
        user_of_origin = origin.user_id
    if action is Action.DELETE:
        if deleted and user_of_origin is not None:
            return StoreNews(session, ended_user=user_of_origin, ended_id=outcome.target)
        return None
    if record is None or action not in (Action.CREATE, Action.UPDATE):
        return None
    # A new session linked to a user is a login, whatever wrote the key; an
    # update authenticates only when the app said so (refresh, a re-login).
    authenticated = record.user_id is not None and (
        action is Action.CREATE or lifecycle.authenticated
    )
    # The lifecycle stores ``authenticated_at`` as the save's own time
    # exactly when the user entered their credentials in this request.
    fresh = authenticated and record.authenticated_at == record.updated_at
    if action is Action.CREATE:
        # A user's session that a session of another user (or of nobody)
        # replaces has ended: a logout that left something behind, or a
        # login as someone else.
        ended = user_of_origin is not None and user_of_origin != record.user_id
        return StoreNews(
            session,
            created=True,
            replaced=outcome.target,
            authenticated=authenticated,
            fresh=fresh,
            ended_user=user_of_origin if ended else None,
            ended_id=outcome.target if ended else None,
        )
    if outcome.target is None and not authenticated:
        return None
    return StoreNews(session, previous_id=outcome.target, authenticated=authenticated, fresh=fresh)


def end_reason(session_id: str, reason: str) -> None:
    """Say why the request's own session, ended now, will be deleted when it
    is saved (``remove_session(current, reason=...)``).
    """
    reasons: dict[str, str] = g.setdefault(_REASONS_KEY, {})
    reasons[session_id] = reason


def _told(session_id: str) -> bool:
    told: set[str] | None = g.get(_TOLD_KEY)
    return told is not None and session_id in told


def revoked(
    *,
    user_id: t.Any,
    session_id: str | None,
    count: int,
    reason: str,
    app: Flask | None = None,
) -> None:
    """Send ``session_revoked`` for sessions the store has deleted."""
    if count <= 0 or not session_revoked.receivers:
        return
    if session_id is not None:
        told: set[str] = g.setdefault(_TOLD_KEY, set())
        told.add(session_id)
    session_revoked.send(
        _app(app), user_id=user_id, session_id=session_id, count=count, reason=reason
    )


def revoked_for_user(user_id: t.Any, count: int, reason: str) -> None:
    """Send ``session_revoked`` for ``count`` sessions of ``user_id``, named
    as the store names users (``42`` for ``"42"`` from a command line).
    """
    if count <= 0 or not session_revoked.receivers:
        return
    try:
        user_id = get_state().store.coerce_user_id(user_id)
    except UnknownUserError:
        pass  # the store deleted sessions of it, so it converts; keep it as given
    revoked(user_id=user_id, session_id=None, count=count, reason=reason)


def owner_of(session: ServerSession | str, current: ServerSession | None) -> t.Any:
    """The user of a session about to be removed, for ``session_revoked``;
    looked up in the store only when given an id and somebody listens.
    """
    if not session_revoked.receivers:
        return None
    if current is not None:
        session = current
    if not isinstance(session, str):
        record = session.record
        return record.user_id if record is not None else session.user_id
    record = get_state().store.get(session, _EVER)
    return None if record is None else record.user_id


def check_reason(reason: t.Any) -> None:
    """Refuse a ``reason=`` that receivers could not compare with the documented ones.

    :raises TypeError: if it is not a non-empty string.
    """
    if not isinstance(reason, str) or not reason:
        raise TypeError(
            f"reason must be a non-empty string, such as signals.ADMIN, not {reason!r}."
        )
