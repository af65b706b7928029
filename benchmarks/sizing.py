"""``python -m benchmarks.sizing``: what one session costs on disk in PostgreSQL.

It fills a schema of its own with ``--users`` users of three sessions each,
as a login writes them (a JSON ``data`` with the user id and a CSRF token, a
browser's user agent, an IPv4 address), runs ``VACUUM ANALYZE``, and reports
the bytes per session row of the table (with its TOAST) and of each index.
``docs/scaling.md`` sizes a deployment from these figures. The schema is
dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys

import sqlalchemy as sa

from .stacks import Database
from .stacks import populate
from .stacks import POSTGRESQL_URL

#: What a browser of 2026 sends, 111 characters.
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/131.0.0.0 Safari/537.36"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sizing", description=__doc__)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true", help="a tiny size: checks it works")
    args = parser.parse_args(argv)
    users = 300 if args.smoke else args.users
    schema = f"kitsession_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = sa.create_engine(POSTGRESQL_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(POSTGRESQL_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        # kitsession's tables, and users numbered 1..users.
        populate(Database("postgresql", url.render_as_string(hide_password=False)))
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
                    " WHERE schemaname = :schema AND relname = 'session' ORDER BY 1"
                ),
                {"schema": schema},
            ).all()
            row_bytes = connection.execute(
                sa.text("SELECT avg(pg_column_size(s.*)) FROM session AS s")
            ).scalar_one()
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    total = table + sum(size for _, size in indexes)
    print(f"{rows:,} session rows (3 per user), after VACUUM ANALYZE:")
    print()
    print("| relation | MB | bytes per session |")
    print("|---|---:|---:|")
    print(
        f"| session table (rows average {float(row_bytes):,.0f} bytes) | {table / 1e6:,.1f}"
        f" | {table / rows:,.0f} |"
    )
    for name, size in indexes:
        print(f"| {name} | {size / 1e6:,.1f} | {size / rows:,.0f} |")
    print(f"| **all** | {total / 1e6:,.1f} | {total / rows:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
