"""A "new sign-in" notice: when a user signs in, each of their other devices
is told, once, on its devices page ("New sign-in: Chrome 147 on Android 14").

kitsession's ``session_created`` signal says when a session is stored, once
it is: a login that failed, or a request that ended in an error, never
sends it. A new session of a user is a sign-in (a re-authentication keeps
its session, so it is not one).
"""

from __future__ import annotations

import typing as t
from dataclasses import replace

from flask import Flask

from flask_kitsession import current_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import ServerSession
from flask_kitsession import StoreUnavailableError
from flask_kitsession.state import get_state

from .user_agents import parse_user_agent

#: Where a session keeps the notices it has not shown yet.
NOTICES_KEY = "new_sign_ins"
#: A device that is not looked at keeps the latest few.
MAX_NOTICES = 5


def tell_other_devices(app: Flask, session: ServerSession, **extra: t.Any) -> None:
    """``session_created`` receiver: leave a notice in the user's other sessions."""
    if session.user_id is None:
        return  # a visitor's session (a form's token, a flashed message)
    record = session.record
    assert record is not None  # sent once the session is stored
    notice = {
        "device": parse_user_agent(record.user_agent).label,
        "at": record.authenticated_at or record.updated_at,
    }
    store = get_state(app).store
    try:
        others = get_sessions_for_user(session.user_id)
        for other in others:
            stored = other.record
            if stored is None or stored.id == record.id:
                continue
            notices = [*stored.data.get(NOTICES_KEY, []), notice][-MAX_NOTICES:]
            # Written to the store as it is, rather than with set_session(),
            # which counts as a use of the session: it would slide the other
            # device's expiry and show it as "last seen just now". A notice
            # must not keep a forgotten device signed in, nor make it look
            # used. If that device saves its session in the same instant, one
            # of the two writes wins: a notice may be lost, fine for a notice.
            data = {**stored.data, NOTICES_KEY: notices}
            store.update(replace(stored, data=data, updated_at=record.updated_at))
    except StoreUnavailableError as e:
        # The sign-in itself is stored: the notice is not worth failing it.
        app.logger.warning("Could not leave a new sign-in notice: %s", e)


def take_notices() -> list[dict[str, t.Any]]:
    """The current session's notices, removed from it: each is shown once."""
    notices = current_session.pop(NOTICES_KEY, None)
    return notices if isinstance(notices, list) else []
