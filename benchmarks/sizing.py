"""``python -m benchmarks.sizing``: what one session costs on disk in PostgreSQL.

On a PostgreSQL server of its own (``initdb`` in a temporary directory, on a
port of its own, stopped and removed at the end; ``fsync`` on, as by
default), it fills kitsession's tables with ``--users`` users of three
sessions each,
as a login writes them (a JSON ``data`` with the user id and a CSRF token, a
browser's user agent, an IPv4 address), runs ``VACUUM ANALYZE``, and reports
the bytes per session row of the table (with its TOAST) and of each index.
Then it writes ``--writes`` logins, touches and data writes through
``SQLAlchemyStore`` and reports the WAL each kind writes.
``docs/scaling.md`` sizes a deployment from these figures.
"""

from __future__ import annotations

import argparse
import random
import secrets
import statistics
import sys
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import sqlalchemy as sa

from flask_kitsession import SessionRecord
from flask_kitsession import SQLAlchemyStore
from flask_kitsession.stores.sql import create_store_engine
from flask_kitsession.tokens import new_token
from flask_kitsession.tokens import session_id_for

from .servers import PostgreSQLPair
from .stacks import Database
from .stacks import populate

#: What a browser of 2026 sends, 111 characters.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)


def _wal_lsn(connection: sa.Connection) -> int:
    return int(
        connection.execute(
            sa.text("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')")
        ).scalar_one()
    )


def plan_and_run(
    store: SQLAlchemyStore, connection: sa.Connection, user_id: int
) -> dict[str, float]:
    """The server's own time for the hot path's SELECT (a session joined with
    its user), as ``EXPLAIN ANALYZE`` reports it, median of 200: planning
    (what every read pays when nothing is prepared) and execution.
    """
    session_id = connection.execute(
        sa.text("SELECT id FROM session WHERE user_id = :user_id LIMIT 1"), {"user_id": user_id}
    ).scalar_one()
    statement = store._statements["get"][0]
    sql = str(statement.compile(dialect=connection.dialect))
    planning, execution = [], []
    for _ in range(200):
        plan = connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}",
            {"id": session_id, "now": datetime.now(timezone.utc)},
        ).scalar_one()[0]
        planning.append(plan["Planning Time"] * 1000)
        execution.append(plan["Execution Time"] * 1000)
    return {
        "hot path SELECT: planning, µs": statistics.median(planning),
        "hot path SELECT: execution, µs": statistics.median(execution),
    }


def wal_per_write(url: str, users: int, count: int) -> dict[str, float]:
    """WAL bytes per login (a new row), per touch and per data write, through
    the store, on sessions of the filled table.
    """
    store = SQLAlchemyStore(create_store_engine(url))
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    now = datetime.now(timezone.utc)
    records = [
        SessionRecord(
            id=session_id_for(new_token()),
            data={"user_id": n, "csrf_token": secrets.token_urlsafe(32)},
            user_id=n,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(days=31),
            authenticated_at=now,
            user_agent=USER_AGENT,
            ip_address="203.0.113.9",
        )
        for n in random.sample(range(1, users + 1), count)
    ]
    wal: dict[str, float] = {}
    try:
        with admin.connect() as connection:
            wal.update(plan_and_run(store, connection, records[0].user_id))
            # A checkpoint first: every kind of write then pays the same
            # first-touch page images (full_page_writes), as in production.
            connection.execute(sa.text("CHECKPOINT"))
            start = _wal_lsn(connection)
            for record in records:
                store.create(record)
            wal["login (INSERT)"] = (_wal_lsn(connection) - start) / count
            later = now + timedelta(minutes=5)
            start = _wal_lsn(connection)
            for record in records:
                store.touch(record.id, last_seen_at=later, expires_at=later + timedelta(days=31))
            wal["touch (UPDATE of the times)"] = (_wal_lsn(connection) - start) / count
            start = _wal_lsn(connection)
            for record in records:
                record.data["cart"] = "2 pears"
                record.updated_at = record.last_seen_at = later
                store.update(record)
            wal["data write (UPDATE)"] = (_wal_lsn(connection) - start) / count
    finally:
        store.close()
        admin.dispose()
    return wal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sizing", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--writes", type=int, default=5000, help="writes timed per kind")
    parser.add_argument("--smoke", action="store_true", help="a tiny size: checks it works")
    args = parser.parse_args(argv)
    users, writes = (300, 50) if args.smoke else (args.users, args.writes)
    with PostgreSQLPair(with_standby=False, durable=True) as server:
        url = server.direct_url(server.primary_port)
        sizes = measure(url, users)
        wal = wal_per_write(url, users, writes)
    rows, table, row_bytes, indexes = sizes
    total = table + sum(size for _, size in indexes)
    print(f"{rows:,} session rows (3 per user), after VACUUM ANALYZE:")
    print()
    print("| relation | MB | bytes per session |")
    print("|---|---:|---:|")
    print(
        f"| session table (rows average {row_bytes:,.0f} bytes) | {table / 1e6:,.1f}"
        f" | {table / rows:,.0f} |"
    )
    for name, size in indexes:
        print(f"| {name} | {size / 1e6:,.1f} | {size / rows:,.0f} |")
    print(f"| **all** | {total / 1e6:,.1f} | {total / rows:,.0f} |")
    print()
    print(f"The server's time per read, and WAL per write ({writes:,} of each):")
    print()
    print("| what | figure |")
    print("|---|---:|")
    for name, value in wal.items():
        unit = "" if "µs" in name else " bytes of WAL"
        print(f"| {name} | {value:,.0f}{unit} |")
    return 0


def measure(url: str, users: int) -> tuple[int, int, float, list[tuple[str, int]]]:
    """Fill the database at ``url``; return rows, table bytes, the average
    row's bytes, and (name, bytes) of each index.
    """
    populate(Database("postgresql", url))
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(
                sa.text(
                    'INSERT INTO "user" (email, created_at) SELECT'
                    " 'member' || i || '@example.com', now()"
                    " FROM generate_series(1, :count) AS i"
                ),
                {"count": users},
            )
            # Three devices per user: ids are SHA-256 hex like the real ones.
            connection.execute(
                sa.text(
                    "INSERT INTO session (id, user_id, data, created_at, updated_at,"
                    " last_seen_at, expires_at, authenticated_at, user_agent, ip_address)"
                    " SELECT encode(sha256(('s' || u.id || ':' || d)::bytea), 'hex'), u.id,"
                    " jsonb_build_object('user_id', u.id, 'csrf_token',"
                    "   encode(sha256(('t' || u.id || d)::bytea), 'base64')),"
                    " now(), now(), now(),"
                    " now() + interval '31 days' - (u.id * 3 + d) * interval '1 second', now(),"
                    " :agent, '203.0.113.' || (u.id % 250)"
                    ' FROM "user" AS u, generate_series(1, 3) AS d'
                ),
                {"agent": USER_AGENT},
            )
            connection.execute(sa.text("VACUUM ANALYZE session"))
            rows = connection.execute(sa.text("SELECT count(*) FROM session")).scalar_one()
            table = connection.execute(
                sa.text("SELECT pg_table_size('session')")  # heap + TOAST + maps
            ).scalar_one()
            indexes = connection.execute(
                sa.text(
                    "SELECT indexrelname, pg_relation_size(indexrelid)"
                    " FROM pg_stat_user_indexes"
                    " WHERE relname = 'session' ORDER BY 1"
                )
            ).all()
            row_bytes = connection.execute(
                sa.text("SELECT avg(pg_column_size(s.*)) FROM session AS s")
            ).scalar_one()
    finally:
        engine.dispose()
    return (
        int(rows),
        int(table),
        float(row_bytes),
        [(str(name), int(size)) for name, size in indexes],
    )


if __name__ == "__main__":
    sys.exit(main())
