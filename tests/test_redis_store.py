"""What is particular to RedisStore: TTLs, the per-user sets, scripts.

The store contract itself runs on Redis with every other test (the
``redis`` backend); these tests look at the keys behind it.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from flask import Flask
from markupsafe import Markup

from flask_kitsession import KitSession
from flask_kitsession import RedisStore
from flask_kitsession import SessionRecord
from flask_kitsession import StoreUnavailableError
from flask_kitsession.models import session_table
from flask_kitsession.models import user_table
from flask_kitsession.stores.redis import _DELETE_ALL_FOR_USER
from flask_kitsession.stores.sql import create_store_engine
from flask_kitsession.tokens import new_token
from flask_kitsession.tokens import session_id_for

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import RedisBackend
from .support.backends import SQLBackend
from .support.clients import log_in
from .support.clients import me
from .support.servers import RedisKeyspace
from .support.servers import upgrade
from .test_stores import make_record
from .test_stores import NOW

HOUR_MS = 3_600_000


def record_for(user_id: object = None, *, ttl: timedelta = timedelta(hours=1)) -> SessionRecord:
    """A session written now (real time), so that Redis's own expiry applies."""
    now = datetime.now(timezone.utc)
    return SessionRecord(
        id=session_id_for(new_token()),
        data={"user_id": user_id} if user_id is not None else {"anonymous": True},
        user_id=user_id,
        created_at=now,
        updated_at=now,
        last_seen_at=now,
        expires_at=now + ttl,
    )


def members(backend: RedisBackend, user_id: object) -> set[str]:
    """The keys of the sessions in every part of the user's index."""
    admin, store = backend.keyspace.admin, backend.store
    return {
        store.session_key(str(m))
        for key in store.user_keys(user_id)
        for m in admin.zrange(key, 0, -1)
    }


def record_tagged(tag: str, user_id: object, *, ttl: timedelta) -> SessionRecord:
    """A session written now whose id has hash tag ``tag`` (one part of its
    user's index).
    """
    while True:
        record = record_for(user_id, ttl=ttl)
        if record.id.startswith(tag):
            return record


def pttl(backend: RedisBackend, key: str) -> int:
    return int(backend.keyspace.admin.pttl(key))


# -- expiry through TTLs --------------------------------------------------------------


def test_ttl_ends_with_the_session(redis_backend: RedisBackend) -> None:
    ada = redis_backend.add_user("ada@example.com")
    record = make_record(ada)  # expires an hour after it was last seen
    redis_backend.store.create(record)
    key = redis_backend.store.session_key(record.id)
    assert HOUR_MS - 5000 < pttl(redis_backend, key) <= HOUR_MS
    index = redis_backend.store.user_key(ada, record.id)
    assert pttl(redis_backend, index) >= pttl(redis_backend, key)


def test_ttl_slides_on_touch_and_update(redis_backend: RedisBackend) -> None:
    ada = redis_backend.add_user("ada@example.com")
    store = redis_backend.store
    record = make_record(ada, expires_in=60)
    store.create(record)
    key = store.session_key(record.id)
    assert pttl(redis_backend, key) <= 60_000

    later = NOW + timedelta(minutes=1)
    store.touch(record.id, last_seen_at=later, expires_at=later + timedelta(hours=1))
    assert HOUR_MS - 5000 < pttl(redis_backend, key) <= HOUR_MS

    changed = dataclasses.replace(
        record,
        data={"user_id": ada, "n": 1},
        last_seen_at=later,
        expires_at=later + timedelta(hours=2),
    )
    assert store.update(changed)
    assert 2 * HOUR_MS - 5000 < pttl(redis_backend, key) <= 2 * HOUR_MS
    # The user's index outlives its longest-lived session.
    assert pttl(redis_backend, store.user_key(ada, record.id)) >= pttl(redis_backend, key)


def test_ttl_slides_within_the_absolute_limit(redis_backend: RedisBackend, clock: Clock) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        KITSESSION_IDLE_TIMEOUT=timedelta(minutes=20),
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=1),
    )
    KitSession(app, store=redis_backend.store, clock=clock)
    add_views(app)
    client = app.test_client()
    client.post("/set", data={"a": "1"})
    [row] = redis_backend.rows()
    key = redis_backend.store.session_key(row["id"])
    assert pttl(redis_backend, key) <= 20 * 60_000
    for _ in range(5):
        clock.advance(minutes=10)
        assert client.get("/get").json == {"a": "1"}
    # Touched 50 minutes after creation: 10 minutes left, not 20.
    assert 10 * 60_000 - 5000 < pttl(redis_backend, key) <= 10 * 60_000


def test_session_expired_when_written_is_not_kept(redis_backend: RedisBackend) -> None:
    ada = redis_backend.add_user("ada@example.com")
    redis_backend.store.create(make_record(ada, expires_in=-1))
    assert redis_backend.keyspace.keys(redis_backend.store.prefix) == []


def test_redis_expires_sessions_and_their_user_set(redis_backend: RedisBackend) -> None:
    store = redis_backend.store
    ada = redis_backend.add_user("ada@example.com")
    short = record_for(ada, ttl=timedelta(milliseconds=100))
    store.create(short)
    time.sleep(0.25)
    assert redis_backend.keyspace.keys(store.prefix) == []
    assert store.get(short.id, datetime.now(timezone.utc)) is None


# -- the per-user sets ------------------------------------------------------------------


def test_user_set_follows_deletes_renames_and_user_changes(redis_backend: RedisBackend) -> None:
    store = redis_backend.store
    ada = redis_backend.add_user("ada@example.com")
    first, second, third = (make_record(ada) for _ in range(3))
    anonymous = make_record()
    for record in (first, second, third, anonymous):
        store.create(record)
    key = store.session_key
    assert members(redis_backend, ada) == {key(first.id), key(second.id), key(third.id)}

    store.delete(first.id)
    assert members(redis_backend, ada) == {key(second.id), key(third.id)}

    # Signed out: anonymous now, so no longer one of ada's sessions.
    assert store.update(dataclasses.replace(second, data={}, user_id=None))
    assert members(redis_backend, ada) == {key(third.id)}

    renamed = dataclasses.replace(third, id=session_id_for(new_token()))
    assert store.update(renamed, previous_id=third.id)
    assert members(redis_backend, ada) == {key(renamed.id)}

    assert store.delete_all_for_user(ada) == 1
    assert not redis_backend.keyspace.admin.exists(*store.user_keys(ada))
    assert {r.id for r in store.iterate()} == {second.id, anonymous.id}


def test_user_set_moves_with_the_session_to_another_user(redis_backend: RedisBackend) -> None:
    store = redis_backend.store
    ada = redis_backend.add_user("ada@example.com")
    bob = redis_backend.add_user("bob@example.com")
    record = make_record(ada)
    store.create(record)
    assert store.update(dataclasses.replace(record, data={"user_id": bob}, user_id=bob))
    assert members(redis_backend, ada) == set()
    assert members(redis_backend, bob) == {store.session_key(record.id)}


def test_user_set_drops_sessions_that_expired(redis_backend: RedisBackend) -> None:
    store = redis_backend.store
    ada = redis_backend.add_user("ada@example.com")
    short = record_tagged("a0", ada, ttl=timedelta(milliseconds=100))
    long = record_tagged("a0", ada, ttl=timedelta(hours=2))
    store.create(short)
    store.create(long)
    # The index lives as long as its longest-lived session.
    assert pttl(redis_backend, store.user_key(ada, short.id)) > 2 * HOUR_MS - 5000
    time.sleep(0.25)
    assert len(members(redis_backend, ada)) == 2  # Redis expired the key, not the member
    assert [r.id for r in store.iterate(user_id=ada)] == [long.id]
    # The next write to that part of the index drops it.
    store.create(record_tagged("a0", ada, ttl=timedelta(hours=1)))
    assert store.session_key(short.id) not in members(redis_backend, ada)
    assert len(members(redis_backend, ada)) == 2


def test_a_lost_user_set_is_restored_by_the_next_write(redis_backend: RedisBackend) -> None:
    store = redis_backend.store
    ada = redis_backend.add_user("ada@example.com")
    saved, touched, idle = (make_record(ada) for _ in range(3))
    for record in (saved, touched, idle):
        store.create(record)
    redis_backend.keyspace.admin.delete(*store.user_keys(ada))  # evicted, say
    assert store.update(dataclasses.replace(saved, data={"user_id": ada, "n": 1}))
    assert store.touch(touched.id, last_seen_at=NOW, expires_at=NOW + timedelta(hours=1))
    key = store.session_key
    assert members(redis_backend, ada) == {key(saved.id), key(touched.id)}
    assert pttl(redis_backend, store.user_key(ada, saved.id)) > HOUR_MS - 5000


def test_delete_all_for_user_scans_nothing(redis_backend: RedisBackend) -> None:
    store = redis_backend.store
    ada = redis_backend.add_user("ada@example.com")
    for _ in range(3):
        store.create(make_record(ada))
    with redis_backend.operations() as operations:
        assert store.delete_all_for_user(ada) == 3
    assert len(operations) == 1 and operations[0].startswith("DELETE session for user: EVALSHA")
    # Nor does the script: it reads the user's set, never the key space.
    assert "'SCAN'" not in _DELETE_ALL_FOR_USER and "'KEYS'" not in _DELETE_ALL_FOR_USER


# -- no resurrection ---------------------------------------------------------------


def test_a_deleted_key_is_not_written_back(redis_backend: RedisBackend) -> None:
    store = redis_backend.store
    record = make_record()
    store.create(record)
    # Gone behind the store's back (redis-cli DEL, or its TTL ran out).
    redis_backend.keyspace.admin.delete(store.session_key(record.id))
    assert store.update(dataclasses.replace(record, data={"late": True})) is False
    assert store.touch(record.id, last_seen_at=NOW, expires_at=NOW + timedelta(hours=1)) is False
    renamed = dataclasses.replace(record, id=session_id_for(new_token()))
    assert store.update(renamed, previous_id=record.id) is False
    assert redis_backend.keyspace.keys(store.prefix) == []


def test_saves_racing_a_delete_never_re_create_the_session(redis_backend: RedisBackend) -> None:
    store = redis_backend.store
    ada = redis_backend.add_user("ada@example.com")
    record = make_record(ada)
    store.create(record)
    deleted = threading.Event()
    stop = threading.Event()
    problems: list[object] = []

    def save_forever() -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                after_delete = deleted.is_set()
                saved = store.update(dataclasses.replace(record, data={"user_id": ada, "n": n}))
                touched = store.touch(
                    record.id, last_seen_at=NOW, expires_at=NOW + timedelta(hours=1)
                )
                if after_delete and (saved or touched):
                    problems.append(f"save {n} after the delete wrote the session")
        except BaseException as e:  # pragma: no cover - reported below
            problems.append(e)

    threads = [threading.Thread(target=save_forever) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.05)
        assert store.delete(record.id) is True
        deleted.set()
        time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert problems == []
    assert redis_backend.keyspace.keys(store.prefix) == []


# -- users ------------------------------------------------------------------------


def test_session_of_a_user_who_is_gone_is_gone(redis_backend: RedisBackend) -> None:
    ada = redis_backend.add_user("ada@example.com")
    record = make_record(ada)
    redis_backend.store.create(record)
    # The user row is deleted without deleting the sessions (no cascade in Redis).
    del redis_backend.users[ada]
    assert redis_backend.store.get(record.id, NOW) is None


def test_user_ids_keep_their_type(redis_keyspace: RedisKeyspace) -> None:
    loaded: list[object] = []

    def load(user_id: object) -> object:
        loaded.append(user_id)
        return {"id": user_id}

    client = redis.Redis.from_url(redis_keyspace.url, decode_responses=True)
    store = RedisStore(client, prefix=redis_keyspace.new_prefix(), user_loader=load)
    try:
        records = [make_record(42), make_record("ada"), make_record()]
        for record in records:
            store.create(record)
        found = [store.get(r.id, NOW) for r in records]
        assert [r.user_id for r in found if r is not None] == [42, "ada", None]
        assert loaded == [42, "ada"]
        assert store.delete_all_for_user("ada") == 1

        store.user_id_type = uuid.UUID
        user = uuid.uuid4()
        record = make_record(user)
        store.create(record)
        again = store.get(record.id, NOW)
        assert again is not None and again.user_id == user
        # As `flask kitsession revoke --user` passes it: the id as text.
        assert store.delete_all_for_user(str(user)) == 1
    finally:
        redis_keyspace.delete(store.prefix)
        store.close()


# -- moving between stores ------------------------------------------------------------


def test_a_session_moves_between_sql_and_redis_without_loss(
    sqlite_engine: sa.Engine, redis_backend: RedisBackend
) -> None:
    sql = SQLBackend("sqlite", sqlite_engine)
    sql.reset()
    data = {
        "when": datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc),
        "pair": (1, "two"),
        "bytes": b"\x00\xff",
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "markup": Markup("<b>hi</b>"),
        "nested": {"list": [1, {"deep": (3, 4)}], " t": "looks like a tag"},
        "float": 0.1,
        "big": 2**62 + 1,
    }
    try:
        record = make_record(data=data)
        sql.store.create(record)
        from_sql = sql.store.get(record.id, NOW)
        assert from_sql is not None and from_sql.data == data
        redis_backend.store.create(from_sql)
        from_redis = redis_backend.store.get(record.id, NOW)
        assert from_redis is not None and from_redis.data == data
        assert dataclasses.replace(from_redis, user=None) == from_sql
        [row] = redis_backend.rows()
        assert row["data"] == sql.store.serializer.dumps(data)

        sql.store.delete(record.id)
        sql.store.create(from_redis)
        back = sql.store.get(record.id, NOW)
        assert back is not None and back.data == data
    finally:
        sql.reset()


# -- configuration, commands, failures --------------------------------------------------


def test_redis_url_in_the_config(redis_keyspace: RedisKeyspace, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'users.sqlite3'}"
    users = create_store_engine(database_url)
    upgrade(users)
    with users.begin() as connection:
        ada = connection.execute(
            user_table.insert().values(email="ada@example.com", created_at=NOW)
        ).inserted_primary_key[0]  # type: ignore[index]
    prefix = redis_keyspace.new_prefix()
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        KITSESSION_DATABASE_URL=database_url,
        KITSESSION_REDIS_URL=redis_keyspace.url,
        KITSESSION_REDIS_PREFIX=prefix,
    )
    KitSession(app)
    add_views(app)
    store = app.extensions["kitsession"].store
    try:
        assert isinstance(store, RedisStore)
        assert store.prefix == prefix and store.user_id_type is int
        client = app.test_client()
        log_in(client, ada)
        # The session is in Redis; the user comes from SQL.
        assert me(client) == {"user_id": ada, "email": "ada@example.com"}
        assert len(redis_keyspace.keys(prefix + "session:")) == 1
        with users.connect() as connection:
            assert connection.execute(sa.select(session_table)).all() == []
    finally:
        redis_keyspace.delete(prefix)
        store.close()
        users.dispose()


def test_cleanup_says_redis_needs_none(redis_backend: RedisBackend) -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=redis_backend.store)
    result = app.test_cli_runner().invoke(args=["kitsession", "cleanup"])
    assert result.exit_code == 0, result.output
    assert result.output == "Nothing to do: RedisStore expires sessions by itself.\n"


def test_prefix_is_matched_literally(redis_keyspace: RedisKeyspace) -> None:
    base = redis_keyspace.new_prefix()
    starred = RedisStore.from_url(redis_keyspace.url, prefix=base + "a*:")
    other = RedisStore.from_url(redis_keyspace.url, prefix=base + "ab:")
    try:
        mine, theirs = make_record(), make_record()
        starred.create(mine)
        other.create(theirs)
        assert [r.id for r in starred.iterate()] == [mine.id]
        assert [r.id for r in other.iterate()] == [theirs.id]
    finally:
        redis_keyspace.delete(base)
        starred.close()
        other.close()


def test_unreachable_redis_is_a_store_failure() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    with pytest.raises(StoreUnavailableError, match="Cannot load the session: Redis failed"):
        store.get("0" * 64, NOW)
    with pytest.raises(StoreUnavailableError, match="Cannot store the session"):
        store.create(make_record())
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=store)
    add_views(app)
    client = app.test_client()
    response = client.post("/set", data={"a": "1"})
    assert response.status_code == 503


def test_without_redis_installed_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"pip install 'flask-kitsession\[redis\]'"):
        RedisStore.from_url("redis://127.0.0.1:6379/0")
