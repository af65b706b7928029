"""RedisStore on a master and a replica watched by three Sentinels, started
by the tests: the store's contract, the configuration, and a failover.
"""

from __future__ import annotations

import secrets
import signal
import time
import typing as t
from pathlib import Path

import pytest
from flask import Flask

from flask_kitsession import KitSession
from flask_kitsession.stores.redis import make_redis_client

from . import test_stores
from .support.apps import add_views
from .support.apps import SECRET_KEY
from .support.failover import describe
from .support.failover import Traffic
from .support.servers import IN_CI
from .support.topologies import contract_tests
from .support.topologies import RedisSentinelServers
from .support.topologies import RedisTopologyBackend
from .test_scaling_redis_cluster import make_users

globals().update(contract_tests(test_stores))


@pytest.fixture(scope="module")
def redis_sentinel() -> t.Iterator[RedisSentinelServers]:
    """A master, a replica and three Sentinels on ports of their own."""
    servers = RedisSentinelServers()
    try:
        servers.__enter__()
    except (OSError, RuntimeError, TimeoutError) as e:
        message = f"Redis Sentinel could not start: {e}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: redis-server is required)")
        pytest.skip(message)
    yield servers
    servers.__exit__()


@pytest.fixture
def backend(redis_sentinel: RedisSentinelServers) -> t.Iterator[RedisTopologyBackend]:
    client = make_redis_client(redis_sentinel.url, sentinels=redis_sentinel.sentinel_addresses)
    sentinel_backend = RedisTopologyBackend(client, f"kitsession_test_{secrets.token_hex(4)}:")
    yield sentinel_backend
    sentinel_backend.reset()
    client.close()


def sentinel_app(redis_sentinel: RedisSentinelServers, users_url: str) -> Flask:
    """An app configured for Sentinel by its configuration alone."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        KITSESSION_DATABASE_URL=users_url,
        KITSESSION_REDIS_URL=f"{redis_sentinel.url}?socket_timeout=1&socket_connect_timeout=1",
        KITSESSION_REDIS_SENTINELS=",".join(redis_sentinel.sentinel_addresses),
        KITSESSION_REDIS_PREFIX=f"kitsession_test_{secrets.token_hex(4)}:",
    )
    KitSession(app)
    add_views(app)
    return app


def test_the_configuration_asks_the_sentinels(
    redis_sentinel: RedisSentinelServers, tmp_path: Path
) -> None:
    users_url, [ada] = make_users(tmp_path / "users.sqlite3", 1)
    app = sentinel_app(redis_sentinel, users_url)
    store = app.extensions["kitsession"].store
    try:
        pool = store.client.connection_pool
        assert pool.service_name == redis_sentinel.service
        assert pool.get_master_address() == redis_sentinel.master()
        client = app.test_client()
        assert client.post("/login", data={"user_id": str(ada)}).status_code == 200
        assert client.get("/me").json == {"user_id": ada, "email": "user0@example.com"}
    finally:
        RedisTopologyBackend(store.client, store.prefix).reset()
        store.close()


def test_sentinel_addresses_and_url_are_checked() -> None:
    with pytest.raises(ValueError, match="host:port"):
        make_redis_client("redis://mymaster/0", sentinels=["nowhere"])
    with pytest.raises(ValueError, match="exclude each other"):
        make_redis_client("redis://mymaster/0", sentinels=["127.0.0.1:1"], cluster=True)


def test_failover_of_the_master_mid_traffic(
    redis_sentinel: RedisSentinelServers, tmp_path: Path
) -> None:
    """Kill the master (SIGKILL) while 8 browsers log in, read and write; the
    Sentinels promote the replica and the client follows them. Requests in
    the gap get 503, never 500 nor another user's session; every session
    acknowledged before the last replication checkpoint survives.
    """
    users_url, user_ids = make_users(tmp_path / "users.sqlite3", 8)
    app = sentinel_app(redis_sentinel, users_url)
    store = app.extensions["kitsession"].store
    old_master = redis_sentinel.master()
    assert old_master is not None
    try:
        with Traffic(app, user_ids) as traffic:
            time.sleep(1.5)
            redis_sentinel.checkpoint()
            checkpoint = time.monotonic()
            time.sleep(0.3)
            killed = time.monotonic()
            redis_sentinel.servers[old_master[1]].stop(signal.SIGKILL)
            recovered = traffic.wait_for_recovery(killed, timeout=60)
            time.sleep(0.5)
        assert redis_sentinel.master() != old_master
        assert traffic.errors == [] and traffic.wrong_user == []
        gap = traffic.statuses(killed, recovered + 0.001)
        assert set(traffic.statuses()) <= {200, 503}
        before = traffic.sessions_lost(until=checkpoint)
        window = traffic.sessions_lost(checkpoint, killed)
        after = traffic.sessions_lost(killed)
        count = traffic.count_acknowledged
        print(
            f"\nRedis Sentinel failover: {recovered - killed:.1f} s from the kill to the last"
            f" failure; answers in the gap: {describe(gap)}; sessions lost of those"
            f" acknowledged: before the checkpoint {len(before)} of {count(until=checkpoint)},"
            f" in the {killed - checkpoint:.1f} s between the checkpoint and the kill"
            f" {len(window)} of {count(checkpoint, killed)}, after the kill {len(after)} of"
            f" {count(since=killed)}"
        )
        assert before == [] and after == []
        assert gap.get(503, 0) > 0
    finally:
        RedisTopologyBackend(store.client, store.prefix).reset()
        store.close()
