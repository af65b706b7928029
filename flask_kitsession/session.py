"""The session object a view sees as :data:`flask.session`."""

from __future__ import annotations

import typing as t
from datetime import datetime

from flask import has_request_context
from flask import session as flask_session
from flask.sessions import NullSession
from flask.sessions import SessionMixin
from werkzeug.datastructures import CallbackDict

from .lifecycle import SessionLifecycle
from .stores.base import SessionRecord

T = t.TypeVar("T")

_missing: t.Any = object()


def _on_update(session: ServerSession) -> None:
    session.modified = True
    session.accessed = True


class _RecordField(t.Generic[T]):
    """A read-only attribute of the session's stored record; ``None`` while the
    session is new.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @t.overload
    def __get__(self, session: None, owner: type) -> _RecordField[T]: ...

    @t.overload
    def __get__(self, session: ServerSession, owner: type) -> T | None: ...

    def __get__(self, session: ServerSession | None, owner: type) -> T | _RecordField[T] | None:
        if session is None:
            return self
        record = session.lifecycle.record
        return None if record is None else t.cast(T, getattr(record, self.name))


class ServerSession(CallbackDict[str, t.Any], SessionMixin):
    """A server-side session: a dict of data plus what the store knows about it.

    Only a random token travels in the cookie; the data, the user it belongs
    to and its timestamps stay on the server. Writing one of the keys in
    ``KITSESSION_USER_ID_KEYS`` (``user_id``, ``_user_id``, ``userId``, ``id``
    by default) links the session to that user: it is a login, and the
    session starts over with a new token.

    As with Flask's own session, changes to mutable values inside the session
    (``session["cart"].append(item)``) are not noticed: set
    :attr:`modified` to ``True`` after them.

    :param initial: The session data.
    :param lifecycle: The session's fate in this request; its transitions
        are the only way that fate changes.

    .. versionchanged:: 0.2
        Takes its lifecycle instead of the store's callables.

    .. versionadded:: 0.1
    """

    def __init__(
        self, initial: t.Mapping[str, t.Any] | None = None, *, lifecycle: SessionLifecycle
    ) -> None:
        super().__init__(initial, _on_update)
        self.modified = False
        self.accessed = False
        #: What happens to the session in this request (see
        #: :mod:`flask_kitsession.lifecycle`).
        self.lifecycle = lifecycle

    # -- data access marks the session as accessed, like Flask's own ------------

    def __getitem__(self, key: str) -> t.Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        return super().get(key, default)

    # -- every change is told to the lifecycle ----------------------------------
    # Values that could never be stored are refused where they are set, and
    # writing or removing a user key links the session to another user.

    def __setitem__(self, key: str, value: t.Any) -> None:
        lifecycle = self.lifecycle
        lifecycle.check_value(key, value)
        super().__setitem__(key, value)
        lifecycle.wrote(self, (key,))

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        if key in self:
            return dict.__getitem__(self, key)
        self[key] = default
        return default

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        values = dict(*args, **kwargs)
        lifecycle = self.lifecycle
        for key, value in values.items():
            lifecycle.check_value(key, value)
        super().update(values)
        lifecycle.wrote(self, values)

    def __ior__(self, other: t.Any) -> t.Any:  # type: ignore[misc]
        self.update(other)
        return self

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.lifecycle.removed(self, key)

    def pop(self, key: str, default: t.Any = _missing) -> t.Any:
        present = key in self
        value = super().pop(key) if default is _missing else super().pop(key, default)
        if present:
            self.lifecycle.removed(self, key)
        return value

    def popitem(self) -> tuple[str, t.Any]:
        item = super().popitem()
        self.lifecycle.removed(self, item[0])
        return item

    def clear(self) -> None:
        super().clear()
        self.lifecycle.cleared(self)

    # -- what the store knows -------------------------------------------------

    @property
    def record(self) -> SessionRecord | None:
        """What the store holds for this session; ``None`` while it is new."""
        return self.lifecycle.record

    @property
    def new(self) -> bool:  # type: ignore[override]
        """Whether the session is not stored yet (a first visit, or one that
        starts over at a login).
        """
        return self.lifecycle.record is None

    @property
    def id(self) -> str:
        """The session id: the hex SHA-256 of its token.

        Safe to show and to send in forms ("sign out this device"): it cannot
        be turned back into a cookie. A new session gets its id (and token)
        the first time it is asked for.
        """
        return self.lifecycle.session_id

    @property
    def user_id(self) -> t.Any:
        """The id of the user the session belongs to, or ``None``."""
        return self.lifecycle.linked

    @property
    def user(self) -> t.Any:
        """The session's user, loaded with the session in the same query.

        If the request links the session to another user, that user is
        loaded the first time it is asked for.
        """
        return self.lifecycle.user()

    @property
    def is_authenticated(self) -> bool:
        """Whether the session belongs to a user."""
        return self.lifecycle.linked is not None

    #: When the session was stored first (for a session that continues a
    #: login, when that login's first session was).
    created_at: _RecordField[datetime] = _RecordField()
    #: When the session's data was written last.
    updated_at: _RecordField[datetime] = _RecordField()
    #: When a request last used the session (to within the touch interval).
    last_seen_at: _RecordField[datetime] = _RecordField()
    #: When the session expires unless it is used again.
    expires_at: _RecordField[datetime] = _RecordField()
    #: When the user last proved who they are (a fresh login, or
    #: :func:`~flask_kitsession.refresh_authentication`); ``None`` for a login
    #: that was not fresh (a remember cookie).
    authenticated_at: _RecordField[datetime] = _RecordField()
    #: The user agent of the request that created the session.
    user_agent: _RecordField[str] = _RecordField()
    #: The client address last seen with the session.
    ip_address: _RecordField[str] = _RecordField()

    # -- life cycle -------------------------------------------------------------

    def regenerate(self) -> None:
        """Give the session a new token at the end of the request, keeping its
        data. The old cookie stops working. Use it whenever privileges change.
        """
        self.lifecycle.regenerate()

    def __repr__(self) -> str:
        record = self.lifecycle.record
        state = "new" if record is None else record.id[:8] + "…"
        return f"<{type(self).__name__} {state} user={self.user_id!r} {dict.__repr__(self)}>"


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
