"""``python -m benchmarks.scale``: does a session store stay fast as it grows?

For each size (10k, 100k and 1M session rows by default) it times a session
lookup and ``remove_all_sessions_for_user`` for a user with five sessions;
then it expires every row and runs ``flask kitsession cleanup`` (twice at
once, as two servers' cron jobs would) while another thread keeps logging
users in, and reports how long the longest login waited.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import typing as t
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import sqlalchemy as sa

from flask_kitsession import SessionRecord
from flask_kitsession import SQLAlchemyStore
from flask_kitsession.models import session_table
from flask_kitsession.models import user_table
from flask_kitsession.tokens import new_token
from flask_kitsession.tokens import session_id_for

from .stacks import Database
from .stacks import prepare_database

#: Users with exactly five sessions each, for remove_all_sessions_for_user.
PROBE_USERS = 50
SESSIONS_PER_PROBE = 5


@dataclass
class SizeResult:
    database: str
    rows: int
    lookup_us: float
    lookup_p99_us: float
    remove_all_us: float


@dataclass
class CleanupResult:
    database: str
    rows: int
    deleted: int
    seconds: float
    logins: int
    login_max_ms: float
    login_p99_ms: float
    errors: int


def _fill(engine: sa.Engine, start: int, stop: int) -> None:
    """Add anonymous sessions numbered start..stop-1, expiring in a day, in SQL
    (so a million rows take seconds, not minutes).
    """
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(
                sa.text(
                    "INSERT INTO session (id, user_id, data, created_at, updated_at,"
                    " last_seen_at, expires_at)"
                    " SELECT lpad(to_hex(i), 64, '0'), NULL, '{}'::jsonb, now(), now(), now(),"
                    " now() + interval '1 day' FROM generate_series(:start, :stop - 1) AS i"
                ),
                {"start": start, "stop": stop},
            )
        else:
            connection.execute(
                sa.text(
                    "WITH RECURSIVE n(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM n"
                    " WHERE i < :stop - 1)"
                    " INSERT INTO session (id, user_id, data, created_at, updated_at,"
                    " last_seen_at, expires_at)"
                    " SELECT printf('%064x', i), NULL, '{}',"
                    " strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now'),"
                    " strftime('%Y-%m-%d %H:%M:%f', 'now'),"
                    " strftime('%Y-%m-%d %H:%M:%f', 'now', '+1 day') FROM n"
                ),
                {"start": start, "stop": stop},
            )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(sa.text("ANALYZE session"))


def _record(user_id: int | None, now: datetime) -> SessionRecord:
    return SessionRecord(
        id=session_id_for(new_token()),
        data={"user_id": user_id} if user_id else {},
        user_id=user_id,
        created_at=now,
        updated_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(days=1),
    )


def _hex_id(number: int) -> str:
    return f"{number:064x}"


def measure_size(store: SQLAlchemyStore, database: str, rows: int, samples: int) -> SizeResult:
    now = datetime.now(timezone.utc)
    lookups = []
    for _ in range(samples):
        session_id = _hex_id(random.randrange(1, rows))
        start = time.perf_counter_ns()
        found = store.get(session_id, now)
        lookups.append(time.perf_counter_ns() - start)
        if found is None:
            raise AssertionError(f"session {session_id} not found among {rows} rows")
    removals = []
    probes = list(range(1, PROBE_USERS + 1))
    for user_id in probes:
        records = [_record(user_id, now) for _ in range(SESSIONS_PER_PROBE)]
        for record in records:
            store.create(record)
        start = time.perf_counter_ns()
        deleted = store.delete_all_for_user(user_id, keep=records[0].id)
        removals.append(time.perf_counter_ns() - start)
        if deleted != SESSIONS_PER_PROBE - 1:
            raise AssertionError(f"removed {deleted} sessions, expected {SESSIONS_PER_PROBE - 1}")
        store.delete(records[0].id)
    lookups.sort()
    return SizeResult(
        database,
        rows,
        statistics.median(lookups) / 1000,
        lookups[int(0.99 * (len(lookups) - 1))] / 1000,
        statistics.median(removals) / 1000,
    )


def measure_cleanup(database: Database, rows: int, batch_size: int) -> CleanupResult:
    """Expire every row, then clean up from two "servers" while logins go on."""
    engine = database.engine()
    with engine.begin() as connection:
        connection.execute(
            session_table.update().values(
                expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)
            )
        )
    login_store = SQLAlchemyStore(database.engine())
    stop = threading.Event()
    latencies: list[float] = []
    errors: list[BaseException] = []

    def keep_logging_in() -> None:
        user_ids = list(range(1, PROBE_USERS + 1))
        while not stop.is_set():
            start = time.perf_counter()
            try:
                login_store.create(_record(random.choice(user_ids), datetime.now(timezone.utc)))
            except BaseException as e:  # reported below
                errors.append(e)
            latencies.append(time.perf_counter() - start)

    logins = threading.Thread(target=keep_logging_in)
    logins.start()
    time.sleep(0.2)
    # Two servers' cron jobs: two processes running the real command at once.
    command = [
        sys.executable,
        "-m",
        "flask",
        "--app",
        "benchmarks.cleanup_app:create_app",
        "kitsession",
        "cleanup",
        "--batch-size",
        str(batch_size),
    ]
    environment = {**os.environ, "KITSESSION_DATABASE_URL": database.url}
    started = time.perf_counter()
    cleaners = [
        subprocess.Popen(
            command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = []
    for cleaner in cleaners:
        out, err = cleaner.communicate(timeout=1800)
        if cleaner.returncode != 0:
            errors.append(RuntimeError(err))
        outputs.append(out)
    seconds = time.perf_counter() - started
    stop.set()
    logins.join()
    deleted = sum(int(text.split()[1]) for text in outputs if text.startswith("Deleted"))
    with engine.connect() as connection:
        left = connection.execute(
            sa.select(sa.func.count())
            .select_from(session_table)
            .where(session_table.c.expires_at <= datetime.now(timezone.utc))
        ).scalar_one()
    if left:
        errors.append(AssertionError(f"{left} expired sessions are left"))
    login_store.close()
    engine.dispose()
    latencies.sort()
    return CleanupResult(
        database.kind,
        rows,
        deleted,
        seconds,
        len(latencies),
        latencies[-1] * 1000 if latencies else 0.0,
        latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else 0.0,
        len(errors),
    )


def run(
    kinds: list[str], sizes: list[int], samples: int, batch_size: int, log: t.Callable[[str], None]
) -> str:
    size_results: list[SizeResult] = []
    cleanup_results: list[CleanupResult] = []
    for kind in kinds:
        database = prepare_database(kind)
        try:
            engine = database.engine()
            with engine.begin() as connection:
                now = datetime.now(timezone.utc)
                connection.execute(
                    user_table.insert(),
                    [{"email": f"probe{n}@example.com", "created_at": now} for n in range(1000)],
                )
            store = SQLAlchemyStore(engine)
            filled = 1
            for rows in sizes:
                started = time.perf_counter()
                _fill(engine, filled, rows + 1)
                filled = rows + 1
                log(f"{kind}: {rows:,} rows in {time.perf_counter() - started:.1f}s")
                size_results.append(measure_size(store, kind, rows, samples))
            store.close()
            engine.dispose()
            log(f"{kind}: cleanup of {sizes[-1]:,} rows")
            cleanup_results.append(measure_cleanup(database, sizes[-1], batch_size))
        finally:
            database.cleanup()
    return report(size_results, cleanup_results, batch_size)


def report(sizes: list[SizeResult], cleanups: list[CleanupResult], batch_size: int) -> str:
    lines = [
        "| database | session rows | lookup p50 µs | lookup p99 µs"
        " | remove_all_sessions_for_user p50 µs |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in sizes:
        lines.append(
            f"| {r.database} | {r.rows:,} | {r.lookup_us:,.0f} | {r.lookup_p99_us:,.0f}"
            f" | {r.remove_all_us:,.0f} |"
        )
    lines += [
        "",
        f"`flask kitsession cleanup --batch-size {batch_size}` run by two servers at once while"
        " a third thread logs users in:",
        "",
        "| database | expired rows | deleted | seconds | logins meanwhile"
        " | longest login ms | login p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cleanups:
        lines.append(
            f"| {c.database} | {c.rows:,} | {c.deleted:,} | {c.seconds:.1f} | {c.logins:,}"
            f" | {c.login_max_ms:.1f} | {c.login_p99_ms:.1f} | {c.errors} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--samples", type=int, default=2000, help="lookups timed per size")
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks it works")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    samples = args.samples
    if args.smoke:
        sizes, samples = [500, 1000], 50
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    text = run(kinds, sizes, samples, args.batch_size if not args.smoke else 100, log)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
