"""The app gunicorn serves for ``python -m benchmarks.http``: one stack, named
by ``KITSESSION_BENCH_STACK``, on the database ``KITSESSION_BENCH_DATABASE_URL``
(``KITSESSION_BENCH_PREPARE_THRESHOLD``: psycopg's, ``none`` for never).
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
        # "none": never prepared, as kitsession's engine does behind a pooler.
        value = None if threshold == "none" else int(threshold)
        database.engine_options = {"connect_args": {"prepare_threshold": value}}
    stack = FACTORIES[os.environ["KITSESSION_BENCH_STACK"]](database)
    return stack.app
