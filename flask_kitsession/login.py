"""Flask-Login on kitsession's sessions, with no change to the app's code.

- ``login_user(user)`` is a login: the session starts over with a new token,
  as in a :func:`~flask_kitsession.with_new_session` view (a session id planted
  before login is worthless after it, and only the keys in
  ``KITSESSION_CARRY_OVER_KEYS`` follow the visitor into their account).
  Flask-Login's ``fresh`` flag is respected: ``login_user(user, fresh=False)``
  and a login restored from a remember cookie are not fresh.
- ``logout_user()`` deletes the stored session and expires its cookie; what
  the request writes afterwards (a flash, another ``login_user``) goes into
  a new session.
- ``confirm_login()`` counts as :func:`~flask_kitsession.refresh_authentication`.
- :meth:`KitSession.init_login_manager` makes ``current_user`` the user that
  kitsession loaded together with the session: no second query.

The first two happen through Flask-Login's ``user_logged_in`` and
``user_logged_out`` signals, connected by ``init_app`` when Flask-Login is
installed.
"""

from __future__ import annotations

import typing as t

from flask import Flask

from .exceptions import UnknownUserError
from .session import request_server_session
from .state import get_state

#: Flask-Login's key that says its remember cookie must be cleared: kept
#: through a logout, for Flask-Login's ``after_request`` to act on.
REMEMBER_KEY = "_remember"


def connect_signals(app: Flask) -> None:
    """Follow Flask-Login's logins and logouts on ``app`` (if it is installed)."""
    try:
        from flask_login import user_logged_in
        from flask_login import user_logged_out
        from flask_login import user_login_confirmed
    except ImportError:
        return
    user_logged_in.connect(_logged_in, app)
    user_logged_out.connect(_logged_out, app)
    user_login_confirmed.connect(_login_confirmed, app)


def _logged_in(app: Flask, user: t.Any = None, **extra: t.Any) -> None:
    # Here, not when the session is saved: a user id sessions cannot link by
    # fails at login_user(), saying which setting fixes it.
    get_state(app).store.check_login(user)
    session = request_server_session()
    if session is not None:
        session.lifecycle.login(session)


def _logged_out(app: Flask, user: t.Any = None, **extra: t.Any) -> None:
    session = request_server_session()
    if session is not None:
        session.lifecycle.end(session, keep=(REMEMBER_KEY,))


def _login_confirmed(app: Flask, **extra: t.Any) -> None:
    # confirm_login(): the user re-entered their password.
    session = request_server_session()
    if session is not None and session.user_id is not None:
        session.lifecycle.authenticate()


def load_user(user_id: str) -> t.Any:
    """Flask-Login's user loader: the session's own user when it is the one
    asked for (no query), else the store's (a remember cookie, say).

    A session linked to a user who no longer exists (a remember cookie of a
    deleted user, restored just now) is unlinked: the visitor is anonymous.
    """
    store = get_state().store
    try:
        wanted = store.coerce_user_id(user_id)
    except UnknownUserError:
        return None
    session = request_server_session()
    if session is not None and session.user_id is not None and session.user_id == wanted:
        user = session.user
        if user is None:
            for key in session.lifecycle.context.settings.user_id_keys:
                session.pop(key, None)
        return user
    return store.attach_user(store.load_user(wanted))
