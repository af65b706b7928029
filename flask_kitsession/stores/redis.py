"""Sessions in Redis, users wherever the app keeps them (usually SQL).

Each session is a hash under ``<prefix>session:<id>`` whose Redis TTL ends
with the session; each user's sessions are listed in a set under
``<prefix>user:<user id>``, so signing a user out everywhere needs no scan.
Every write is one Lua script: one round trip, and atomic, so the session and
its user's set never disagree and a deleted session is never written back.
"""

from __future__ import annotations

import contextlib
import json
import types
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone

from ..exceptions import SessionExistsError
from ..exceptions import StoreUnavailableError
from ..exceptions import UnknownUserError
from ..serialization import SessionSerializer
from ..userkey import UserKeyType
from .base import ALL_USERS
from .base import NO_USER
from .base import SessionRecord
from .base import SessionStore
from .base import STORED_FIELDS

if t.TYPE_CHECKING:
    import redis

#: The hash fields of a session, in the order :meth:`RedisStore.get` reads them.
_FIELDS = STORED_FIELDS

#: Fields an update writes; ``created_at`` and ``user_agent`` keep their values.
_UPDATED_FIELDS = (
    "data",
    "user_id",
    "updated_at",
    "last_seen_at",
    "expires_at",
    "authenticated_at",
    "ip_address",
)

# Lua shared by the scripts. A session hash names its user's set in the field
# ``user_key`` ('' when anonymous), so a script that deletes or renames a
# session can fix the set without being told whose session it was.
_LUA_USER_SETS = """
local function extend_user_set(user_set, session_key, ttl)
  -- Adding again is cheap, and restores a set lost behind the store's back
  -- (evicted, deleted by hand) with the next write of each session.
  redis.call('SADD', user_set, session_key)
  -- The set lives as long as its longest-lived session, then disappears.
  if redis.call('PTTL', user_set) < ttl then
    redis.call('PEXPIRE', user_set, ttl)
  end
end

local function add_to_user_set(user_set, session_key, ttl)
  -- Sessions that expired through their TTL left their key in the set:
  -- drop those now, so a user who logs in often does not grow it forever.
  for _, member in ipairs(redis.call('SMEMBERS', user_set)) do
    if redis.call('EXISTS', member) == 0 then
      redis.call('SREM', user_set, member)
    end
  end
  extend_user_set(user_set, session_key, ttl)
end

local function remove_from_user_set(session_key)
  local user_set = redis.call('HGET', session_key, 'user_key')
  if user_set and user_set ~= '' then
    redis.call('SREM', user_set, session_key)
  end
end
"""

# KEYS: the new session, its user's set ('' if anonymous), a session it
# replaces (''). ARGV: TTL in ms, then field, value, ... Returns 0 if the id
# is taken. A TTL of zero or less (already expired) stores nothing.
_CREATE = """
local session_key, user_set, replaced = KEYS[1], KEYS[2], KEYS[3]
local ttl = tonumber(ARGV[1])
if redis.call('EXISTS', session_key) == 1 then
  return 0
end
if replaced ~= '' then
  remove_from_user_set(replaced)
  redis.call('DEL', replaced)
end
if ttl > 0 then
  redis.call('HSET', session_key, 'user_key', user_set, unpack(ARGV, 2))
  redis.call('PEXPIRE', session_key, ttl)
  if user_set ~= '' then
    add_to_user_set(user_set, session_key, ttl)
  end
end
return 1
"""

# KEYS: the session's key now, its key after the update (differs when it gets
# a new token), its user's set after the update (''). ARGV: TTL in ms, then
# field, value, ... Returns 1 when written, 0 when the session does not exist
# (it is never re-created), -1 when the new key is taken.
_UPDATE = """
local current, target, user_set = KEYS[1], KEYS[2], KEYS[3]
local ttl = tonumber(ARGV[1])
if redis.call('EXISTS', current) == 0 then
  return 0
end
if target ~= current and redis.call('EXISTS', target) == 1 then
  return -1
end
if ttl <= 0 then
  remove_from_user_set(current)
  redis.call('DEL', current)
  return 1
end
local previous_set = redis.call('HGET', current, 'user_key') or ''
if previous_set ~= user_set or target ~= current then
  if previous_set ~= '' then
    redis.call('SREM', previous_set, current)
  end
  if target ~= current then
    redis.call('RENAME', current, target)
  end
  if user_set ~= '' then
    add_to_user_set(user_set, target, ttl)
  end
end
redis.call('HSET', target, 'user_key', user_set, unpack(ARGV, 2))
redis.call('PEXPIRE', target, ttl)
if user_set ~= '' then
  extend_user_set(user_set, target, ttl)
end
return 1
"""

# KEYS: the session. ARGV: TTL in ms, then field, value, ... Returns 0 when
# the session does not exist.
_TOUCH = """
local session_key = KEYS[1]
local ttl = tonumber(ARGV[1])
if redis.call('EXISTS', session_key) == 0 then
  return 0
end
if ttl <= 0 then
  remove_from_user_set(session_key)
  redis.call('DEL', session_key)
  return 1
end
redis.call('HSET', session_key, unpack(ARGV, 2))
redis.call('PEXPIRE', session_key, ttl)
local user_set = redis.call('HGET', session_key, 'user_key')
if user_set and user_set ~= '' then
  extend_user_set(user_set, session_key, ttl)
end
return 1
"""

# KEYS: the session. Returns 1 if it existed.
_DELETE = """
remove_from_user_set(KEYS[1])
return redis.call('DEL', KEYS[1])
"""

# KEYS: the user's set. ARGV: the key of the session to keep, or ''.
# Returns how many sessions were deleted.
_DELETE_ALL_FOR_USER = """
local deleted = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if member ~= ARGV[1] then
    deleted = deleted + redis.call('DEL', member)
    redis.call('SREM', KEYS[1], member)
  end
end
return deleted
"""


def import_redis() -> types.ModuleType:
    """Import redis-py, or say how to install it.

    :raises ImportError: naming the ``redis`` extra, if redis-py is missing.
    """
    try:
        import redis
    except ImportError as e:
        raise ImportError(
            "RedisStore needs the redis package: pip install 'flask-kitsession[redis]'"
        ) from e
    return redis


def _text(value: str | bytes) -> str:
    """Decode what Redis returned: bytes, unless the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def _dump_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(timezone.utc).isoformat()


def _load_time(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _ttl_ms(expires_at: datetime, written_at: datetime) -> int:
    """Milliseconds from the write to the expiry, rounded up.

    The TTL is relative to the record's own time stamp rather than an
    absolute ``PEXPIREAT``: Redis's clock need not agree with the app's.
    """
    return -(-(expires_at - written_at) // timedelta(milliseconds=1))


class RedisStore(SessionStore):
    """Keeps sessions in Redis, each one expiring through its Redis TTL.

    Redis has no user table, so ``session.user`` comes from ``user_loader``
    (for example :meth:`SQLAlchemyStore.load_user`, one SQL query): an
    authenticated request costs one Redis round trip plus that query. A
    session whose user the loader no longer finds is treated as gone, as
    ``ON DELETE CASCADE`` makes it in SQL.

    Keys live under ``prefix``: ``<prefix>session:<id>`` is a hash holding a
    session (its data as the serializer's JSON text, so sessions move between
    stores without loss), and ``<prefix>user:<user id>`` the set of a user's
    session keys. Redis expires sessions itself: :meth:`purge_expired` has
    nothing to do. Needs Redis 5 or later, standalone or behind Sentinel (not
    Cluster: a script touches a session and its user's set, in other slots).

    :param client: A :class:`redis.Redis` client; see :meth:`from_url`.
    :param prefix: Put before every key, to share a Redis database.
    :param user_attacher: Prepares a loaded user for a request (attaches it
        to the app's ORM session); :meth:`SQLAlchemyStore.attach_user` goes
        with :meth:`SQLAlchemyStore.load_user`.
    :param user_loader: Returns the user for a user id, for ``session.user``;
        without it ``session.user`` is ``None``.
    :param user_id_type: The type of user ids (``int``, ``str``, ``uuid.UUID``),
        so that ids written as strings (Flask-Login's) find their user; best
        the :attr:`SQLAlchemyStore.user_key_type` of the store that loads the
        users, which knows the key column's range too.
    :param serializer: See :class:`SessionStore`.

    .. versionadded:: 0.1
    """

    needs_purge = False

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "kitsession:",
        user_loader: t.Callable[[t.Any], t.Any] | None = None,
        user_id_type: type | UserKeyType | None = None,
        serializer: SessionSerializer | None = None,
        user_attacher: t.Callable[[t.Any], t.Any] | None = None,
    ) -> None:
        super().__init__(serializer=serializer)
        self._redis_error: type[Exception] = import_redis().RedisError
        self.client = client
        self.prefix = prefix
        self.user_loader = user_loader
        self.user_attacher = user_attacher
        self.user_id_type = user_id_type
        # register_script only hashes the source: a script is sent to Redis
        # the first time it runs there, then called by its SHA-1.
        self._create_script = client.register_script(_LUA_USER_SETS + _CREATE)
        self._update_script = client.register_script(_LUA_USER_SETS + _UPDATE)
        self._touch_script = client.register_script(_LUA_USER_SETS + _TOUCH)
        self._delete_script = client.register_script(_LUA_USER_SETS + _DELETE)
        self._delete_all_for_user_script = client.register_script(
            _LUA_USER_SETS + _DELETE_ALL_FOR_USER
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "kitsession:",
        user_loader: t.Callable[[t.Any], t.Any] | None = None,
        user_id_type: type | UserKeyType | None = None,
        serializer: SessionSerializer | None = None,
        user_attacher: t.Callable[[t.Any], t.Any] | None = None,
        **client_options: t.Any,
    ) -> RedisStore:
        """Make a store with a new client for a Redis URL, such as
        ``redis://127.0.0.1:6379/0`` or ``rediss://user:password@host/1``.

        :param url: The Redis URL, as :meth:`redis.Redis.from_url` takes it.
        :param client_options: Passed to :meth:`redis.Redis.from_url`
            (``socket_timeout``, ``max_connections`` and so on).

        The other parameters are the constructor's.
        """
        client = import_redis().Redis.from_url(url, **client_options)
        return cls(
            client,
            prefix=prefix,
            user_loader=user_loader,
            user_id_type=user_id_type,
            serializer=serializer,
            user_attacher=user_attacher,
        )

    # -- keys and values ------------------------------------------------------

    def session_key(self, session_id: str) -> str:
        """Return the Redis key of the session with ``session_id``."""
        return f"{self.prefix}session:{session_id}"

    def user_key(self, user_id: t.Any) -> str:
        """Return the Redis key of the set of ``user_id``'s session keys."""
        return f"{self.prefix}user:{user_id}"

    def _dump_user_id(self, user_id: t.Any) -> str:
        # JSON keeps 42 and "42" apart, so ids come back with their type.
        if user_id is None:
            return ""
        if isinstance(user_id, (int, str)) and not isinstance(user_id, bool):
            return json.dumps(user_id)
        return json.dumps(str(user_id))

    def _load_user_id(self, text: str) -> t.Any:
        if not text:
            return None
        # An id type that JSON cannot hold, such as a UUID, was stored as text.
        return self.user_key_type.coerce(json.loads(text))

    def _fields(self, record: SessionRecord, names: t.Iterable[str]) -> list[str]:
        """Return ``field, value, ...`` for the hash; ``None`` is stored as ''."""
        values = {
            "data": self.serializer.dumps(record.data),
            # Converted where it came in (user_id_from), not again here.
            "user_id": self._dump_user_id(record.user_id),
            "created_at": _dump_time(record.created_at),
            "updated_at": _dump_time(record.updated_at),
            "last_seen_at": _dump_time(record.last_seen_at),
            "expires_at": _dump_time(record.expires_at),
            "authenticated_at": _dump_time(record.authenticated_at),
            "user_agent": record.user_agent or "",
            "ip_address": record.ip_address or "",
        }
        return [item for name in names for item in (name, values[name])]

    def _record(self, session_id: str, values: t.Sequence[t.Any]) -> SessionRecord | None:
        """Turn the values of :data:`_FIELDS` into a record (``None`` if the
        key was missing).
        """
        if values[5] is None:
            return None
        data, user_id, created, updated, last_seen, expires, authenticated, agent, ip = (
            _text(v) if v is not None else "" for v in values
        )
        try:
            owner = self._load_user_id(user_id)
        except (ValueError, UnknownUserError):
            # Written for a user key of another type (or by hand): the session
            # names no user this app has, so it is as good as gone.
            return None
        return SessionRecord(
            id=session_id,
            data=self.serializer.loads(data),
            user_id=owner,
            created_at=t.cast(datetime, _load_time(created)),
            updated_at=t.cast(datetime, _load_time(updated)),
            last_seen_at=t.cast(datetime, _load_time(last_seen)),
            expires_at=t.cast(datetime, _load_time(expires)),
            authenticated_at=_load_time(authenticated),
            user_agent=agent or None,
            ip_address=ip or None,
        )

    @contextlib.contextmanager
    def _errors(self, action: str) -> t.Iterator[None]:
        """Turn Redis errors into kitsession's own exception."""
        try:
            yield
        except self._redis_error as e:
            reason = str(e).rstrip(".")
            raise StoreUnavailableError(f"Cannot {action}: Redis failed: {reason}.") from e

    # -- the contract ---------------------------------------------------------

    def load_user(self, user_id: t.Any) -> t.Any:
        if self.user_loader is None or user_id is None:
            return None
        user_id = self._lookup_id(user_id)
        return None if user_id is NO_USER else self.user_loader(user_id)

    def attach_user(self, user: t.Any) -> t.Any:
        return user if self.user_attacher is None else self.user_attacher(user)

    def check_user(self, user_id: t.Any) -> None:
        """See :meth:`SessionStore.check_user`: asks ``user_loader``, if any."""
        user_id = self.coerce_user_id(user_id)
        if self.user_loader is not None and self.load_user(user_id) is None:
            raise UnknownUserError("The session names a user whom user_loader does not find.")

    def get(self, session_id: str, now: datetime) -> SessionRecord | None:
        with self._errors("load the session"):
            values = self.client.hmget(self.session_key(session_id), _FIELDS)
        record = self._record(session_id, values)
        # The TTL is only the backstop that frees memory: expiry is decided
        # here, against the app's clock, as in every store.
        if record is None or record.expires_at <= now:
            return None
        if record.user_id is not None and self.user_loader is not None:
            record.user = self.load_user(record.user_id)
            if record.user is None:
                return None
        return record

    def create(self, record: SessionRecord, *, replaces: str | None = None) -> None:
        fields = self._fields(record, _FIELDS)
        user_id = record.user_id
        keys = [
            self.session_key(record.id),
            "" if user_id is None else self.user_key(user_id),
            "" if replaces is None else self.session_key(replaces),
        ]
        ttl = _ttl_ms(record.expires_at, record.last_seen_at)
        with self._errors("store the session"):
            created = self._create_script(keys=keys, args=[ttl, *fields])
        if not created:
            raise SessionExistsError(f"A session with id {record.id[:8]}… exists already.")

    def update(self, record: SessionRecord, *, previous_id: str | None = None) -> bool:
        fields = self._fields(record, _UPDATED_FIELDS)
        user_id = record.user_id
        current_id = previous_id if previous_id is not None else record.id
        keys = [
            self.session_key(current_id),
            self.session_key(record.id),
            "" if user_id is None else self.user_key(user_id),
        ]
        ttl = _ttl_ms(record.expires_at, record.last_seen_at)
        with self._errors("save the session"):
            result = int(self._update_script(keys=keys, args=[ttl, *fields]))
        if result < 0:
            raise SessionExistsError(f"A session with id {record.id[:8]}… exists already.")
        return result == 1

    def touch(
        self,
        session_id: str,
        *,
        last_seen_at: datetime,
        expires_at: datetime,
        ip_address: str | None = None,
    ) -> bool:
        fields = ["last_seen_at", _dump_time(last_seen_at), "expires_at", _dump_time(expires_at)]
        if ip_address is not None:
            fields += ["ip_address", ip_address]
        ttl = _ttl_ms(expires_at, last_seen_at)
        with self._errors("touch the session"):
            touched = self._touch_script(keys=[self.session_key(session_id)], args=[ttl, *fields])
        return bool(touched)

    def delete(self, session_id: str) -> bool:
        with self._errors("delete the session"):
            deleted = self._delete_script(keys=[self.session_key(session_id)])
        return bool(deleted)

    def delete_all_for_user(self, user_id: t.Any, *, keep: str | None = None) -> int:
        user_id = self._lookup_id(user_id)
        if user_id is NO_USER:
            return 0
        keep_key = "" if keep is None else self.session_key(keep)
        with self._errors("delete the user's sessions"):
            deleted = self._delete_all_for_user_script(
                keys=[self.user_key(user_id)], args=[keep_key]
            )
        return int(deleted)

    def iterate(
        self,
        *,
        user_id: t.Any = ALL_USERS,
        now: datetime | None = None,
        batch_size: int = 500,
    ) -> t.Iterator[SessionRecord]:
        """See :meth:`SessionStore.iterate`.

        Every user's sessions (and the anonymous ones) are found with
        ``SCAN``, which may yield a session twice while Redis resizes its
        key space; a user's sessions come from their set.
        """
        if user_id is ALL_USERS or user_id is None:
            batches = self._scan_sessions(batch_size)
        else:
            user_id = self._lookup_id(user_id)
            if user_id is NO_USER:
                return
            batches = self._scan_user_set(self.user_key(user_id), batch_size)
        for keys in batches:
            for record in self._read(keys):
                if now is not None and record.expires_at <= now:
                    continue
                if user_id is None and record.user_id is not None:
                    continue
                yield record

    def _scan_sessions(self, batch_size: int) -> t.Iterator[list[t.Any]]:
        pattern = _glob_escape(self.session_key("")) + "*"
        pending: list[t.Any] = []
        cursor = 0
        while True:
            with self._errors("list sessions"):
                cursor, keys = self.client.scan(cursor, match=pattern, count=batch_size)
            pending.extend(keys)
            while len(pending) >= batch_size:
                yield pending[:batch_size]
                del pending[:batch_size]
            if cursor == 0:
                break
        if pending:
            yield pending

    def _scan_user_set(self, user_key: str, batch_size: int) -> t.Iterator[list[t.Any]]:
        cursor = 0
        while True:
            with self._errors("list the user's sessions"):
                cursor, keys = self.client.sscan(user_key, cursor, count=batch_size)
            if keys:
                yield list(keys)
            if cursor == 0:
                return

    def _read(self, keys: t.Sequence[t.Any]) -> list[SessionRecord]:
        """Read sessions by key in one round trip, skipping those that expired
        since their keys were listed, with their users.
        """
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.hmget(key, _FIELDS)
        with self._errors("list sessions"):
            rows = pipeline.execute()
        skip = len(self.session_key(""))
        records = []
        users: dict[t.Any, t.Any] = {}
        for key, values in zip(keys, rows, strict=True):
            record = self._record(_text(key)[skip:], values)
            if record is None:
                continue
            if record.user_id is not None:
                if record.user_id not in users:
                    users[record.user_id] = self.load_user(record.user_id)
                record.user = users[record.user_id]
            records.append(record)
        return records

    def purge_expired(
        self,
        now: datetime | None = None,
        *,
        batch_size: int = 1000,
        progress: t.Callable[[int], None] | None = None,
    ) -> int:
        """Return 0: Redis deletes sessions when their TTL runs out."""
        return 0

    def close(self) -> None:
        self.client.close()


def _glob_escape(text: str) -> str:
    """Escape what ``SCAN MATCH`` would read as a pattern, so a prefix such as
    ``app[1]:`` matches only itself.
    """
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
