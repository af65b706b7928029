"""Functions to create, find and remove sessions, in requests and outside them.

They act on the current app's store, so outside a request they need an app
context (``with app.app_context():``), as in a CLI command or a job.
"""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import session as flask_session
from werkzeug.wrappers import Response

from . import notify
from . import tokens
from .interface import get_interface
from .login import confirm_fresh_login
from .login import login_values
from .models import utc_now
from .session import current_server_session
from .session import request_server_session
from .session import ServerSession
from .signals import ADMIN
from .signals import CREDENTIALS_CHANGED
from .signals import EXPIRED
from .signals import SIGN_OUT_OTHERS
from .state import get_state

#: :data:`flask.session`, typed as the :class:`ServerSession` it is under
#: kitsession, for code checked by mypy: ``current_session.user_id``.
current_session: ServerSession = t.cast(ServerSession, flask_session)


def _session_id(session: ServerSession | str) -> str:
    if isinstance(session, str):
        return session
    if isinstance(session, ServerSession):
        return session.id
    raise TypeError(f"Expected a ServerSession or a session id, got {session!r}.")


def _is_current(session: ServerSession | str) -> ServerSession | None:
    """Return the request's session if ``session`` is it (or its id: the
    stored session it arrived as, or the one it becomes at the end of the
    request).
    """
    current = request_server_session()
    if current is None:
        return None
    if session is current:
        return current
    if isinstance(session, ServerSession):
        session = session.id
    return current if session in (current.lifecycle.stored_id, current.id) else None


def _kept_ids(session: ServerSession | str) -> list[str]:
    """The ids of the stored sessions that "all but this one" keeps, the
    session's own first: for the request's own session, the stored session
    it stands for, which the end of the request may yet rename (a re-login,
    ``regenerate()``), and, while a hand-over is pending, the one the browser
    arrived with, which it keeps if the request fails.
    """
    current = _is_current(session)
    if current is None:
        return [_session_id(session)]
    lifecycle = current.lifecycle
    kept = [lifecycle.stored_id or current.id]
    if lifecycle.handed and lifecycle.arrived is not None and lifecycle.arrived not in kept:
        kept.append(lifecycle.arrived)
    return kept


def create_session(
    user_id: t.Any = None,
    data: t.Mapping[str, t.Any] | None = None,
    *,
    permanent: bool = False,
) -> ServerSession:
    """Create and store a new session, apart from the current request's.

    Use it to sign a user in from somewhere other than a login view (a magic
    link, an API, a test), then :func:`set_session_cookie` to hand it out.

    :param user_id: The user the session belongs to; stored as
        ``data["user_id"]`` unless ``data`` names the user itself. In an app
        with Flask-Login, also as ``login_user()`` stores it (``_user_id``,
        ``_fresh``, and the ``_id`` of the request's browser), so that
        ``current_user`` is that user and the login is fresh.
    :param data: The session data.
    :param permanent: Whether the cookie outlives the browser session.
    :raises ValueError: if ``user_id`` and the data name different users.

    .. versionadded:: 0.1
    """
    interface = get_interface()
    session = interface.make_session()
    if data:
        session.update(data)
    if user_id is not None:
        named = session.user_id
        if named is None:
            # In a Flask-Login app, also as login_user() would have linked it.
            app = current_app._get_current_object()  # type: ignore[attr-defined]
            session.update({"user_id": user_id, **login_values(app, user_id)})
        elif named != interface.store.coerce_user_id(user_id):
            # Neither id is quoted: both are session data.
            raise ValueError(
                "The data names user keys of another user than user_id: a session"
                " belongs to one user."
            )
    if permanent:
        session.permanent = True
    interface.persist(session)
    return session


def get_session(session_id: str) -> ServerSession | None:
    """Return the stored session with ``session_id`` (as in :attr:`ServerSession.id`),
    or ``None`` if there is none or it has expired. Ids that are not
    well-formed, such as one edited in a form, give ``None`` too.

    .. versionadded:: 0.1
    """
    if not isinstance(session_id, str) or not tokens.is_session_id(session_id):
        return None
    interface = get_interface()
    record = interface.store.get(session_id, interface.clock())
    return None if record is None else interface.make_session(record)


def get_all_sessions(
    *, include_expired: bool = False, batch_size: int = 500
) -> t.Iterator[ServerSession]:
    """Iterate over every stored session, ``batch_size`` at a time from the
    store, so the whole table is never in memory.

    .. versionadded:: 0.1
    """
    interface = get_interface()
    now = None if include_expired else interface.clock()
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    for record in interface.store.iterate(now=now, batch_size=batch_size):
        yield interface.make_session(record)


def get_sessions_for_user(user_id: t.Any, *, include_expired: bool = False) -> list[ServerSession]:
    """Return the sessions of ``user_id``, most recently used first: the
    "your devices" list.

    :param user_id: The user (an object with Flask-Login's ``get_id()``, such
        as ``current_user``) or their id as sessions store it
        (``current_session.user_id``). Nobody (``None``, Flask-Login's
        anonymous user) has no sessions: the list is empty, never the
        anonymous visitors' sessions.

    .. versionchanged:: 0.2
        Nobody's sessions are none.

    .. versionadded:: 0.1
    """
    interface = get_interface()
    user_id = interface.store.user_id_of(user_id)
    if user_id is None:
        return []
    now = None if include_expired else interface.clock()
    sessions = [
        interface.make_session(r) for r in interface.store.iterate(user_id=user_id, now=now)
    ]
    sessions.sort(key=lambda s: s.last_seen_at or s.created_at, reverse=True)  # type: ignore[arg-type, return-value]
    return sessions


def set_session(session: ServerSession, data: t.Mapping[str, t.Any]) -> bool:
    """Replace a session's data and store it now.

    It never changes whose session it is: to sign a user in, use a login
    view (:func:`with_new_session`, Flask-Login's ``login_user``) or
    :func:`create_session`.

    :return: ``False`` if the session no longer exists (it is not re-created).
    :raises ValueError: if ``data`` names another user than the session's.

    .. versionadded:: 0.1
    """
    interface = get_interface()
    lifecycle = session.lifecycle
    for key in lifecycle.context.settings.user_id_keys:
        if key in data and lifecycle.user_from({key: data[key]}) != session.user_id:
            # Every user key must name the session's user: neither kitsession
            # nor Flask-Login may read another one from it.
            raise ValueError(
                f"The data's {key!r} names another user than the session's:"
                " set_session() never changes whose session it is."
            )
    if session.user_id is not None and lifecycle.user_from(data) is None:
        raise ValueError(
            "The data names no user, but the session belongs to one:"
            " set_session() never changes whose session it is."
        )
    for key, value in data.items():
        lifecycle.check_value(key, value)
    dict.clear(session)
    dict.update(session, data)
    session.modified = True
    return interface.persist(session)


def remove_session(session: ServerSession | str, *, reason: str | None = None) -> bool:
    """Delete a session (an object or an id). If it is the current request's,
    it ends as at a logout: it is deleted, and its cookie expired, when the
    request's session is saved (a request that fails with a 5xx keeps it).

    :param session: The session, or its id.
    :param reason: The ``reason`` of :data:`~flask_kitsession.signals.session_revoked`;
        by default ``"logout"`` for the current session and ``"admin"`` for
        another one.
    :return: Whether the session existed.

    .. versionadded:: 0.1
    """
    if reason is not None:
        notify.check_reason(reason)
    session_id = _session_id(session)
    if not tokens.is_session_id(session_id):
        return False  # not an id at all (edited in a form, say): no such session
    current = _is_current(session)
    user_id = notify.owner_of(session, current)
    if current is not None:
        # Deleted when the request's session is saved: a request that fails
        # (5xx) keeps the session, as it keeps every other change.
        current.lifecycle.end(current)
        if reason is not None:
            # Told when the save deletes it (a 5xx keeps it, and tells nothing).
            notify.end_reason(session_id, reason)
        return True
    removed = get_state().store.delete(session_id)
    if removed:
        notify.revoked(user_id=user_id, session_id=session_id, count=1, reason=reason or ADMIN)
    return removed


def remove_all_sessions_for_user(
    user_id: t.Any,
    session: ServerSession | str | None = None,
    *,
    reason: str = SIGN_OUT_OTHERS,
) -> int:
    """Delete every session of ``user_id`` except ``session``: "sign out from
    all other devices". One indexed ``DELETE`` on SQL stores.

    :param user_id: Whose sessions to delete: the user (an object with
        Flask-Login's ``get_id()``, such as ``current_user``) or their id as
        sessions store it (``current_session.user_id``).
    :param session: The session to keep (an object or an id), usually the
        current one; ``None`` deletes them all.
    :param reason: The ``reason`` of :data:`~flask_kitsession.signals.session_revoked`.
    :return: How many sessions were deleted: 0 for nobody (``None``,
        Flask-Login's anonymous user; a signed-out device has no other
        devices).

    .. versionchanged:: 0.2
        Nobody's sessions are none: ``None`` deletes nothing and returns 0,
        where it raised ``ValueError``.

    .. versionadded:: 0.1
    """
    notify.check_reason(reason)
    kept = [] if session is None else _kept_ids(session)
    if kept and not tokens.is_session_id(kept[0]):
        raise ValueError(
            f"{kept[0]!r} is not a session id (the id of the session to keep): nothing was removed."
        )
    store = get_state().store
    user_id = store.user_id_of(user_id)
    if user_id is None:
        return 0
    if len(kept) > 1:
        # A hand-over is pending (rare): one delete per other session.
        count = sum(
            store.delete(record.id)
            for record in list(store.iterate(user_id=user_id))
            if record.id not in kept
        )
    else:
        count = store.delete_all_for_user(user_id, keep=kept[0] if kept else None)
    notify.revoked_for_user(user_id, count, reason)
    return count


def regenerate() -> None:
    """Give the current session a new token at the end of the request,
    keeping its data: call it when a user's privileges change.

    .. versionadded:: 0.1
    """
    current_server_session().regenerate()


def credentials_changed(session: ServerSession | None = None) -> int:
    """After a password (or role) change: sign the user out everywhere else
    and give this session a new token, keeping its data.

    Anyone who learnt the old password, or copied a cookie, is out; the user
    who made the change stays in. Call it in the view that changes them.

    :param session: The session to keep; the current request's by default.
    :return: How many other sessions were deleted.
    :raises ValueError: if the session belongs to no user.

    .. versionadded:: 0.1
    """
    if session is None:
        session = current_server_session()
    if session.user_id is None:
        raise ValueError(
            "The session belongs to no user: there are no credentials, and no"
            " other sessions, to sign out."
        )
    revoked = remove_all_sessions_for_user(session.user_id, session, reason=CREDENTIALS_CHANGED)
    session.regenerate()
    return revoked


def refresh_authentication() -> None:
    """Record that the user just proved who they are again (re-entered their
    password, say): the current session's :attr:`~ServerSession.authenticated_at`
    becomes now, so :func:`fresh_login_required` lets them through. In an app
    with Flask-Login it is also ``confirm_login()``: Flask-Login's
    ``login_fresh()`` agrees, on this browser.

    :raises ValueError: if the session belongs to no user (it expired while
        the password form was open, say): ask them to log in instead.

    .. versionadded:: 0.1
    """
    session = current_server_session()
    session.lifecycle.authenticate()
    confirm_fresh_login(current_app._get_current_object(), session)  # type: ignore[attr-defined]


def set_session_cookie(response: Response, session: ServerSession) -> Response:
    """Set the cookie of ``session`` (made by :func:`create_session`) on
    ``response``, and return the response.

    .. versionadded:: 0.1
    """
    if session.record is None:
        raise ValueError("Store the session first (create_session() does).")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    get_interface(app).set_cookie(app, response, session)
    current = request_server_session()
    if current is not None and current is not session:
        # The browser is handed this session: the request's own session
        # becomes it (what the view writes next goes into it, and the end of
        # the request sets its cookie and deletes the one the browser had;
        # a request that fails deletes the new one instead).
        current.lifecycle.adopt(current, session)
    return response


def remove_session_cookie(response: Response) -> Response:
    """Expire the session cookie on ``response``, and return the response.

    .. versionadded:: 0.1
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    get_interface(app).remove_cookie(app, response)
    return response


def purge_expired(
    *, batch_size: int = 1000, progress: t.Callable[[int], None] | None = None
) -> int:
    """Delete the current app's expired sessions, ``batch_size`` at a time:
    what ``flask kitsession cleanup`` runs, for a job of your own.

    After each batch that deleted sessions,
    :data:`~flask_kitsession.signals.session_revoked` is sent with its count
    and the reason ``"expired"``. Stores that expire sessions by themselves
    (Redis) delete nothing here and send nothing.

    :param batch_size: Sessions deleted per transaction.
    :param progress: Called after each batch with how many it deleted.
    :return: How many sessions were deleted.

    .. versionadded:: 0.1
    """
    state = get_state()
    # The database's own clock, unless the app runs on a clock of its own (tests).
    now = None if state.clock is utc_now else state.clock()

    def batch_done(count: int) -> None:
        notify.revoked(user_id=None, session_id=None, count=count, reason=EXPIRED)
        if progress is not None:
            progress(count)

    return state.store.purge_expired(now, batch_size=batch_size, progress=batch_done)
