"""Helpers for testing an app that uses kitsession: log a test client in as a
user, look at its stored session, revoke it.

.. code-block:: python

    from flask_kitsession.testing import login, revoke, session_of

    def test_profile(app):
        client = app.test_client()
        login(client, user.id)
        assert client.get("/profile").status_code == 200
        assert session_of(client).user_id == user.id
        revoke(client)
        assert client.get("/profile").status_code in (302, 401)

Each login is a real session in the app's store, made by
:func:`~flask_kitsession.create_session`, and the client gets its cookie:
the app sees exactly what it sees after a login of its own. With
Flask-Login on the app, the session holds what ``login_user`` writes, so
``current_user`` is the user and Flask-Login's session protection is
satisfied.

Or, like Flask-Login's ``FlaskLoginClient``, a client class:

.. code-block:: python

    app.test_client_class = KitSessionClient
    client = app.test_client(user=user)

.. versionadded:: 0.1
"""

from __future__ import annotations

import typing as t

from flask import Flask
from flask.testing import FlaskClient

from . import tokens
from .helpers import create_session
from .helpers import remove_session
from .interface import get_interface
from .interface import KitSessionInterface
from .login import login_values
from .session import ServerSession
from .signals import ADMIN

__all__ = ["KitSessionClient", "login", "revoke", "session_of"]


def login(
    client: FlaskClient,
    user: t.Any,
    *,
    fresh: bool = True,
    permanent: bool = False,
    data: t.Mapping[str, t.Any] | None = None,
) -> ServerSession:
    """Log ``client`` in as ``user``: store a new session of that user and
    give the client its cookie.

    The session is made as if the client had logged in: with its user agent
    and address, so that a "your devices" page lists it. A session the
    client had before is left in the store, as another device's would be
    (:func:`revoke` it first to end it).

    :param client: A test client of the app (``app.test_client()``).
    :param user: The user's id, or a user with Flask-Login's ``get_id()``.
    :param fresh: Whether the login counts as fresh: ``False`` is a login
        from a remember cookie, which :func:`~flask_kitsession.fresh_login_required`
        and Flask-Login's ``fresh_login_required`` refuse.
    :param permanent: Whether the session outlives the browser (a
        permanent cookie).
    :param data: More session data.
    :return: The stored session.
    :raises UnknownUserError: if the store knows no such user (SQL stores).

    .. versionadded:: 0.1
    """
    app = client.application
    user_id = user.get_id() if callable(getattr(user, "get_id", None)) else user
    values = dict(data or {})
    # The client's own address and user agent, as a request of it would have.
    with app.test_request_context(environ_base=client.environ_base):
        flask_login = login_values(app, user_id, fresh=fresh)
        if flask_login:
            session = create_session(data={**values, **flask_login}, permanent=permanent)
        else:
            if not fresh:
                # kitsession reads Flask-Login's flag in any app.
                values["_fresh"] = False
            session = create_session(user_id, values, permanent=permanent)
        interface = get_interface(app)
        token = session.lifecycle.token
        assert token is not None  # create_session() made it
        domain, origin_only = _cookie_domain(app, interface)
        client.set_cookie(
            interface.get_cookie_name(app),
            interface.signer.dumps(app, token),
            domain=domain,
            origin_only=origin_only,
            path=interface.get_cookie_path(app),
            secure=interface.get_cookie_secure(app),
            httponly=interface.get_cookie_httponly(app),
            samesite=interface.get_cookie_samesite(app),
            # A permanent session's cookie expires with the stored session.
            expires=interface.get_expiration_time(app, session),
        )
    return session


def session_of(client: FlaskClient) -> ServerSession | None:
    """Return the stored session that ``client``'s cookie names, or ``None``
    when it has no cookie, or one that names no live session (logged out,
    revoked, expired, tampered with).

    Read its user with :attr:`~flask_kitsession.ServerSession.user` inside
    ``app.app_context()`` when the user comes from Flask-SQLAlchemy.

    .. versionadded:: 0.1
    """
    app = client.application
    interface = get_interface(app)
    domain, _ = _cookie_domain(app, interface)
    cookie = client.get_cookie(
        interface.get_cookie_name(app), domain=domain, path=interface.get_cookie_path(app)
    )
    if cookie is None or not cookie.value:
        return None
    token, _ = interface.signer.loads_checking_key(app, cookie.value)
    if token is None:
        return None
    record = interface.store.get(tokens.session_id_for(token), interface.clock())
    return None if record is None else interface.make_session(record, token)


def revoke(client: FlaskClient, *, reason: str = ADMIN) -> bool:
    """Delete the stored session of ``client``, as "sign out this device"
    from another device would. The client keeps its cookie, which now names
    nothing: its next request is anonymous.

    :param reason: The ``reason`` of :data:`~flask_kitsession.signals.session_revoked`.
    :return: Whether the client had a stored session.

    .. versionadded:: 0.1
    """
    session = session_of(client)
    if session is None:
        return False
    with client.application.app_context():
        return remove_session(session, reason=reason)


class KitSessionClient(FlaskClient):
    """A test client that can be logged in as a user, like Flask-Login's
    ``FlaskLoginClient``:

    .. code-block:: python

        app.test_client_class = KitSessionClient
        client = app.test_client(user=user)

    :param user: Log in as this user (an id, or a user with ``get_id()``)
        right away; see :func:`login`.
    :param fresh: Whether that login counts as fresh.

    .. versionadded:: 0.1
    """

    def __init__(
        self, *args: t.Any, user: t.Any = None, fresh: bool = True, **kwargs: t.Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if user is not None:
            self.login(user, fresh=fresh)

    def login(self, user: t.Any, **kwargs: t.Any) -> ServerSession:
        """Log in as ``user``; the keyword arguments of :func:`login`."""
        return login(self, user, **kwargs)

    @property
    def server_session(self) -> ServerSession | None:
        """The stored session this client's cookie names (:func:`session_of`)."""
        return session_of(self)

    def revoke(self, *, reason: str = ADMIN) -> bool:
        """Delete this client's stored session (:func:`revoke`)."""
        return revoke(self, reason=reason)


def _cookie_domain(app: Flask, interface: KitSessionInterface) -> tuple[str, bool]:
    """Where the test client keeps the session cookie: the configured cookie
    domain (its subdomains too), or the host the client sends requests to.
    """
    domain = interface.get_cookie_domain(app)
    if domain:
        return domain.lstrip("."), False
    server_name = app.config["SERVER_NAME"] or "localhost"
    return server_name.partition(":")[0], True
