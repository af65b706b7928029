"""View decorators for logging in and out."""

from __future__ import annotations

import functools
import inspect
import typing as t
from datetime import timedelta

from flask import abort
from flask import current_app
from flask import has_request_context
from flask import redirect
from flask import request
from flask import session as flask_session
from flask import url_for
from flask.sessions import NullSession

from .extension import get_state
from .session import ServerSession

F = t.TypeVar("F", bound=t.Callable[..., t.Any])


def request_server_session() -> ServerSession | None:
    """Return the current request's session if it is kitsession's, else
    ``None`` (outside a request, too).
    """
    if not has_request_context():
        return None
    session = flask_session._get_current_object()  # type: ignore[attr-defined]
    return session if isinstance(session, ServerSession) else None


def current_server_session() -> ServerSession:
    """Return the current request's session object.

    :raises RuntimeError: outside a request, or if the app's session is not
        kitsession's.
    """
    session = flask_session._get_current_object()  # type: ignore[attr-defined]
    if isinstance(session, NullSession):
        raise RuntimeError(
            "The session is unavailable because the app has no SECRET_KEY. Set"
            " app.config['SECRET_KEY'] (or KITSESSION_SIGN_COOKIE = False)."
        )
    if not isinstance(session, ServerSession):
        raise RuntimeError(
            "The current session is not a kitsession session. Call"
            " KitSession(app) or kitsession.init_app(app), and do not replace"
            " app.session_interface afterwards."
        )
    return session


def _start_new_session() -> ServerSession:
    session = current_server_session()
    session._start_over(get_state().settings.carried_keys(session))
    return session


def _finish_new_session(session: ServerSession) -> None:
    if not session.modified or not session:
        # The view did not log anyone in: keep the session the visitor had.
        session._undo_start_over()
        return
    # A visitor's cart follows them into their account, or back into the
    # same account; nothing crosses from one user to another.
    session._drop_carried_if_user_changed()


def with_new_session(view: F) -> F:
    """Run the view with a brand-new session (and a new token), for logins.

    A new token at login means a session id planted in the visitor's browser
    before login (session fixation) is worthless. The new session is stored,
    and its cookie set, only if the view puts data in it; the previous session
    is deleted then. If the view leaves it empty (a failed login) or raises,
    the visitor keeps the session they had.

    Keys listed in ``KITSESSION_CARRY_OVER_KEYS`` are carried over into the
    new session, unless it ends up belonging to another user than the one
    before (an anonymous visitor's cart follows them into their account).

    .. code-block:: python

        @app.post("/login")
        @with_new_session
        def login():
            user = check_password(...)
            session["user_id"] = user.id
            return redirect("/")

    .. versionadded:: 0.1
    """
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            session = _start_new_session()
            try:
                rv = await view(*args, **kwargs)
            except BaseException:
                session._undo_start_over()
                raise
            _finish_new_session(session)
            return rv

        return t.cast(F, async_wrapper)

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        session = _start_new_session()
        try:
            rv = view(*args, **kwargs)
        except BaseException:
            session._undo_start_over()
            raise
        _finish_new_session(session)
        return rv

    return t.cast(F, wrapper)


def with_delete_session(view: F) -> F:
    """Delete the current session after the view returns, for logouts.

    The stored session is deleted and the cookie expired when the response is
    sent. The view itself still sees the session (to say goodbye by name).
    If the view raises (say, a failed CSRF check), nothing is deleted.

    .. versionadded:: 0.1
    """
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            rv = await view(*args, **kwargs)
            current_server_session()._delete = True
            return rv

        return t.cast(F, async_wrapper)

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        rv = view(*args, **kwargs)
        current_server_session()._delete = True
        return rv

    return t.cast(F, wrapper)


def fresh_login_required(
    max_age: timedelta | float, *, reauthenticate_view: str | None = None
) -> t.Callable[[F], F]:
    """Let only a session whose user logged in (or re-entered their password)
    less than ``max_age`` ago through: for pages that change a password, an
    email address or a payment method.

    Anyone else is sent to the view named by ``reauthenticate_view`` (or
    ``KITSESSION_REAUTHENTICATE_VIEW``) with ``next`` set to the page they
    wanted, or gets ``401 Unauthorized`` when no view is named. After the
    password check there, call :func:`~flask_kitsession.refresh_authentication`.

    .. code-block:: python

        @app.route("/account/password", methods=["GET", "POST"])
        @fresh_login_required(max_age=timedelta(minutes=10))
        def change_password(): ...

    :param max_age: How long a login counts as fresh (a timedelta or seconds).
    :param reauthenticate_view: The endpoint that asks for the password again.

    .. versionadded:: 0.1
    """
    if not isinstance(max_age, timedelta):
        max_age = timedelta(seconds=max_age)
    limit = max_age

    def is_fresh() -> bool:
        session = current_server_session()
        if session.user_id is None:
            return False
        if session.record is None:
            return True  # logged in by this very request
        authenticated_at = session.authenticated_at
        now = get_state().interface.clock()
        return authenticated_at is not None and now - authenticated_at <= limit

    def refuse() -> t.Any:
        view = reauthenticate_view or current_app.config.get("KITSESSION_REAUTHENTICATE_VIEW")
        if view is None:
            abort(401)
        return redirect(url_for(view, next=request.full_path.rstrip("?")))

    def decorator(view: F) -> F:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
                if not is_fresh():
                    return refuse()
                return await view(*args, **kwargs)

            return t.cast(F, async_wrapper)

        @functools.wraps(view)
        def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            if not is_fresh():
                return refuse()
            return view(*args, **kwargs)

        return t.cast(F, wrapper)

    return decorator
