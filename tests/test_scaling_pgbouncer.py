"""The SQL store behind PgBouncer (Debian's package), started by the tests.

In transaction pooling mode each transaction may run on another server
connection, where statements that psycopg prepared on the previous one do
not exist. kitsession's engine prepares none, so the whole contract suite
(every test of the ``backend``, ``sql_backend`` and ``fast_read_backend``
fixtures) runs here in transaction mode, and the store's own contract
(``tests/test_stores.py``) in session mode too, on a database of this run
that PgBouncer pools.
"""

from __future__ import annotations

import threading
import typing as t

import pytest
import sqlalchemy as sa
from benchmarks.queries import QueryRecorder
from flask import Flask

from flask_kitsession import KitSession
from flask_kitsession.stores.sql import create_store_engine

from . import test_cli
from . import test_decorators
from . import test_helpers
from . import test_interface
from . import test_lifecycle
from . import test_reliability_bad_input
from . import test_reliability_concurrency
from . import test_reliability_cookies
from . import test_reliability_expiry
from . import test_stores
from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import SQLBackend
from .support.servers import IN_CI
from .support.servers import upgrade
from .support.topologies import contract_tests
from .support.topologies import PgBouncer

MODES = ("transaction", "session")
SQL_FIXTURES = frozenset({"backend", "app", "client", "sql_backend", "fast_read_backend"})

for _module in (
    test_stores,
    test_interface,
    test_decorators,
    test_helpers,
    test_lifecycle,
    test_cli,
    test_reliability_bad_input,
    test_reliability_concurrency,
    test_reliability_cookies,
    test_reliability_expiry,
):
    globals().update(contract_tests(_module, SQL_FIXTURES))


@pytest.fixture(scope="session")
def pgbouncer(postgresql_server: str) -> t.Iterator[PgBouncer]:
    """PgBouncer on a port of its own, in front of a database of this run."""
    bouncer = PgBouncer(postgresql_server)
    try:
        bouncer.__enter__()
    except (OSError, RuntimeError, TimeoutError, sa.exc.SQLAlchemyError) as e:
        message = f"PgBouncer could not start: {e}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: PgBouncer is required; apt-get install pgbouncer)")
        pytest.skip(message)
    yield bouncer
    bouncer.__exit__()


@pytest.fixture(scope="session")
def pgbouncer_engines(pgbouncer: PgBouncer) -> t.Iterator[dict[str, sa.Engine]]:
    """kitsession's default engine on each pooled database: the URL alone."""
    engines = {mode: create_store_engine(pgbouncer.url(mode)) for mode in MODES}
    upgrade(engines["transaction"])
    yield engines
    for engine in engines.values():
        engine.dispose()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every contract test in transaction mode, the store's own in session mode too."""
    if "pooling" in metafunc.fixturenames:
        modes = ["transaction"]
        if metafunc.function.__module__ == test_stores.__name__:
            modes.append("session")
        metafunc.parametrize("pooling", modes, indirect=True)


@pytest.fixture
def pooling(request: pytest.FixtureRequest) -> str:
    """The pooling mode: ``transaction`` or ``session``."""
    return str(request.param)


@pytest.fixture
def pooled_backend(pooling: str, pgbouncer_engines: dict[str, sa.Engine]) -> t.Iterator[SQLBackend]:
    """The SQL store through PgBouncer in the test's pooling mode."""
    sql = SQLBackend("postgresql", pgbouncer_engines[pooling])
    sql.reset()
    yield sql
    sql.reset()


@pytest.fixture
def backend(pooled_backend: SQLBackend) -> SQLBackend:
    return pooled_backend


@pytest.fixture
def sql_backend(pooled_backend: SQLBackend) -> SQLBackend:
    return pooled_backend


@pytest.fixture
def fast_read_backend(pooled_backend: SQLBackend) -> SQLBackend:
    return pooled_backend


def hammer(
    engine: sa.Engine, users: SQLBackend, *, threads: int = 8, requests: int = 30
) -> dict[int, int]:
    """Log in, read and sign out other devices from several threads at once,
    as the workers of a server do, on ``engine``; return how many answers had
    each status.
    """
    user_ids = [users.add_user(f"user{n}@example.com") for n in range(threads)]
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY)
    KitSession(app, engine=engine)
    add_views(app)
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def browse(user_id: int) -> None:
        client = app.test_client()
        for n in range(requests):
            if n % 10 == 0:
                response = client.post("/login", data={"user_id": str(user_id)})
            elif n % 10 == 5:
                response = client.post("/sign-out-others")
            else:
                response = client.get("/me")
                if response.status_code == 200:
                    assert response.json is not None
                    assert response.json["user_id"] == user_id
            with lock:
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    workers = [threading.Thread(target=browse, args=(u,)) for u in user_ids]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


def test_the_default_engine_works_in_transaction_pooling(
    pgbouncer_engines: dict[str, sa.Engine],
) -> None:
    users = SQLBackend("postgresql", pgbouncer_engines["transaction"])
    try:
        statuses = hammer(pgbouncer_engines["transaction"], users)
    finally:
        users.reset()
    assert statuses == {200: 8 * 30}


def test_prepared_statements_would_fail_there(
    pgbouncer: PgBouncer, pgbouncer_engines: dict[str, sa.Engine]
) -> None:
    """psycopg's own default (prepare after 5 runs) behind the same pooler:
    what kitsession's engine avoids, and why.
    """
    users = SQLBackend("postgresql", pgbouncer_engines["transaction"])
    engine = create_store_engine(pgbouncer.url(), connect_args={"prepare_threshold": 5})
    try:
        statuses = hammer(engine, users)
    finally:
        engine.dispose()
        users.reset()
    assert statuses.get(503, 0) > 0
    assert set(statuses) <= {200, 503}


def test_statements_are_prepared_only_on_direct_connections(
    pgbouncer: PgBouncer, pgbouncer_engines: dict[str, sa.Engine]
) -> None:
    """The engine tells a pooler from PostgreSQL itself by the backend pid
    each announces: only a direct connection prepares (psycopg's threshold).
    """
    direct = create_store_engine(pgbouncer.direct_url)
    explicit = create_store_engine(pgbouncer.url(), connect_args={"prepare_threshold": 2})
    try:
        thresholds = {
            name: t.cast(t.Any, engine.raw_connection().driver_connection).prepare_threshold
            for name, engine in {
                **pgbouncer_engines,
                "direct": direct,
                "explicit": explicit,
            }.items()
        }
    finally:
        direct.dispose()
        explicit.dispose()
    assert thresholds == {"transaction": None, "session": None, "direct": 5, "explicit": 2}


def test_the_hot_path_through_pgbouncer_is_one_statement(
    pgbouncer_engines: dict[str, sa.Engine], clock: Clock
) -> None:
    """An authenticated read through the pooler: one SELECT, one round trip,
    no write, and no statement prepared.
    """
    engine = pgbouncer_engines["transaction"]
    sql = SQLBackend("postgresql", engine)
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=sql.store, clock=clock)
    add_views(app)
    client = app.test_client()
    user_id = sql.add_user("ada@example.com")
    try:
        client.post("/login", data={"user_id": str(user_id)})
        for _ in range(10):  # past psycopg's threshold, were it preparing
            clock.advance(seconds=1)
            with QueryRecorder(engine) as recorder:
                assert client.get("/me").json == {"user_id": user_id, "email": "ada@example.com"}
            [statement] = recorder.statements
            assert statement.startswith("SELECT") and recorder.round_trips == 1
            assert recorder.writes() == []
    finally:
        sql.reset()
