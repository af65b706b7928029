"""``python -m benchmarks.prepared``: what preparing statements is worth on
a direct PostgreSQL connection.

kitsession's engine lets psycopg prepare statements on the server only on a
direct connection, never through a pooler such as PgBouncer in transaction
mode, where they would fail. This times the hot path, ``SQLAlchemyStore.get``
of an authenticated session (the session joined with its user), in-process,
on a direct connection with the default engine (prepared) and with
``prepare_threshold=None`` (what every read costs behind a pooler), in
interleaved rounds, and reports the median time per read of each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone

from flask_kitsession import SessionRecord
from flask_kitsession import SQLAlchemyStore
from flask_kitsession.tokens import new_token
from flask_kitsession.tokens import session_id_for

from .stacks import prepare_database
from .stacks import USER_ID

VARIANTS: dict[str, dict[str, t.Any]] = {
    "prepared (the default on a direct connection)": {},
    "unprepared (as behind a pooler)": {"connect_args": {"prepare_threshold": None}},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.prepared", description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reads", type=int, default=3000, help="reads per round and variant")
    parser.add_argument("--smoke", action="store_true", help="a tiny run: checks it works")
    args = parser.parse_args(argv)
    rounds, reads = (2, 50) if args.smoke else (args.rounds, args.reads)
    database = prepare_database("postgresql")
    stores = {
        name: SQLAlchemyStore(database.engine(**options), user_fields=["id", "email"])
        for name, options in VARIANTS.items()
    }
    try:
        now = datetime.now(timezone.utc)
        record = SessionRecord(
            id=session_id_for(new_token()),
            data={"user_id": USER_ID},
            user_id=USER_ID,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=1),
            authenticated_at=now,
        )
        next(iter(stores.values())).create(record)
        timings: dict[str, list[float]] = {name: [] for name in stores}
        for store in stores.values():
            for _ in range(20):  # warm up: connect, and prepare where it does
                store.get(record.id, now)
        for _ in range(rounds):
            for name, store in stores.items():
                start = time.perf_counter()
                for _ in range(reads):
                    assert store.get(record.id, now) is not None
                timings[name].append((time.perf_counter() - start) / reads * 1e6)
    finally:
        for store in stores.values():
            store.close()
        database.cleanup()
    medians = {name: statistics.median(values) for name, values in timings.items()}
    print(f"SQLAlchemyStore.get, authenticated, {rounds} rounds × {reads:,} reads, median:")
    print()
    print("| statements | µs per read |")
    print("|---|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:,.1f} |")
    prepared, unprepared = medians.values()
    print()
    print(
        f"Unprepared costs {unprepared - prepared:+,.1f} µs per read"
        f" ({unprepared / prepared - 1:+.1%})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
