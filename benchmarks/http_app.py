"""The app gunicorn serves for ``python -m benchmarks.http``: one stack, named
by ``KITSESSION_BENCH_STACK``, on the database ``KITSESSION_BENCH_DATABASE_URL``.
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
    stack = FACTORIES[os.environ["KITSESSION_BENCH_STACK"]](stacks.Database(kind, url))
    return stack.app
