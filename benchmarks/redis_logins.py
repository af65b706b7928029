"""``python -m benchmarks.redis_logins``: does a RedisStore login cost the
same whatever the number of the user's sessions?

For each size (1k, 10k and 100k live sessions of one user by default) it
fills Redis with that user's sessions, then times logins of that user (the
create script: the session, its entry in the user's index, pruning), as the
client sees them and as Redis counts them (``INFO commandstats``: the time
Redis is blocked). Then it lets every session of the largest size expire and
times logins again: each one drops at most 32 expired index entries.
It also times touches (the write of a used session, once per touch
interval) and reads (``HMGET``) at the largest size. Finally it reports Redis's memory per
session for users with three devices, with Redis's default encoding limits
and with ``hash-max-listpack-value`` raised so that a session's hash stays
compact.

It starts a redis-server of its own on 127.0.0.1 (no other client disturbs
the figures), stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import redis

from flask_kitsession import RedisStore
from flask_kitsession import SessionRecord
from flask_kitsession.tokens import new_token
from flask_kitsession.tokens import session_id_for

from .servers import RedisServer

USER_ID = 1
#: A session's hash stays a compact listpack while each value is at most this
#: long (Redis's default is 64 bytes; session data and user agents are longer).
COMPACT_HASH_VALUE = 2048


@dataclass
class LoginResult:
    sessions: str
    logins: int
    client_p50_us: float
    client_p99_us: float
    redis_us_per_call: float


def _record(user_id: int | None, ttl: timedelta) -> SessionRecord:
    now = datetime.now(timezone.utc)
    return SessionRecord(
        id=session_id_for(new_token()),
        data={"user_id": user_id, "csrf_token": secrets.token_urlsafe(32)},
        user_id=user_id,
        created_at=now,
        updated_at=now,
        last_seen_at=now,
        expires_at=now + ttl,
        authenticated_at=now if user_id is not None else None,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0",
        ip_address="203.0.113.7",
    )


def _fill(store: RedisStore, count: int, ttl: timedelta) -> None:
    """Store ``count`` sessions of :data:`USER_ID` through the store's own script."""
    for _ in range(count):
        store.create(_record(USER_ID, ttl))


def _script_usec(client: redis.Redis, command: str = "evalsha") -> tuple[int, int]:
    """(calls, microseconds) of ``command`` so far, as Redis counts them."""
    stats = client.info("commandstats").get(f"cmdstat_{command}", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def time_logins(
    store: RedisStore, admin: redis.Redis, label: str, logins: int, *, then: str = "login"
) -> LoginResult:
    """Time ``logins`` logins of :data:`USER_ID` (each a new session); with
    ``then="touch"`` or ``"read"``, time a touch or a read of each of those
    sessions afterwards instead.
    """
    records = [_record(USER_ID, timedelta(hours=1)) for _ in range(logins)]
    if then != "login":
        for record in records:
            store.create(record)
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    command = "hmget" if then == "read" else "evalsha"
    timings = []
    calls_before, usec_before = _script_usec(admin, command)
    for record in records:
        start = time.perf_counter()
        if then == "touch":
            store.touch(record.id, last_seen_at=later, expires_at=later + timedelta(hours=1))
        elif then == "read":
            assert store.get(record.id, later) is not None
        else:
            store.create(record)
        timings.append((time.perf_counter() - start) * 1e6)
    calls_after, usec_after = _script_usec(admin, command)
    calls = max(calls_after - calls_before, 1)
    timings.sort()
    return LoginResult(
        sessions=label,
        logins=logins,
        client_p50_us=statistics.median(timings),
        client_p99_us=timings[int(len(timings) * 0.99) - 1],
        # Other clients of a shared Redis run scripts too: an upper bound.
        redis_us_per_call=(usec_after - usec_before) / calls,
    )


def memory_per_session(store: RedisStore, admin: redis.Redis, users: int) -> tuple[float, float]:
    """Bytes of Redis memory per session (its hash, and its share of the
    index) for ``users`` users with three devices each: (``MEMORY USAGE``
    of the keys, ``used_memory`` growth).
    """
    before = int(admin.info("memory")["used_memory"])
    for user_id in range(1000, 1000 + users):
        for _ in range(3):
            store.create(_record(user_id, timedelta(days=30)))
    after = int(admin.info("memory")["used_memory"])
    keys = list(admin.scan_iter(match=store.prefix + "*", count=1000))
    usage = 0
    for key in keys:
        usage += int(t.cast(int, admin.memory_usage(key, samples=0)) or 0)
    return usage / (users * 3), (after - before) / (users * 3)


def _cleanup(admin: redis.Redis, prefix: str) -> None:
    batch = []
    for key in admin.scan_iter(match=prefix + "*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            admin.unlink(*batch)
            batch = []
    if batch:
        admin.unlink(*batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_logins", description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--logins", type=int, default=2000, help="logins timed per size")
    parser.add_argument("--memory-users", type=int, default=10000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it works")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    logins, memory_users = args.logins, args.memory_users
    if args.smoke:
        sizes, logins, memory_users = [10, 100], 20, 50
    with RedisServer() as server:
        return run(server.url, sizes, logins, memory_users)


def run(url: str, sizes: list[int], logins: int, memory_users: int) -> int:
    prefix = f"kitsession_bench_logins_{os.getpid()}_{secrets.token_hex(3)}:"
    admin = redis.Redis.from_url(url, decode_responses=True)
    store = RedisStore.from_url(url, prefix=prefix)
    results = []
    memory = []
    try:
        filled = 0
        for size in sizes:
            _fill(store, size - filled, timedelta(hours=1))
            filled = size
            results.append(time_logins(store, admin, f"{size:,} live", logins))
            print(f"timed {size:,}", file=sys.stderr, flush=True)
            # The timed logins added sessions of their own: count them.
            filled += logins
        filled += logins
        results.append(time_logins(store, admin, f"{filled:,} live: touches", logins, then="touch"))
        filled += logins
        results.append(time_logins(store, admin, f"{filled:,} live: reads", logins, then="read"))
        _cleanup(admin, prefix)
        largest = sizes[-1]
        _fill(store, largest, timedelta(milliseconds=1))
        time.sleep(0.1)
        results.append(time_logins(store, admin, f"{largest:,} expired", logins))
        _cleanup(admin, prefix)
        memory.append(("default", *memory_per_session(store, admin, memory_users)))
        _cleanup(admin, prefix)
        admin.config_set("hash-max-listpack-value", COMPACT_HASH_VALUE)
        memory.append(
            (
                f"hash-max-listpack-value {COMPACT_HASH_VALUE}",
                *memory_per_session(store, admin, memory_users),
            )
        )
    finally:
        _cleanup(admin, prefix)
        store.close()
        admin.close()
    print("| the user's sessions | calls | client p50 µs | client p99 µs | Redis µs per call |")
    print("|---|---:|---:|---:|---:|")
    for result in results:
        print(
            f"| {result.sessions} | {result.logins:,} | {result.client_p50_us:,.0f}"
            f" | {result.client_p99_us:,.0f} | {result.redis_us_per_call:,.1f} |"
        )
    print()
    print(f"Memory per session, {memory_users:,} users × 3 devices:")
    print()
    print("| Redis setting | MEMORY USAGE of its keys, bytes | used_memory growth, bytes |")
    print("|---|---:|---:|")
    for setting, usage, growth in memory:
        print(f"| {setting} | {usage:,.0f} | {growth:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
