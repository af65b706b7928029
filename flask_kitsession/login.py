"""Flask-Login on kitsession's sessions, with no change to the app's code.

- ``login_user(user)`` links the stored session to the user (Flask-Login's
  ``_user_id`` is one of the keys that name the user) and gives the session
  a new token, as :func:`~flask_kitsession.with_new_session` does: a session
  id planted before login is worthless after it, and only the keys in
  ``KITSESSION_CARRY_OVER_KEYS`` follow the visitor into their account.
- ``logout_user()`` deletes the stored session and expires its cookie.
- :meth:`KitSession.init_login_manager` makes ``current_user`` the user that
  kitsession loaded together with the session: no second query.

The first two happen through Flask-Login's ``user_logged_in`` and
``user_logged_out`` signals, connected by ``init_app`` when Flask-Login is
installed.
"""

from __future__ import annotations

import typing as t

from flask import Flask

from .decorators import request_server_session
from .exceptions import UnknownUserError
from .extension import get_state

#: The keys ``login_user`` writes: kept when the login starts a new session.
LOGIN_KEYS = ("_user_id", "_fresh", "_id", "_remember", "_remember_seconds")


def connect_signals(app: Flask) -> None:
    """Follow Flask-Login's logins and logouts on ``app`` (if it is installed)."""
    try:
        from flask_login import user_logged_in
        from flask_login import user_logged_out
    except ImportError:
        return
    user_logged_in.connect(_logged_in, app)
    user_logged_out.connect(_logged_out, app)


def _logged_in(app: Flask, user: t.Any = None, **extra: t.Any) -> None:
    # Here, not when the session is saved: a user id sessions cannot link by
    # fails at login_user(), saying which setting fixes it.
    get_state(app).store.check_login(user)
    session = request_server_session()
    if session is None or session.record is None:
        # Not stored yet (a first visit, or a view under with_new_session):
        # its token is new already.
        return
    state = get_state(app)
    session._start_over(
        state.settings.carried_keys(session),
        keep=LOGIN_KEYS,
        previous_user_id=session.record.user_id,
    )
    session._drop_carried_if_user_changed()
    session.modified = True


def _logged_out(app: Flask, user: t.Any = None, **extra: t.Any) -> None:
    session = request_server_session()
    if session is not None:
        session._delete = True


def load_user(user_id: str) -> t.Any:
    """Flask-Login's user loader: the session's own user when it is the one
    asked for (no query), else the store's (a remember cookie, say).
    """
    store = get_state().store
    try:
        wanted = store.coerce_user_id(user_id)
    except UnknownUserError:
        return None
    session = request_server_session()
    if session is not None and session.user_id is not None and session.user_id == wanted:
        return session.user
    return store.attach_user(store.load_user(wanted))
