"""The store contract: what every session store provides, and the rules they share.

A store only talks to its storage. What a session *means* (when it expires,
which user it belongs to, how its data is encoded) is decided once, here and
in :mod:`flask_kitsession.interface`, so every store behaves the same.
"""

from __future__ import annotations

import dataclasses
import typing as t
from dataclasses import dataclass
from datetime import datetime

from ..exceptions import UnknownUserError
from ..serialization import SessionSerializer
from ..userkey import UserKeyType


@dataclass(slots=True)
class SessionRecord:
    """One stored session, as a store reads and writes it.

    .. versionadded:: 0.1
    """

    #: The session id: the hex SHA-256 of the cookie token.
    id: str
    #: The session data (decoded: plain Python values).
    data: dict[str, t.Any]
    #: The user the session belongs to, or ``None`` for an anonymous session.
    user_id: t.Any
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime
    #: When the session stops being valid: the idle timeout from
    #: :attr:`last_seen_at`, capped by the absolute timeout from :attr:`created_at`.
    expires_at: datetime
    #: When the session was last linked to a user.
    authenticated_at: datetime | None = None
    user_agent: str | None = None
    ip_address: str | None = None
    #: The user loaded together with the session, when the store can.
    user: t.Any = None


#: Keys of the session data that name the session's user; the first one present
#: wins. ``_user_id`` is Flask-Login's key.
USER_ID_KEYS: tuple[str, ...] = ("user_id", "_user_id", "userId", "id")


def user_id_from_data(data: t.Mapping[str, t.Any], keys: t.Sequence[str] = USER_ID_KEYS) -> t.Any:
    """Return the value of the first of ``keys`` present (and not ``None``) in ``data``."""
    for key in keys:
        value = dict.get(data, key) if isinstance(data, dict) else data.get(key)
        if value is not None:
            return value
    return None


#: What a store keeps of each session besides its id (and the user it loads):
#: :class:`SessionRecord`'s fields, in order.
STORED_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(SessionRecord) if f.name not in ("id", "user")
)


class _AllUsers:
    def __repr__(self) -> str:
        return "ALL_USERS"


#: Default of :meth:`SessionStore.iterate`: sessions of every user and anonymous ones.
ALL_USERS: t.Any = _AllUsers()


class _NoUser:
    def __repr__(self) -> str:
        return "NO_USER"


#: What :meth:`SessionStore._lookup_id` returns for an id no user can have.
NO_USER: t.Any = _NoUser()


class SessionStore:
    """Base class of session stores.

    Subclasses provide the storage methods below. Every method is safe to
    call from several threads at once. Stores never create a session as a
    side effect of saving one: :meth:`update` and :meth:`touch` change rows
    that exist and report whether they did, so a session revoked while a
    request was in flight stays revoked.

    :param serializer: Encodes session data; shared by all stores so that
        sessions move between them without loss.

    .. versionadded:: 0.1
    """

    #: Keys of the session data that name the session's user; the first one
    #: present wins.
    user_id_keys: t.ClassVar[tuple[str, ...]] = USER_ID_KEYS

    #: Whether expired sessions must be deleted by :meth:`purge_expired`
    #: (stores whose storage expires entries by itself set this to false).
    needs_purge: t.ClassVar[bool] = True

    #: What user ids are: the user key's type and range. Every user id that
    #: comes in (from session data, Flask-Login, a command line) is converted
    #: by it, once; see :mod:`flask_kitsession.userkey`.
    user_key_type: UserKeyType = UserKeyType()

    def __init__(self, *, serializer: SessionSerializer | None = None) -> None:
        self.serializer = serializer if serializer is not None else SessionSerializer()

    @property
    def user_id_type(self) -> type | None:
        """The Python type of user ids (``int``, ``str``, ``uuid.UUID``), or
        ``None`` when the store does not know it. Setting a type (or a
        :class:`~flask_kitsession.userkey.UserKeyType`) sets :attr:`user_key_type`.
        """
        return self.user_key_type.python_type

    @user_id_type.setter
    def user_id_type(self, value: type | UserKeyType | None) -> None:
        self.user_key_type = UserKeyType.of(value)

    # -- the shared rules ---------------------------------------------------

    def user_id_from(self, data: t.Mapping[str, t.Any]) -> t.Any:
        """Return the user named by the session data, or ``None``.

        The first of :attr:`user_id_keys` present in ``data`` names the user,
        converted to the type of the user table's key by :meth:`coerce_user_id`.

        :raises UnknownUserError: naming the key, if its value cannot be a
            user id at all.
        """
        for key in self.user_id_keys:
            value = dict.get(data, key) if isinstance(data, dict) else data.get(key)
            if value is not None:
                try:
                    return self.user_key_type.coerce(value)
                except UnknownUserError as e:
                    raise UnknownUserError(f"session[{key!r}] names no user: {e}") from None
        return None

    def coerce_user_id(self, value: t.Any) -> t.Any:
        """Convert a user id from the app, Flask-Login (``"42"`` for user
        ``42``) or a command line to the type of the user table's key: the one
        conversion, by :attr:`user_key_type`. Store writes take ids converted
        already.

        :raises UnknownUserError: if the value cannot be any user's id (of
            another type, outside the key column's range, too long for it).
        """
        return self.user_key_type.coerce(value)

    def _lookup_id(self, value: t.Any) -> t.Any:
        """Return ``value`` converted for a lookup, or :data:`NO_USER` if no
        user can have it (a lookup then finds nothing, as for any unknown id).
        """
        try:
            return self.user_key_type.coerce(value)
        except UnknownUserError:
            return NO_USER

    def user_id_of(self, user: t.Any) -> t.Any:
        """Return the id sessions link ``user`` by: for a user object (one
        with Flask-Login's ``get_id()``), the id it gives; for an id, the id,
        as given (a lookup converts it, and finds nothing for an id no user
        can have).

        .. versionadded:: 0.1
        """
        get_id = getattr(user, "get_id", None)
        return get_id() if callable(get_id) else user

    def check_login(self, user: t.Any) -> None:
        """Raise :exc:`UnknownUserError` if sessions cannot link ``user`` by
        the id Flask-Login stores for it (``user.get_id()``), naming the
        setting that fixes it. Called by ``login_user()``, before anything is
        written. The base class checks that the id converts to
        :attr:`user_id_type`.

        .. versionadded:: 0.1
        """
        user_id = self.user_id_of(user)
        if user_id is not None:
            self.coerce_user_id(user_id)

    def check_user(self, user_id: t.Any) -> None:
        """Raise :exc:`UnknownUserError` if the store can tell that no user
        has ``user_id``.

        Called before a session is written that is linked to a user for the
        first time (a login), so that nothing is written then. The base
        class checks nothing: a SQL store's foreign key refuses the write
        by itself, and a store that knows no users cannot tell.

        .. versionadded:: 0.1
        """

    def load_user(self, user_id: t.Any) -> t.Any:
        """Return the user with ``user_id``, or ``None``.

        Used when a request links its session to a user that was not loaded
        with the session. Stores that know no users return ``None``.
        """
        return None

    def attach_user(self, user: t.Any) -> t.Any:
        """Prepare a loaded user for use in a request (attach it to the app's
        ORM session, say). Called once per request, the first time
        ``session.user`` is read. The base class returns it as it is.
        """
        return user

    # -- the storage contract -----------------------------------------------

    def get(self, session_id: str, now: datetime) -> SessionRecord | None:
        """Return the session with ``session_id`` if it exists and has not
        expired at ``now``, with its user loaded where the store can.
        """
        raise NotImplementedError("subclasses of SessionStore must provide get()")

    def create(self, record: SessionRecord, *, replaces: str | None = None) -> None:
        """Store a new session.

        :param record: The session to store.
        :param replaces: Id of a session to delete at the same time, as one
            change where the storage allows (a login replacing the visitor's
            previous session).
        :raises SessionExistsError: if a session with ``record.id`` exists.
        """
        raise NotImplementedError("subclasses of SessionStore must provide create()")

    def update(self, record: SessionRecord, *, previous_id: str | None = None) -> bool:
        """Write the data, user and timestamps of an existing session.

        :param record: The session, with its new values.
        :param previous_id: When the session gets a new token, the id it is
            stored under now; it is renamed to ``record.id``.
        :return: ``False`` if the session no longer exists (it was deleted or
            revoked meanwhile); nothing is written then.
        """
        raise NotImplementedError("subclasses of SessionStore must provide update()")

    def touch(
        self,
        session_id: str,
        *,
        last_seen_at: datetime,
        expires_at: datetime,
        ip_address: str | None = None,
    ) -> bool:
        """Record that an unchanged session was used: move its last-seen time
        and expiry (sliding expiry) without writing its data.

        :return: ``False`` if the session no longer exists.
        """
        raise NotImplementedError("subclasses of SessionStore must provide touch()")

    def delete(self, session_id: str) -> bool:
        """Delete one session. Return whether it existed."""
        raise NotImplementedError("subclasses of SessionStore must provide delete()")

    def delete_all_for_user(self, user_id: t.Any, *, keep: str | None = None) -> int:
        """Delete every session of ``user_id`` except the one with id ``keep``.

        :return: How many sessions were deleted.
        """
        raise NotImplementedError("subclasses of SessionStore must provide delete_all_for_user()")

    def iterate(
        self,
        *,
        user_id: t.Any = ALL_USERS,
        now: datetime | None = None,
        batch_size: int = 500,
    ) -> t.Iterator[SessionRecord]:
        """Yield stored sessions in batches, never the whole store in memory.

        :param user_id: Only this user's sessions; ``None`` for anonymous ones.
        :param now: If given, only sessions that have not expired at ``now``.
        :param batch_size: How many sessions are read at a time.
        """
        raise NotImplementedError("subclasses of SessionStore must provide iterate()")

    def purge_expired(
        self,
        now: datetime | None = None,
        *,
        batch_size: int = 1000,
        progress: t.Callable[[int], None] | None = None,
    ) -> int:
        """Delete sessions that expired before ``now``, ``batch_size`` at a
        time, so no single deletion holds locks for long.

        :param now: The time to compare with; ``None`` for the store's own
            clock (the database server's, for SQL stores: one clock for every
            app server that runs a cleanup).
        :param progress: Called after each batch with how many sessions it
            deleted (``flask kitsession cleanup`` shows a running count).
        :return: How many sessions were deleted.

        .. versionchanged:: 0.1
            The ``progress`` parameter.
        """
        raise NotImplementedError("subclasses of SessionStore must provide purge_expired()")

    def close(self) -> None:
        """Release the store's connections. The base class has none."""
