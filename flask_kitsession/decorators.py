"""View decorators for logging in and out."""

from __future__ import annotations

import functools
import inspect
import logging
import typing as t
from datetime import timedelta

from flask import abort
from flask import current_app
from flask import redirect
from flask import request
from flask import url_for
from werkzeug.routing import BuildError

from .lifecycle import FRESH_KEY
from .session import current_server_session
from .state import get_state

F = t.TypeVar("F", bound=t.Callable[..., t.Any])

logger = logging.getLogger("flask_kitsession")


def _load_flask_login_user() -> None:
    """Let Flask-Login load the request's user, if the app uses it: its
    session protection may find the login is not fresh (a cookie replayed from
    another browser) and say so in the session, which is read next.
    """
    if getattr(current_app, "login_manager", None) is None:
        return
    from flask_login import current_user

    current_user._get_current_object()


def with_new_session(view: F) -> F:
    """Mark a view as a login: when it links a user, the session starts over
    with a new token.

    A new token at login means a session id planted in the visitor's browser
    before login (session fixation) is worthless. The view links a user by
    writing one of ``KITSESSION_USER_ID_KEYS`` (``session["user_id"] =
    user.id``) or by calling Flask-Login's ``login_user``; a login of the user
    already signed in counts too. The new session holds what the request
    wrote, and the keys of ``KITSESSION_CARRY_OVER_KEYS`` unless it belongs to
    another user than before (an anonymous visitor's cart follows them into
    their account; nothing follows anyone into another account). The previous
    session is deleted when the new one is stored.

    A view that links nobody (a failed login) leaves the visitor's session as
    it was, with what the view wrote into it (a flashed message). A view that
    raises leaves the session as it was before the view.

    .. code-block:: python

        @app.post("/login")
        @with_new_session
        def login():
            user = check_password(...)
            session["user_id"] = user.id
            return redirect("/")

    .. versionchanged:: 0.2
        The view sees the visitor's session until it links a user; a failed
        login keeps the session (and what the view flashed).

    .. versionadded:: 0.1
    """
    if inspect.iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
            session = current_server_session()
            lifecycle = session.lifecycle
            checkpoint = lifecycle.begin_login(session)
            try:
                rv = await view(*args, **kwargs)
            except BaseException:
                lifecycle.abandon_login(session, checkpoint)
                raise
            lifecycle.finish_login()
            return rv

        return t.cast(F, async_wrapper)

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        session = current_server_session()
        lifecycle = session.lifecycle
        checkpoint = lifecycle.begin_login(session)
        try:
            rv = view(*args, **kwargs)
        except BaseException:
            lifecycle.abandon_login(session, checkpoint)
            raise
        lifecycle.finish_login()
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
            session = current_server_session()
            session.lifecycle.end(session)
            return rv

        return t.cast(F, async_wrapper)

    @functools.wraps(view)
    def wrapper(*args: t.Any, **kwargs: t.Any) -> t.Any:
        rv = view(*args, **kwargs)
        session = current_server_session()
        session.lifecycle.end(session)
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
        _load_flask_login_user()
        session = current_server_session()
        if dict.get(session, FRESH_KEY) is False:
            return False  # Flask-Login says so: a remember cookie, say
        now = get_state().clock()
        authenticated_at = session.lifecycle.is_fresh_at(now)
        return authenticated_at is not None and now - authenticated_at <= limit

    def refuse() -> t.Any:
        view = reauthenticate_view or get_state().settings.reauthenticate_view
        if view is None:
            abort(401)
        try:
            target = url_for(view, next=request.full_path.rstrip("?"))
        except BuildError:
            # Views may be registered after init_app, so the name is checked
            # here: a typo is the app's, not the visitor's.
            logger.error(
                "KITSESSION_REAUTHENTICATE_VIEW (or reauthenticate_view=) names %r,"
                " which is not an endpoint of this app; answering 401.",
                view,
            )
            abort(401)
        return redirect(target)

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
