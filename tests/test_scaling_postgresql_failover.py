"""The SQL store through a PostgreSQL failover: a primary and a streaming
standby that the test creates (``initdb`` + ``pg_basebackup``) on ports of
their own, the app on a multi-host URL with
``target_session_attrs=read-write``. The primary stops, the standby is
promoted: requests in the gap get 503, the app recovers without a restart,
and every session acknowledged before the stop is still valid.
"""

from __future__ import annotations

import signal
import time
import typing as t

import pytest
from flask import Flask

from flask_kitsession import KitSession
from flask_kitsession.models import user_table
from flask_kitsession.models import utc_now
from flask_kitsession.stores.sql import create_store_engine

from .support.apps import add_views
from .support.apps import SECRET_KEY
from .support.failover import describe
from .support.failover import Traffic
from .support.servers import IN_CI
from .support.servers import upgrade
from .support.topologies import PostgreSQLPair


@pytest.fixture(scope="module")
def postgresql_pair() -> t.Iterator[PostgreSQLPair]:
    pair = PostgreSQLPair()
    try:
        pair.__enter__()
    except (OSError, RuntimeError, TimeoutError) as e:
        message = f"The PostgreSQL primary and standby could not start: {e}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: initdb and pg_basebackup are required)")
        pytest.skip(message)
    yield pair
    pair.__exit__()


def test_failover_to_the_promoted_standby(postgresql_pair: PostgreSQLPair) -> None:
    engine = create_store_engine(postgresql_pair.url)
    upgrade(engine)
    with engine.begin() as connection:
        user_ids = [
            connection.execute(
                user_table.insert().values(email=f"user{n}@example.com", created_at=utc_now())
            ).inserted_primary_key[0]  # type: ignore[index]
            for n in range(8)
        ]
    engine.dispose()
    app = Flask(__name__)
    # The URL alone: both servers, and only one that accepts writes will do.
    app.config.update(SECRET_KEY=SECRET_KEY, KITSESSION_DATABASE_URL=postgresql_pair.url)
    KitSession(app)
    add_views(app)
    try:
        with Traffic(app, user_ids) as traffic:
            time.sleep(1.5)
            stopped = time.monotonic()
            # SIGQUIT: immediate shutdown, no checkpoint, as close to a crash
            # as PostgreSQL's own signals go.
            postgresql_pair.primary.stop(signal.SIGQUIT)
            time.sleep(1)
            postgresql_pair.promote_standby()
            promoted = time.monotonic()
            recovered = traffic.wait_for_recovery(stopped)
            time.sleep(0.5)
        assert not postgresql_pair.in_recovery(postgresql_pair.standby_port)
        assert traffic.errors == [] and traffic.wrong_user == []
        gap = traffic.statuses(stopped, recovered + 0.001)
        assert set(traffic.statuses()) <= {200, 503}
        lost = traffic.sessions_lost(until=stopped)
        acknowledged = sum(a.at < stopped for a in traffic.acknowledged)
        print(
            f"\nPostgreSQL failover: primary stopped, standby promoted"
            f" {promoted - stopped:.1f} s later; last failure {recovered - stopped:.1f} s after"
            f" the stop; answers in the gap: {describe(gap)}; sessions acknowledged before"
            f" the stop: {acknowledged}, lost: {len(lost)}; after: "
            f"{len(traffic.acknowledged) - acknowledged}, lost:"
            f" {len(traffic.sessions_lost(since=stopped))}"
        )
        assert lost == []
        assert gap.get(503, 0) > 0
    finally:
        app.extensions["kitsession"].store.close()
