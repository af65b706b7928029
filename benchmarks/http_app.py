"""The app gunicorn serves for ``python -m benchmarks.http``: one stack, named
by ``KITSESSION_BENCH_STACK``, on the database ``KITSESSION_BENCH_DATABASE_URL``
(with ``KITSESSION_BENCH_PREPARE_THRESHOLD``, psycopg prepares statements).
"""

from __future__ import annotations

import os

from flask import Flask

from . import stacks

FACTORIES = {
    "floor": stacks.floor,
    "kitsession": stacks.kitsession_sql,
    "kitsession-redis": stacks.kitsession_redis,
    "flask-session": stacks.flask_session_login,
    "cookie": stacks.cookie_login,
}


def create_app() -> Flask:
    url = os.environ["KITSESSION_BENCH_DATABASE_URL"]
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    database = stacks.Database(kind, url)
    threshold = os.environ.get("KITSESSION_BENCH_PREPARE_THRESHOLD")
    if threshold:
        # psycopg's own default is 5: statements prepared on the server.
        database.engine_options = {"connect_args": {"prepare_threshold": int(threshold)}}
    stack = FACTORIES[os.environ["KITSESSION_BENCH_STACK"]](database)
    return stack.app
