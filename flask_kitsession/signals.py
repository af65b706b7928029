"""Signals: what happened to the app's sessions, for an audit log, a "new
sign-in" e-mail or metrics.

kitsession sends them with `blinker`_, as Flask and Flask-Login do, with the
app as the sender. Each one tells a fact: it is sent after the store has
carried out the change, never for what a request meant to do. A request that
ends in a server error saves nothing, and sends nothing.

.. code-block:: python

    from flask_kitsession import signals

    @signals.session_revoked.connect_via(app)
    def audit(app, user_id, session_id, count, reason, **extra):
        app.logger.info("%s session(s) of user %s revoked: %s", count, user_id, reason)

Receivers run in the request (or the command) that made the change, after
the store has made it: keep them short, and let them take ``**extra`` so
that a later version may send more.

.. _blinker: https://blinker.readthedocs.io/

.. versionadded:: 0.1
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: A new session was stored: a first write of a visitor, a login (which
#: starts the session over), :func:`~flask_kitsession.create_session`.
#:
#: - ``session``: the stored :class:`~flask_kitsession.ServerSession`.
#: - ``replaced``: the id of the stored session it took the place of (the
#:   visitor's session before a login, or a user's before a logout that
#:   left something behind, such as a flashed message), or ``None``.
session_created = _signals.signal("session-created")

#: A stored session got a new token and keeps its data: its old cookie is
#: worth nothing now. :func:`~flask_kitsession.regenerate`,
#: :func:`~flask_kitsession.refresh_authentication` (and Flask-Login's
#: ``confirm_login``) and :func:`~flask_kitsession.credentials_changed` do
#: this.
#:
#: - ``session``: the session, under its new id.
#: - ``previous_id``: the id it was stored under before.
session_rotated = _signals.signal("session-rotated")

#: A session was stored linked to a user who logged in during this request
#: (a login view, Flask-Login's ``login_user`` or remember cookie,
#: :func:`~flask_kitsession.create_session` with a user), or whose user
#: proved who they are again (:func:`~flask_kitsession.refresh_authentication`).
#:
#: - ``session``: the stored session.
#: - ``user_id``: its user.
#: - ``fresh``: whether the user entered their credentials: ``False`` for
#:   a login from Flask-Login's remember cookie or ``login_user(fresh=False)``
#:   (:attr:`~flask_kitsession.ServerSession.authenticated_at` is not
#:   moved then).
session_authenticated = _signals.signal("session-authenticated")

#: Stored sessions were deleted, so their cookies are worth nothing now.
#:
#: - ``user_id``: whose sessions they were, or ``None`` (an anonymous
#:   session, or expired sessions of any user).
#: - ``session_id``: the id of the session, or ``None`` when one call
#:   deleted several (or an unknown number) at once.
#: - ``count``: how many sessions were deleted (at least one).
#: - ``reason``: why; one of :data:`LOGOUT`, :data:`SIGN_OUT_OTHERS`,
#:   :data:`CREDENTIALS_CHANGED`, :data:`EXPIRED`, :data:`ADMIN`, or what
#:   the app passed as ``reason=`` to a helper.
#:
#: A session that a login replaces is not revoked: it lives on as the
#: logged-in session (``session_created`` says which it replaced).
session_revoked = _signals.signal("session-revoked")

#: A user's session ended in a request: :func:`~flask_kitsession.with_delete_session`,
#: Flask-Login's ``logout_user``, :func:`~flask_kitsession.remove_session` of
#: the current session, or removing the user from the session
#: (``session.clear()``, ``session.pop("user_id")``), and a login as
#: another user, which ends the previous user's session there.
LOGOUT = "logout"
#: :func:`~flask_kitsession.remove_all_sessions_for_user`: "sign out all
#: other devices".
SIGN_OUT_OTHERS = "sign-out-others"
#: :func:`~flask_kitsession.credentials_changed` signed the user out
#: everywhere else.
CREDENTIALS_CHANGED = "credentials-changed"
#: ``flask kitsession cleanup`` or :func:`~flask_kitsession.purge_expired`
#: deleted expired sessions: sent once per batch, with its count.
EXPIRED = "expired"
#: Revoked by someone else than the session's own browser: ``flask
#: kitsession revoke``, or :func:`~flask_kitsession.remove_session` of a
#: session other than the current one.
ADMIN = "admin"

#: The reasons kitsession itself sends with ``session_revoked``.
REVOKE_REASONS: tuple[str, ...] = (LOGOUT, SIGN_OUT_OTHERS, CREDENTIALS_CHANGED, EXPIRED, ADMIN)

__all__ = [
    "ADMIN",
    "CREDENTIALS_CHANGED",
    "EXPIRED",
    "LOGOUT",
    "REVOKE_REASONS",
    "SIGN_OUT_OTHERS",
    "session_authenticated",
    "session_created",
    "session_revoked",
    "session_rotated",
]
