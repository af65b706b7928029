"""Sessions in Redis, users wherever the app keeps them (usually SQL).

Each session is a hash whose Redis TTL ends with the session. Its user's
sessions are indexed, so that signing a user out everywhere needs no scan.
Every key carries a hash tag: the first two hex digits of the session id.
A session and its entry in its user's index share that tag, so every write
of a session is one Lua script on one Redis Cluster slot: one round trip,
atomic, and a deleted session is never written back. The same layout runs
on a single Redis, behind Sentinel and on a cluster.
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

#: Hash tags: a session's tag is the first two hex digits of its id, so
#: sessions spread over 256 cluster slots (evenly enough over the masters of
#: any cluster), and a user's index is split in up to 256 parts, one per tag.
TAG_LENGTH = 2
TAGS = tuple(f"{n:02x}" for n in range(16**TAG_LENGTH))

#: How many expired entries of a user's index a write removes at most: enough
#: to keep pace with any rate of logins, few enough that no write's cost grows
#: with the number of sessions a user has.
PRUNE_LIMIT = 32

# Lua shared by the scripts. A user's index (one sorted set per tag) scores
# each session key by when Redis expires it, on Redis's own clock, so expired
# entries are found by score without looking at every member. A session hash
# names its index in the field ``user_key`` ('' when anonymous): same tag, so
# same slot, and a script that deletes, renames or touches a session can fix
# the index without being told whose session it was.
_LUA_INDEX = f"""
local function now_ms()
  local time = redis.call('TIME')
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- Index entries are session ids (64 characters: Redis keeps a small sorted
-- set compact only while its members are at most 64 bytes long).
local function session_id(session_key)
  return string.match(session_key, '[^:]*$')
end

local function index_session(index, session_key, ttl)
  local now = now_ms()
  -- Adding again moves the score with the session's TTL, and restores an
  -- index lost behind the store's back (evicted, deleted by hand).
  redis.call('ZADD', index, now + ttl, session_id(session_key))
  -- Entries of sessions Redis has expired sort first: drop a bounded number,
  -- so the cost of a write never grows with the user's sessions.
  local expired = redis.call('ZCOUNT', index, '-inf', now)
  if expired > 0 then
    redis.call('ZREMRANGEBYRANK', index, 0, math.min(expired, {PRUNE_LIMIT}) - 1)
  end
  -- The index lives as long as its longest-lived session, then disappears.
  if redis.call('PTTL', index) < ttl then
    redis.call('PEXPIRE', index, ttl)
  end
end

local function unindex_session(session_key)
  local index = redis.call('HGET', session_key, 'user_key')
  if index and index ~= '' then
    redis.call('ZREM', index, session_id(session_key))
  end
end
"""

# KEYS: the new session, then its index (if it has a user), then a session it
# replaces (if any; in the same slot). ARGV: TTL in ms, whether KEYS has the
# index ('1' or '0'), whether it has a replaced session, then field, value,
# ... (keys are never '' placeholders: on a cluster '' is a key of slot 0).
# Returns 0 if the id is taken. A TTL of zero or less (already expired)
# stores nothing.
_CREATE = """
local session_key, index, replaced = KEYS[1], '', ''
local next_key = 2
if ARGV[2] == '1' then
  index = KEYS[next_key]
  next_key = next_key + 1
end
if ARGV[3] == '1' then
  replaced = KEYS[next_key]
end
local ttl = tonumber(ARGV[1])
if redis.call('EXISTS', session_key) == 1 then
  return 0
end
if replaced ~= '' then
  unindex_session(replaced)
  redis.call('DEL', replaced)
end
if ttl > 0 then
  redis.call('HSET', session_key, 'user_key', index, unpack(ARGV, 4))
  redis.call('PEXPIRE', session_key, ttl)
  if index ~= '' then
    index_session(index, session_key, ttl)
  end
end
return 1
"""

# KEYS: the session's key now, its key after the update (differs when it gets
# a new token; same slot), then its index after the update (if it has a
# user). ARGV: TTL in ms, whether KEYS has the index, then field, value, ...
# Returns 1 when written, 0 when the session does not exist (it is never
# re-created), -1 when the new key is taken.
_UPDATE = """
local current, target = KEYS[1], KEYS[2]
local index = ARGV[2] == '1' and KEYS[3] or ''
local ttl = tonumber(ARGV[1])
if redis.call('EXISTS', current) == 0 then
  return 0
end
if target ~= current and redis.call('EXISTS', target) == 1 then
  return -1
end
if ttl <= 0 then
  unindex_session(current)
  redis.call('DEL', current)
  return 1
end
local previous = redis.call('HGET', current, 'user_key') or ''
if previous ~= '' and (previous ~= index or target ~= current) then
  redis.call('ZREM', previous, session_id(current))
end
if target ~= current then
  redis.call('RENAME', current, target)
end
redis.call('HSET', target, 'user_key', index, unpack(ARGV, 3))
redis.call('PEXPIRE', target, ttl)
if index ~= '' then
  index_session(index, target, ttl)
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
  unindex_session(session_key)
  redis.call('DEL', session_key)
  return 1
end
redis.call('HSET', session_key, unpack(ARGV, 2))
redis.call('PEXPIRE', session_key, ttl)
local index = redis.call('HGET', session_key, 'user_key')
if index and index ~= '' then
  index_session(index, session_key, ttl)
end
return 1
"""

# KEYS: the session. Returns 1 if it existed.
_DELETE = """
unindex_session(KEYS[1])
return redis.call('DEL', KEYS[1])
"""

# KEYS: parts of one user's index (on a cluster, one part per call: every
# part is in a slot of its own). ARGV: the id of the session to keep, or '';
# what every session key starts with. Returns how many sessions were deleted.
_DELETE_ALL_FOR_USER = f"""
local deleted = 0
for _, index in ipairs(KEYS) do
  for _, member in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    if member ~= ARGV[1] then
      local tag = string.sub(member, 1, {TAG_LENGTH})
      deleted = deleted + redis.call('DEL', ARGV[2] .. '{{' .. tag .. '}}:' .. member)
      redis.call('ZREM', index, member)
    end
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


def make_redis_client(
    url: str,
    *,
    cluster: bool = False,
    sentinels: str | t.Iterable[str | tuple[str, int]] | None = None,
    **options: t.Any,
) -> t.Any:
    """Make the redis-py client for a Redis URL: a single server, a Redis
    Cluster, or the master that Redis Sentinel names.

    :param url: ``redis://[[user]:password@]host[:port][/db]`` (``rediss://``
        for TLS). With ``cluster``, any node of the cluster. With
        ``sentinels``, the host is the name of the master that the Sentinels
        watch (``redis://mymaster/0``), as django-redis reads it.
    :param cluster: Make a :class:`redis.cluster.RedisCluster`, which finds
        every node from the one in the URL and follows slot moves and
        failovers.
    :param sentinels: ``host:port`` strings (or ``(host, port)`` pairs) of
        Sentinels, or one string of them separated by commas; the client asks
        them for the current master, and again after a failover.
    :param options: Passed to the client (``socket_timeout``,
        ``max_connections`` and so on).

    .. versionadded:: 0.1
    """
    redis = import_redis()
    if cluster and sentinels:
        raise ValueError(
            "KITSESSION_REDIS_CLUSTER and KITSESSION_REDIS_SENTINELS exclude each other:"
            " Sentinel watches a master and its replicas, a cluster fails over by itself."
        )
    if cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(url, **options)
    if not sentinels:
        return redis.Redis.from_url(url, **options)
    from redis.connection import parse_url
    from redis.sentinel import Sentinel

    # The URL's query (socket_timeout=...) applies as it does without Sentinel.
    master_options = {**parse_url(url), **options}  # type: ignore[no-untyped-call]
    service_name = master_options.pop("host", None)
    master_options.pop("port", None)
    if not service_name:
        raise ValueError(
            f"With KITSESSION_REDIS_SENTINELS, KITSESSION_REDIS_URL names the master the"
            f" Sentinels watch, as redis://mymaster/0; got {url!r}."
        )
    if master_options.pop("connection_class", None) is not None:
        master_options.setdefault("ssl", True)
    if isinstance(sentinels, str):
        sentinels = [part.strip() for part in sentinels.split(",") if part.strip()]
    addresses = [_address(sentinel) for sentinel in sentinels]
    # The Sentinels get the timeouts too: a Sentinel that is down must not
    # hold a request for longer than the master would.
    sentinel_options = {
        key: value
        for key, value in master_options.items()
        if key in ("socket_timeout", "socket_connect_timeout")
    }
    # Typed from redis-py 8 on, untyped before: called through Any for both.
    sentinel_class: t.Any = Sentinel
    sentinel = sentinel_class(addresses, sentinel_kwargs=sentinel_options)
    return sentinel.master_for(service_name, **master_options)


def _address(value: str | tuple[str, int]) -> tuple[str, int]:
    if not isinstance(value, str):
        return str(value[0]), int(value[1])
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"A Sentinel is named as host:port, got {value!r}.")
    return host.strip("[]"), int(port)


class RedisStore(SessionStore):
    """Keeps sessions in Redis, each one expiring through its Redis TTL.

    Redis has no user table, so ``session.user`` comes from ``user_loader``
    (for example :meth:`SQLAlchemyStore.load_user`, one SQL query): an
    authenticated request costs one Redis round trip plus that query. A
    session whose user the loader no longer finds is treated as gone, as
    ``ON DELETE CASCADE`` makes it in SQL.

    Keys live under ``prefix``, each with a hash tag ``{xy}``: the first two
    hex digits of the session id. ``<prefix>session:{xy}:<id>`` is a hash
    holding a session (its data as the serializer's JSON text, so sessions
    move between stores without loss), and ``<prefix>user:{xy}:<user id>``
    the part of a user's index holding their sessions of that tag: a sorted
    set of session ids, scored by when Redis expires each. Redis expires
    sessions itself: :meth:`purge_expired` has nothing to do.

    Needs Redis 5 or later: a single server, Sentinel, or Redis Cluster
    (pass a :class:`redis.cluster.RedisCluster`). On a cluster, a write that
    involves two sessions of different tags (a login replacing the visitor's
    session, a new token) takes two scripts instead of one; see
    :meth:`create` and :meth:`update` for what guards them.

    :param client: A :class:`redis.Redis` or :class:`redis.cluster.RedisCluster`
        client; see :meth:`from_url`.
    :param prefix: Put before every key, to share a Redis database. On a
        cluster it must not contain ``{`` or ``}`` (it would be the hash tag).
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
        client: t.Any,
        *,
        prefix: str = "kitsession:",
        user_loader: t.Callable[[t.Any], t.Any] | None = None,
        user_id_type: type | UserKeyType | None = None,
        serializer: SessionSerializer | None = None,
        user_attacher: t.Callable[[t.Any], t.Any] | None = None,
    ) -> None:
        super().__init__(serializer=serializer)
        redis = import_redis()
        from redis.cluster import RedisCluster
        from redis.crc import key_slot

        # A cluster client raises RedisClusterException, which is not a
        # RedisError, when it cannot find a node for a slot.
        self._redis_errors: tuple[type[Exception], ...] = (
            redis.RedisError,
            redis.exceptions.RedisClusterException,
        )
        self._key_slot = key_slot
        #: Whether the client is a Redis Cluster client: keys of different
        #: slots never meet in one script.
        self.cluster = isinstance(client, RedisCluster)
        if self.cluster and ("{" in prefix or "}" in prefix):
            raise ValueError(
                f"On Redis Cluster the key prefix must not contain '{{' or '}}', got {prefix!r}:"
                " kitsession puts the hash tag that places each session in its keys itself."
            )
        self.client = client
        self.prefix = prefix
        self.user_loader = user_loader
        self.user_attacher = user_attacher
        self.user_id_type = user_id_type
        # register_script only hashes the source: a script is sent to Redis
        # the first time it runs there, then called by its SHA-1.
        self._create_script = client.register_script(_LUA_INDEX + _CREATE)
        self._update_script = client.register_script(_LUA_INDEX + _UPDATE)
        self._touch_script = client.register_script(_LUA_INDEX + _TOUCH)
        self._delete_script = client.register_script(_LUA_INDEX + _DELETE)
        self._delete_all_for_user_script = client.register_script(_LUA_INDEX + _DELETE_ALL_FOR_USER)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        cluster: bool = False,
        sentinels: str | t.Iterable[str | tuple[str, int]] | None = None,
        prefix: str = "kitsession:",
        user_loader: t.Callable[[t.Any], t.Any] | None = None,
        user_id_type: type | UserKeyType | None = None,
        serializer: SessionSerializer | None = None,
        user_attacher: t.Callable[[t.Any], t.Any] | None = None,
        **client_options: t.Any,
    ) -> RedisStore:
        """Make a store with a new client for a Redis URL, such as
        ``redis://127.0.0.1:6379/0`` or ``rediss://user:password@host/1``.

        :param url: The Redis URL; see :func:`make_redis_client`.
        :param cluster: The URL names a node of a Redis Cluster
            (``KITSESSION_REDIS_CLUSTER``).
        :param sentinels: Sentinels to ask for the master that the URL's host
            names (``KITSESSION_REDIS_SENTINELS``).
        :param client_options: Passed to the client
            (``socket_timeout``, ``max_connections`` and so on).

        The other parameters are the constructor's.

        .. versionchanged:: 0.1
            ``cluster`` and ``sentinels``.
        """
        client = make_redis_client(url, cluster=cluster, sentinels=sentinels, **client_options)
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
        """Return the Redis key of the session with ``session_id``; with
        ``""``, what every session key starts with.
        """
        if not session_id:
            return f"{self.prefix}session:"
        return f"{self.prefix}session:{{{session_id[:TAG_LENGTH]}}}:{session_id}"

    def user_key(self, user_id: t.Any, session_id: str) -> str:
        """Return the key of the part of ``user_id``'s index (an id of the
        user key's type) that holds the session with ``session_id`` (the
        part of the session's hash tag).
        """
        return self._index_key(session_id[:TAG_LENGTH], user_id)

    def user_keys(self, user_id: t.Any) -> list[str]:
        """Return the keys of every part of ``user_id``'s index."""
        return [self._index_key(tag, user_id) for tag in TAGS]

    def _index_key(self, tag: str, user_id: t.Any) -> str:
        return f"{self.prefix}user:{{{tag}}}:{user_id}"

    def _same_slot(self, key: str, other: str) -> bool:
        """Whether one script may name both keys: always on a single server."""
        return not self.cluster or self._key_slot(key.encode()) == self._key_slot(other.encode())

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
        except self._redis_errors as e:
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
        """See :meth:`SessionStore.create`.

        One script writes the new session, its index entry and deletes the
        session it replaces. On a cluster, when the replaced session is in
        another slot, it is deleted by a second script once the new one is
        stored: if that fails the request fails (503) and the visitor keeps
        the session they had, and the new one, whose token was never sent,
        is deleted if Redis still answers or expires unseen otherwise.
        """
        fields = self._fields(record, _FIELDS)
        user_id = record.user_id
        key = self.session_key(record.id)
        replaced = "" if replaces is None else self.session_key(replaces)
        separately = replaced != "" and not self._same_slot(key, replaced)
        index = "" if user_id is None else self.user_key(user_id, record.id)
        ttl = _ttl_ms(record.expires_at, record.last_seen_at)
        with self._errors("store the session"):
            created = self._run_create(key, index, "" if separately else replaced, ttl, fields)
        if not created:
            raise SessionExistsError(f"A session with id {record.id[:8]}… exists already.")
        if separately:
            try:
                with self._errors("delete the session that the new one replaces"):
                    self._delete_script(keys=[replaced])
            except StoreUnavailableError:
                with contextlib.suppress(*self._redis_errors):
                    self._delete_script(keys=[key])
                raise

    def update(self, record: SessionRecord, *, previous_id: str | None = None) -> bool:
        """See :meth:`SessionStore.update`.

        One script checks that the session exists and writes it, its index
        entries and its new name. On a cluster, a new token whose id has
        another slot takes three steps: read the session's creation time and
        user agent, create the session under the new key, delete the old key.
        If the old key was gone by then (deleted or revoked meanwhile), the
        new one is deleted too and the update reports ``False``: the new
        token, never sent, never worked, so no session comes back.
        """
        user_id = record.user_id
        current_id = previous_id if previous_id is not None else record.id
        current = self.session_key(current_id)
        target = self.session_key(record.id)
        if not self._same_slot(current, target):
            return self._move(record, current, target)
        fields = self._fields(record, _UPDATED_FIELDS)
        keys = [current, target]
        if user_id is not None:
            keys.append(self.user_key(user_id, record.id))
        ttl = _ttl_ms(record.expires_at, record.last_seen_at)
        with self._errors("save the session"):
            result = int(self._update_script(keys=keys, args=[ttl, int(len(keys) > 2), *fields]))
        if result < 0:
            raise SessionExistsError(f"A session with id {record.id[:8]}… exists already.")
        return result == 1

    def _run_create(self, key: str, index: str, replaced: str, ttl: int, fields: list[str]) -> bool:
        """Run the create script; ``index`` and ``replaced`` are optional ('')."""
        keys = [key, *(k for k in (index, replaced) if k)]
        args = [ttl, int(bool(index)), int(bool(replaced)), *fields]
        return bool(self._create_script(keys=keys, args=args))

    def _move(self, record: SessionRecord, current: str, target: str) -> bool:
        """Give a session a new key in another cluster slot (see :meth:`update`)."""
        with self._errors("save the session"):
            kept = self.client.hmget(current, ["created_at", "user_agent"])
        if kept[0] is None:
            return False
        ttl = _ttl_ms(record.expires_at, record.last_seen_at)
        if ttl <= 0:
            with self._errors("save the session"):
                self._delete_script(keys=[current])
            return True
        created, agent = (_text(v) if v is not None else "" for v in kept)
        fields = self._fields(record, _UPDATED_FIELDS)
        fields += ["created_at", created, "user_agent", agent]
        user_id = record.user_id
        index = "" if user_id is None else self.user_key(user_id, record.id)
        with self._errors("save the session"):
            if not self._run_create(target, index, "", ttl, fields):
                raise SessionExistsError(f"A session with id {record.id[:8]}… exists already.")
        try:
            with self._errors("save the session"):
                existed = bool(self._delete_script(keys=[current]))
        except StoreUnavailableError:
            with contextlib.suppress(*self._redis_errors):
                self._delete_script(keys=[target])
            raise
        if not existed:
            with self._errors("save the session"):
                self._delete_script(keys=[target])
        return existed

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
        """See :meth:`SessionStore.delete_all_for_user`.

        On a single server, one script over every part of the user's index.
        On a cluster, where each part is in a slot of its own, one pipeline
        finds the parts that exist (a user with three devices has about
        three), then one script empties each of them atomically. A session
        created meanwhile in a part not listed stays, as it would if it had
        been created just after the call.
        """
        user_id = self._lookup_id(user_id)
        if user_id is NO_USER:
            return 0
        args = ["" if keep is None else keep, self.session_key("")]
        keys = self.user_keys(user_id)
        script = self._delete_all_for_user_script
        with self._errors("delete the user's sessions"):
            if not self.cluster:
                return int(script(keys=keys, args=args))
            pipeline = self.client.pipeline()
            for key in keys:
                pipeline.exists(key)
            found = [key for key, exists in zip(keys, pipeline.execute(), strict=True) if exists]
            return sum(int(script(keys=[key], args=args)) for key in found)

    def iterate(
        self,
        *,
        user_id: t.Any = ALL_USERS,
        now: datetime | None = None,
        batch_size: int = 500,
    ) -> t.Iterator[SessionRecord]:
        """See :meth:`SessionStore.iterate`.

        Every user's sessions (and the anonymous ones) are found with
        ``SCAN`` (on every master of a cluster), which may yield a session
        twice while Redis resizes its key space; a user's sessions come from
        their index.
        """
        if user_id is ALL_USERS or user_id is None:
            batches = self._scan_sessions(batch_size)
        else:
            user_id = self._lookup_id(user_id)
            if user_id is NO_USER:
                return
            batches = self._scan_user_index(self.user_keys(user_id), batch_size)
        for keys in batches:
            for record in self._read(keys):
                if now is not None and record.expires_at <= now:
                    continue
                if user_id is None and record.user_id is not None:
                    continue
                yield record

    def _scan_sessions(self, batch_size: int) -> t.Iterator[list[t.Any]]:
        # Exactly the shape of this store's session keys, so that another
        # store's keys under a longer prefix ("app" and "appsession:") are
        # never taken for sessions.
        pattern = (
            _glob_escape(self.session_key(""))
            + "\\{"
            + "?" * TAG_LENGTH
            + "\\}:"
            + "?" * SESSION_ID_LENGTH
        )
        pending: list[t.Any] = []
        with self._errors("list sessions"):
            keys = self.client.scan_iter(match=pattern, count=batch_size)
        while True:
            with self._errors("list sessions"):
                key = next(keys, None)
            if key is None:
                break
            pending.append(key)
            if len(pending) >= batch_size:
                yield pending
                pending = []
        if pending:
            yield pending

    def _scan_user_index(self, index_keys: list[str], batch_size: int) -> t.Iterator[list[t.Any]]:
        # The parts are read a few at a time: one user's sessions are never
        # all in memory at once, whatever their number.
        for start in range(0, len(index_keys), 32):
            pipeline = self.client.pipeline(transaction=False)
            for key in index_keys[start : start + 32]:
                pipeline.zrange(key, 0, -1)
            with self._errors("list the user's sessions"):
                parts = pipeline.execute()
            keys = [self.session_key(_text(member)) for part in parts for member in part]
            for offset in range(0, len(keys), batch_size):
                yield keys[offset : offset + batch_size]

    def _read(self, keys: t.Sequence[t.Any]) -> list[SessionRecord]:
        """Read sessions by key in one round trip, skipping those that expired
        since their keys were listed, with their users.
        """
        pipeline = self.client.pipeline(transaction=False)
        for key in keys:
            pipeline.hmget(key, _FIELDS)
        with self._errors("list sessions"):
            rows = pipeline.execute()
        records = []
        users: dict[t.Any, t.Any] = {}
        for key, values in zip(keys, rows, strict=True):
            record = self._record(_text(key).rpartition(":")[2], values)
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


#: A session id is the 64 hex characters of a SHA-256.
SESSION_ID_LENGTH = 64


def _glob_escape(text: str) -> str:
    """Escape what ``SCAN MATCH`` would read as a pattern, so a prefix such as
    ``app[1]:`` matches only itself.
    """
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
