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
- ``confirm_login()`` counts as :func:`~flask_kitsession.refresh_authentication`,
  and the other way round: each marks the session fresh for Flask-Login too.
- :meth:`KitSession.init_login_manager` makes ``current_user`` the user that
  kitsession loaded together with the session: no second query.

The first two happen through Flask-Login's ``user_logged_in`` and
``user_logged_out`` signals, connected by ``init_app`` when Flask-Login is
installed.
"""

from __future__ import annotations

import typing as t

from flask import Flask
from flask import has_request_context

from .exceptions import UnknownUserError
from .lifecycle import FRESH_KEY
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


def login_values(app: Flask, user_id: t.Any, *, fresh: bool = True) -> dict[str, t.Any]:
    """What Flask-Login's ``login_user()`` writes, for a session that
    kitsession makes itself (:func:`~flask_kitsession.create_session`, a magic
    link; :func:`flask_kitsession.testing.login`): the user under ``_user_id``,
    ``_fresh``, and in a request the ``_id`` of the browser it comes from,
    which Flask-Login's session protection compares (without it, "basic"
    protection makes the login not fresh and "strong" logs it out). Empty in
    an app without a login manager.
    """
    login_manager = getattr(app, "login_manager", None)
    if login_manager is None:
        return {}
    values: dict[str, t.Any] = {"_user_id": str(user_id), "_fresh": fresh}
    if has_request_context():
        values["_id"] = login_manager._session_identifier_generator()
    return values


def confirm_fresh_login(app: Flask, session: t.Mapping[str, t.Any]) -> None:
    """When Flask-Login logged ``session`` in, make its notion of a fresh
    login agree with :func:`~flask_kitsession.refresh_authentication`:
    ``confirm_login()`` marks the session fresh for the browser it comes from
    (``_fresh`` and the ``_id`` that Flask-Login's session protection
    compares, which a new user agent or address no longer matches). Nothing
    for a session that Flask-Login has not touched.
    """
    if getattr(app, "login_manager", None) is None or not (
        "_user_id" in session or FRESH_KEY in session
    ):
        return
    from flask_login import confirm_login

    confirm_login()


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
