"""Backends: a store plus what tests need around it (users, raw rows, a
record of what reaches the storage), one per kind of store.
"""

from __future__ import annotations

import collections
import contextlib
import typing as t
from datetime import datetime
from datetime import timezone

import redis
import sqlalchemy as sa
from benchmarks.queries import QueryRecorder

from flask_kitsession import MemoryStore
from flask_kitsession import RedisStore
from flask_kitsession import SessionStore
from flask_kitsession import SQLAlchemyStore
from flask_kitsession.models import session_table
from flask_kitsession.models import user_table
from flask_kitsession.stores.base import SessionRecord
from flask_kitsession.stores.redis import _FIELDS as REDIS_FIELDS
from flask_kitsession.stores.sql import create_store_engine

from .servers import RedisKeyspace

SessionUser = collections.namedtuple("SessionUser", ["id", "email", "created_at"])


class Backend:
    """A store plus what tests need around it: users, raw rows, operation counts."""

    name: str
    store: SessionStore

    def add_user(self, email: str) -> t.Any:
        raise NotImplementedError

    def delete_user(self, user_id: t.Any) -> None:
        raise NotImplementedError

    def rows(self) -> list[dict[str, t.Any]]:
        """Every stored session, raw."""
        raise NotImplementedError

    def operations(self) -> t.ContextManager[list[str]]:
        """Record what reaches the storage: "SELECT ...", "UPDATE ..." and so on."""
        raise NotImplementedError

    def reads(self, operations: list[str]) -> list[str]:
        """The operations that read."""
        return [op for op in operations if op.upper().startswith("SELECT")]

    def writes(self, operations: list[str]) -> list[str]:
        """The operations that change data (transaction control aside)."""
        return [op for op in operations if op.upper().startswith(("INSERT", "UPDATE", "DELETE"))]

    def reset(self) -> None:
        pass


class RecordingMemoryStore(MemoryStore):
    """A MemoryStore that notes each storage call, as SQL stores note statements."""

    log: list[str] | None = None

    def _note(self, operation: str) -> None:
        if self.log is not None:
            self.log.append(operation)

    def get(self, session_id: str, now: datetime) -> t.Any:
        self._note("SELECT session")
        return super().get(session_id, now)

    def create(self, record: t.Any, *, replaces: str | None = None) -> None:
        self._note("INSERT session")
        super().create(record, replaces=replaces)

    def update(self, record: t.Any, *, previous_id: str | None = None) -> bool:
        self._note("UPDATE session")
        return super().update(record, previous_id=previous_id)

    def touch(self, session_id: str, **kwargs: t.Any) -> bool:
        self._note("UPDATE session touch")
        return super().touch(session_id, **kwargs)

    def delete(self, session_id: str) -> bool:
        self._note("DELETE session")
        return super().delete(session_id)

    def delete_all_for_user(self, user_id: t.Any, *, keep: str | None = None) -> int:
        self._note("DELETE session for user")
        return super().delete_all_for_user(user_id, keep=keep)


class DictUsersBackend(Backend):
    """A backend whose users live in a dict (stores without a user table)."""

    users: dict[int, SessionUser]

    def _load_user(self, user_id: t.Any) -> t.Any:
        return self.users.get(user_id)

    def add_user(self, email: str) -> t.Any:
        user_id = len(self.users) + 1
        self.users[user_id] = SessionUser(user_id, email, datetime.now(timezone.utc))
        return user_id

    def delete_user(self, user_id: t.Any) -> None:
        # What ON DELETE CASCADE does in SQL; an app without one does it itself.
        del self.users[user_id]
        self.store.delete_all_for_user(user_id)


class MemoryBackend(DictUsersBackend):
    name = "memory"

    def __init__(self) -> None:
        self.users: dict[int, SessionUser] = {}
        self.store: RecordingMemoryStore = RecordingMemoryStore(
            user_loader=self._load_user, user_id_type=int
        )

    def rows(self) -> list[dict[str, t.Any]]:
        store = self.store
        with store._lock:
            return [
                {
                    **{f: getattr(r, f) for f in r.__slots__ if f not in ("data", "user")},
                    "data": text,
                }
                for r, text in store._rows.values()
            ]

    @contextlib.contextmanager
    def operations(self) -> t.Iterator[list[str]]:
        log: list[str] = []
        self.store.log = log
        try:
            yield log
        finally:
            self.store.log = None


class RecordingRedis(redis.Redis):
    """A Redis client that notes each round trip, named as SQL backends name
    statements: reads as "SELECT ...", the store's scripts by what they do.
    """

    log: list[str] | None = None
    #: Script SHA-1 -> "INSERT session" and so on.
    script_names: dict[str, str] = {}
    reads = frozenset({"HMGET", "HGET", "HGETALL", "EXISTS", "SCAN", "SSCAN", "SMEMBERS", "PTTL"})

    def describe(self, args: t.Sequence[t.Any]) -> str:
        words = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
        name = words[0].upper()
        text = " ".join(words)
        if name == "EVALSHA":
            return f"{self.script_names.get(words[1], 'SCRIPT')}: {text}"
        return f"SELECT {text}" if name in self.reads else text

    def execute_command(self, *args: t.Any, **options: t.Any) -> t.Any:
        result = super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        if self.log is not None:
            self.log.append(self.describe(args))
        return result

    def pipeline(self, transaction: bool = True, shard_hint: t.Any = None) -> redis.client.Pipeline:
        return RecordingPipeline(
            self, self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


class RecordingPipeline(redis.client.Pipeline):
    """A pipeline that notes its commands as one round trip of its client."""

    def __init__(self, recorder: RecordingRedis, *args: t.Any) -> None:
        super().__init__(*args)
        self.recorder = recorder

    def execute(self, raise_on_error: bool = True) -> list[t.Any]:
        commands = [self.recorder.describe(args) for args, _ in self.command_stack]
        result = super().execute(raise_on_error)
        if self.recorder.log is not None:
            reads = all(c.startswith("SELECT") for c in commands)
            self.recorder.log.append(
                f"{'SELECT ' if reads else ''}PIPELINE of {len(commands)}: " + "; ".join(commands)
            )
        return result


class RedisBackend(DictUsersBackend):
    """A RedisStore under a key prefix of its own; users kept in a dict, as
    an app would keep them in SQL.
    """

    name = "redis"

    def __init__(self, keyspace: RedisKeyspace) -> None:
        self.keyspace = keyspace
        self.users: dict[int, SessionUser] = {}
        self.client = t.cast(RecordingRedis, RecordingRedis.from_url(keyspace.url))
        self.store: RedisStore = RedisStore(
            self.client,
            prefix=keyspace.new_prefix(),
            user_loader=self._load_user,
            user_id_type=int,
        )
        scripts = {
            "INSERT session": self.store._create_script,
            "UPDATE session": self.store._update_script,
            "UPDATE session touch": self.store._touch_script,
            "DELETE session": self.store._delete_script,
            "DELETE session for user": self.store._delete_all_for_user_script,
        }
        self.client.script_names = {script.sha: name for name, script in scripts.items()}
        for script in scripts.values():
            # Loaded now, so that no recorded operation is a first-use SCRIPT LOAD.
            self.client.script_load(script.script)

    def rows(self) -> list[dict[str, t.Any]]:
        admin = self.keyspace.admin
        rows = []
        for key in self.keyspace.keys(self.store.session_key("")):
            values = admin.hmget(key, REDIS_FIELDS)
            record = self.store._record(key.rsplit(":", 1)[1], values)
            if record is None:
                continue
            row = {f: getattr(record, f) for f in SessionRecord.__slots__ if f != "user"}
            row["data"] = values[0]
            rows.append(row)
        return rows

    @contextlib.contextmanager
    def operations(self) -> t.Iterator[list[str]]:
        log: list[str] = []
        self.client.log = log
        try:
            yield log
        finally:
            self.client.log = None

    def reset(self) -> None:
        self.keyspace.delete(self.store.prefix)
        self.client.close()


class SQLBackend(Backend):
    def __init__(self, name: str, engine: sa.Engine) -> None:
        self.name = name
        self.engine = engine
        self.store = SQLAlchemyStore(engine)

    def add_user(self, email: str) -> t.Any:
        with self.engine.begin() as connection:
            result = connection.execute(
                user_table.insert().values(email=email, created_at=datetime.now(timezone.utc))
            )
            return result.inserted_primary_key[0]  # type: ignore[index]

    def delete_user(self, user_id: t.Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(user_table.delete().where(user_table.c.id == user_id))

    def rows(self) -> list[dict[str, t.Any]]:
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.select(session_table))]

    @contextlib.contextmanager
    def operations(self) -> t.Iterator[list[str]]:
        """The statements the driver runs (``BEGIN`` and ``COMMIT`` included)."""
        with QueryRecorder(self.engine) as recorder:
            yield recorder.statements

    def reset(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(session_table.delete())
            connection.execute(user_table.delete())


# -- one store, several processes ----------------------------------------------


class StoreSpec(t.NamedTuple):
    """How another process opens the same store as this one (picklable)."""

    kind: str
    url: str
    prefix: str = ""

    def open(self) -> SessionStore:
        if self.kind == "redis":
            return RedisStore.from_url(self.url, prefix=self.prefix, user_id_type=int)
        return SQLAlchemyStore(create_store_engine(self.url))
