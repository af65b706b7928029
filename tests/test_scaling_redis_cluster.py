"""RedisStore on a Redis Cluster of 3 masters, each with a replica, started
by the tests: the store's contract, the configuration, and a failover.
"""

from __future__ import annotations

import dataclasses
import secrets
import signal
import time
import typing as t
from pathlib import Path

import pytest
from flask import Flask
from redis.cluster import RedisCluster

from flask_kitsession import KitSession
from flask_kitsession import RedisStore
from flask_kitsession import SessionRecord
from flask_kitsession.models import user_table
from flask_kitsession.models import utc_now
from flask_kitsession.stores.sql import create_store_engine

from . import test_stores
from .support.apps import add_views
from .support.apps import SECRET_KEY
from .support.failover import describe
from .support.failover import Traffic
from .support.servers import IN_CI
from .support.servers import upgrade
from .support.topologies import contract_tests
from .support.topologies import RedisClusterServers
from .support.topologies import RedisTopologyBackend

globals().update(contract_tests(test_stores))


@pytest.fixture(scope="session")
def redis_cluster() -> t.Iterator[RedisClusterServers]:
    """3 masters and 3 replicas on ports of their own, for the whole run."""
    servers = RedisClusterServers()
    try:
        servers.__enter__()
    except (OSError, RuntimeError, TimeoutError) as e:
        message = f"The Redis Cluster could not start: {e}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: redis-server is required)")
        pytest.skip(message)
    yield servers
    servers.__exit__()


@pytest.fixture
def backend(redis_cluster: RedisClusterServers) -> t.Iterator[RedisTopologyBackend]:
    client = RedisCluster.from_url(redis_cluster.url)
    cluster_backend = RedisTopologyBackend(client, f"kitsession_test_{secrets.token_hex(4)}:")
    yield cluster_backend
    cluster_backend.reset()
    client.close()


def test_every_session_and_its_index_share_a_slot(backend: RedisTopologyBackend) -> None:
    store = backend.store
    assert store.cluster
    for record in (test_stores.make_record(7) for _ in range(20)):
        store.create(record)
        slots = {
            backend.client.keyslot(key)
            for key in (store.session_key(record.id), store.user_key(7, record.id))
        }
        assert len(slots) == 1
    # Spread over the masters, not all on one.
    nodes = {
        backend.client.get_node_from_key(store.session_key(r.id)).name
        for r in store.iterate(user_id=7)
    }
    assert len(nodes) == 3


def test_a_prefix_with_a_hash_tag_is_refused(redis_cluster: RedisClusterServers) -> None:
    client = RedisCluster.from_url(redis_cluster.url)
    try:
        with pytest.raises(ValueError, match="must not contain"):
            RedisStore(client, prefix="app{1}:")
    finally:
        client.close()


def make_users(path: Path, count: int) -> tuple[str, list[int]]:
    """A SQLite database of ``count`` users for ``session.user``; its URL and the ids."""
    url = f"sqlite:///{path}"
    engine = create_store_engine(url)
    upgrade(engine)
    with engine.begin() as connection:
        ids = [
            connection.execute(
                user_table.insert().values(email=f"user{n}@example.com", created_at=utc_now())
            ).inserted_primary_key[0]  # type: ignore[index]
            for n in range(count)
        ]
    engine.dispose()
    return url, ids


def cluster_app(redis_cluster: RedisClusterServers, users_url: str) -> Flask:
    """An app configured for the cluster by its configuration alone."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        KITSESSION_DATABASE_URL=users_url,
        KITSESSION_REDIS_URL=f"{redis_cluster.url}?socket_timeout=1&socket_connect_timeout=1",
        KITSESSION_REDIS_CLUSTER=True,
        KITSESSION_REDIS_PREFIX=f"kitsession_test_{secrets.token_hex(4)}:",
    )
    KitSession(app)
    add_views(app)
    return app


def test_the_configuration_makes_a_cluster_client(
    redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    users_url, [ada] = make_users(tmp_path / "users.sqlite3", 1)
    app = cluster_app(redis_cluster, users_url)
    store = app.extensions["kitsession"].store
    try:
        assert isinstance(store.client, RedisCluster)
        client = app.test_client()
        assert client.post("/login", data={"user_id": str(ada)}).status_code == 200
        assert client.get("/me").json == {"user_id": ada, "email": "user0@example.com"}
        assert client.post("/sign-out-others").json == {"count": 0}
    finally:
        RedisTopologyBackend(store.client, store.prefix).reset()
        store.close()


def test_failover_of_a_master_mid_traffic(
    redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    """Kill a master (SIGKILL) while 8 browsers log in, read and write; its
    replica takes over. Requests in the gap get 503 (or wait in the cluster
    client's retries and get 200), never 500 nor another user's session;
    every session acknowledged before the last replication checkpoint
    survives, and the test counts what asynchronous replication lost after
    it.
    """
    users_url, user_ids = make_users(tmp_path / "users.sqlite3", 8)
    app = cluster_app(redis_cluster, users_url)
    store = app.extensions["kitsession"].store
    victim = redis_cluster.master_ports()[0]
    try:
        with Traffic(app, user_ids) as traffic:
            time.sleep(1.5)
            redis_cluster.checkpoint()
            checkpoint = time.monotonic()
            time.sleep(0.3)
            killed = time.monotonic()
            redis_cluster.nodes[victim].stop(signal.SIGKILL)
            recovered = traffic.wait_for_recovery(killed)
            time.sleep(0.5)
        assert traffic.errors == [] and traffic.wrong_user == []
        gap = traffic.statuses(killed, recovered + 0.001)
        assert set(traffic.statuses()) <= {200, 503}
        before = traffic.sessions_lost(until=checkpoint)
        window = traffic.sessions_lost(checkpoint, killed)
        after = traffic.sessions_lost(killed)
        count = traffic.count_acknowledged
        print(
            f"\nRedis Cluster failover: {recovered - killed:.1f} s from the kill to the last"
            f" failure; answers in the gap: {describe(gap)}; sessions lost of those"
            f" acknowledged: before the checkpoint {len(before)} of {count(until=checkpoint)},"
            f" in the {killed - checkpoint:.1f} s between the checkpoint and the kill"
            f" {len(window)} of {count(checkpoint, killed)}, after the kill {len(after)} of"
            f" {count(since=killed)}"
        )
        assert before == [] and after == []
        # The replica took over. Requests in the gap got 503, or, when the
        # cluster client's own retries outlasted the failover (a quick
        # promotion), waited and got 200: never anything else.
        deadline = time.monotonic() + 30
        while len(redis_cluster.master_ports()) < 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        masters = redis_cluster.master_ports()
        assert victim not in masters and len(masters) == 3
        assert set(gap) <= {200, 503}
    finally:
        RedisTopologyBackend(store.client, store.prefix).reset()
        store.close()
        # The killed node comes back as a replica: the next test finds the
        # cluster whole again.
        redis_cluster.restart(victim)
        redis_cluster.wait_until_healthy()


def record_tagged(tag: str, user_id: int | None = None) -> SessionRecord:
    """A session whose id has hash tag ``tag``: its slot is chosen."""
    while True:
        record = test_stores.make_record(user_id)
        if record.id.startswith(tag):
            return record


def test_writes_across_slots_keep_the_guarantees(backend: RedisTopologyBackend) -> None:
    """The writes that name two sessions in different slots take two steps:
    they still replace, rename and refuse as in one script.
    """
    store, now = backend.store, test_stores.NOW
    ada = backend.add_user("ada@example.com")
    old, new = record_tagged("00", ada), record_tagged("ff", ada)
    assert backend.client.keyslot(store.session_key(old.id)) != backend.client.keyslot(
        store.session_key(new.id)
    )
    store.create(old)
    store.create(new, replaces=old.id)
    assert store.get(old.id, now) is None and store.get(new.id, now) is not None
    assert {r.id for r in store.iterate(user_id=ada)} == {new.id}

    # A new token in another slot: the session moves, its creation time with it.
    renamed = dataclasses.replace(new, id=record_tagged("7f").id, data={"user_id": ada, "n": 1})
    assert store.update(renamed, previous_id=new.id)
    moved = store.get(renamed.id, now)
    assert moved is not None and moved.data == {"user_id": ada, "n": 1}
    assert moved.created_at == new.created_at and moved.user_agent == new.user_agent
    assert store.get(new.id, now) is None
    assert {r.id for r in store.iterate(user_id=ada)} == {renamed.id}

    # A session revoked meanwhile is never written back under a new key.
    assert store.delete_all_for_user(ada) == 1
    again = dataclasses.replace(renamed, id=record_tagged("3c").id)
    assert store.update(again, previous_id=renamed.id) is False
    assert backend.rows() == []
