"""The session object a view sees as :data:`flask.session`."""

from __future__ import annotations

import typing as t
from datetime import datetime

from flask.sessions import SessionMixin
from werkzeug.datastructures import CallbackDict

from . import tokens
from .stores.base import SessionRecord
from .stores.base import user_id_from_data

T = t.TypeVar("T")


def _on_update(session: ServerSession) -> None:
    session.modified = True
    session.accessed = True


#: ``_start_over`` reads the previous user from the data.
_FROM_DATA: t.Any = object()


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
        record = session.record
        return None if record is None else t.cast(T, getattr(record, self.name))


class ServerSession(CallbackDict[str, t.Any], SessionMixin):
    """A server-side session: a dict of data plus what the store knows about it.

    Only a random token travels in the cookie; the data, the user it belongs
    to and its timestamps stay on the server. Setting ``session["user_id"]``
    (or ``id``, ``userId``, Flask-Login's ``_user_id``) links the session to
    a user.

    As with Flask's own session, changes to mutable values inside the session
    (``session["cart"].append(item)``) are not noticed: set
    :attr:`modified` to ``True`` after them.

    :param initial: The session data.
    :param record: What the store returned for this session; ``None`` for a
        new session that is not stored yet.
    :param token: The cookie token the session was found by.
    :param user_id_from: Reads the user id from the data (the store's rule).
    :param load_user: Loads a user by id, for :attr:`user` when the session
        is linked to a user that was not loaded with it.
    :param attach_user: Prepares the user the first time :attr:`user` is
        read (attaches it to the app's ORM session).
    :param check_value: Called with each key and value assigned (``[]=``,
        ``update``, ``setdefault``); raises if the value could never be
        stored, so the error points at the assignment.

    .. versionadded:: 0.1
    """

    # What a request may change about the session's fate; class-level
    # defaults, so that making a session (every request does) sets only what
    # differs from them.

    #: Set when the session must be deleted at the end of the request.
    _delete = False
    #: Set when the session must get a new token at the end of the request.
    _rotate = False
    #: The stored session a new session replaces (a login), if any.
    _replaces: SessionRecord | None = None
    #: Keys carried over into a new session (only ever replaced, never
    #: changed in place), and whose session it was.
    _carried: dict[str, t.Any] = {}
    _previous_user_id: t.Any = None
    #: Set when the user proved who they are again (a fresh login).
    _reauthenticated = False
    #: Set when the client sent a cookie that named no valid session.
    _stale_cookie = False
    #: Set when the cookie was signed with an old key (SECRET_KEY_FALLBACKS):
    #: the response signs it again with the current one.
    _resign = False
    #: Set when the session was not loaded and must not be saved.
    _skip_save = False
    #: The user, whose id it was loaded for, and whether it was attached.
    _user: t.Any = None
    _user_loaded_for: t.Any = None
    _user_attached = False

    def __init__(
        self,
        initial: t.Mapping[str, t.Any] | None = None,
        *,
        record: SessionRecord | None = None,
        token: str | None = None,
        user_id_from: t.Callable[[t.Mapping[str, t.Any]], t.Any] | None = None,
        load_user: t.Callable[[t.Any], t.Any] | None = None,
        attach_user: t.Callable[[t.Any], t.Any] | None = None,
        check_value: t.Callable[[str, t.Any], None] | None = None,
    ) -> None:
        super().__init__(initial, _on_update)
        #: What the store holds for this session; ``None`` while it is new.
        self.record = record
        self.new = record is None
        self.modified = False
        self.accessed = False
        self._token = token
        self._id = record.id if record is not None else None
        self._user_id_from = user_id_from
        self._load_user = load_user
        self._attach_user = attach_user
        self._check_value = check_value
        if record is not None:
            self._user = record.user
            self._user_loaded_for = record.user_id

    # -- data access marks the session as accessed, like Flask's own ------------

    def __getitem__(self, key: str) -> t.Any:
        self.accessed = True
        return super().__getitem__(key)

    def get(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        return super().get(key, default)

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        self.accessed = True
        if self._check_value is not None and key not in self:
            self._check_value(key, default)
        return super().setdefault(key, default)

    # -- values that could never be stored are refused where they are set --------

    def __setitem__(self, key: str, value: t.Any) -> None:
        if self._check_value is not None:
            self._check_value(key, value)
        super().__setitem__(key, value)

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        values = dict(*args, **kwargs)
        if self._check_value is not None:
            for key, value in values.items():
                self._check_value(key, value)
        super().update(values)

    # -- what the store knows -------------------------------------------------

    @property
    def id(self) -> str:
        """The session id: the hex SHA-256 of its token.

        Safe to show and to send in forms ("sign out this device"): it cannot
        be turned back into a cookie. A new session gets its id (and token)
        the first time it is asked for.
        """
        if self._id is None:
            self._token = tokens.new_token()
            self._id = tokens.session_id_for(self._token)
        return self._id

    @property
    def user_id(self) -> t.Any:
        """The id of the user the session belongs to, or ``None``."""
        if self._user_id_from is None:
            return user_id_from_data(self)
        return self._user_id_from(self)

    @property
    def user(self) -> t.Any:
        """The session's user, loaded with the session in the same query.

        If the request links the session to another user, that user is
        loaded the first time it is asked for.
        """
        user_id = self.user_id
        if user_id != self._user_loaded_for:
            self._user = (
                self._load_user(user_id) if self._load_user and user_id is not None else None
            )
            self._user_loaded_for = user_id
            self._user_attached = False
        if not self._user_attached:
            self._user_attached = True
            if self._attach_user is not None and self._user is not None:
                self._user = self._attach_user(self._user)
        return self._user

    @property
    def is_authenticated(self) -> bool:
        """Whether the session belongs to a user."""
        return self.user_id is not None

    #: When the session was stored first.
    created_at: _RecordField[datetime] = _RecordField()
    #: When the session's data was written last.
    updated_at: _RecordField[datetime] = _RecordField()
    #: When a request last used the session (to within the touch interval).
    last_seen_at: _RecordField[datetime] = _RecordField()
    #: When the session expires unless it is used again.
    expires_at: _RecordField[datetime] = _RecordField()
    #: When the session was last linked to a user (the login time).
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
        if not self.new:
            self._rotate = True

    def _start_over(
        self,
        carry: t.Iterable[str] = (),
        *,
        keep: t.Iterable[str] = (),
        previous_user_id: t.Any = _FROM_DATA,
    ) -> None:
        """Turn into a brand-new session (with a new token) that will replace
        the current one if it gets any data.

        :param carry: Keys carried over from the current data, unless the
            session ends up belonging to another user than before (see
            :meth:`_drop_carried_if_user_changed`).
        :param keep: Keys kept in any case (what a login itself just wrote).
        :param previous_user_id: Whose session it was; read from the data
            unless given.
        """
        if previous_user_id is _FROM_DATA:
            previous_user_id = self.user_id
        carried = {key: dict.__getitem__(self, key) for key in carry if key in self}
        kept = {key: dict.__getitem__(self, key) for key in keep if key in self}
        self._saved_state = (
            dict(self),
            self.record,
            self._token,
            self._id,
            self.new,
            self.modified,
        )
        self._replaces = self.record
        self._carried = carried
        self._previous_user_id = previous_user_id
        dict.clear(self)
        dict.update(self, carried)
        dict.update(self, kept)
        self.record = None
        self._token = None
        self._id = None
        self.new = True
        self.modified = False
        self._user = None
        self._user_loaded_for = None
        self._user_attached = False

    def _drop_carried_if_user_changed(self) -> None:
        """Drop the carried-over keys if the session now belongs to another
        user than before: nothing crosses from one user to the next.
        """
        previous, carried = self._previous_user_id, self._carried
        if previous is None or not carried or self.user_id == previous:
            return
        for key, value in carried.items():
            # A key the login view set itself is not a carried one.
            if key in self and dict.__getitem__(self, key) is value:
                dict.__delitem__(self, key)
        self._carried = {}

    def _undo_start_over(self) -> None:
        """Go back to the session :meth:`_start_over` replaced."""
        data, record, token, session_id, new, modified = self._saved_state
        dict.clear(self)
        dict.update(self, data)
        self.record = record
        self._token = token
        self._id = session_id
        self.new = new
        self.modified = modified
        self._replaces = None
        self._user = record.user if record is not None else None
        self._user_loaded_for = record.user_id if record is not None else None
        self._user_attached = False

    def __repr__(self) -> str:
        state = "new" if self.new else self.id[:8] + "…"
        return f"<{type(self).__name__} {state} user={self.user_id!r} {dict.__repr__(self)}>"
