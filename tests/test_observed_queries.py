"""The tools that watch an engine see every statement kitsession runs.

OpenTelemetry's SQLAlchemy instrumentation, Sentry, Flask-DebugToolbar and
``echo=True`` all watch the engine's ``before_cursor_execute`` /
``after_cursor_execute`` events or its logger. The SQL store's fast path runs
statements on the DBAPI connection directly; while anything watches, it goes
through the engine instead, and still costs one statement in one round trip.
"""

from __future__ import annotations

import logging
import typing as t

import pytest
import sqlalchemy as sa
from benchmarks.queries import QueryRecorder
from flask import Flask
from flask.testing import FlaskClient
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flask_kitsession import KitSession

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import SQLBackend
from .support.clients import log_in

TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


def signed_in_client(
    backend: SQLBackend, clock: Clock, user_id: t.Any = None
) -> tuple[FlaskClient, t.Any]:
    """A client of a new app on ``backend``'s store, signed in as
    ``user_id`` (by default a new user, ada@example.com).
    """
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)
    client = app.test_client()
    if user_id is None:
        user_id = backend.add_user("ada@example.com")
    log_in(client, user_id)
    clock.advance(seconds=10)
    return client, user_id


def statements_of(spans: InMemorySpanExporter) -> list[str]:
    """The statements of the finished spans (a new pooled connection is a
    span too, without a statement).
    """
    return [
        str(span.attributes["db.statement"])
        for span in spans.get_finished_spans()
        if span.attributes and "db.statement" in span.attributes
    ]


@pytest.fixture
def spans(fast_read_backend: SQLBackend) -> t.Iterator[InMemorySpanExporter]:
    """OpenTelemetry's SQLAlchemy instrumentation on the store's engine,
    exporting to memory.
    """
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = SQLAlchemyInstrumentor()
    # The instrumentation declares "sqlalchemy < 2.1" but works on 2.1: its
    # listeners take the same arguments.
    instrumentor.instrument(
        engine=fast_read_backend.engine, tracer_provider=provider, skip_dep_check=True
    )
    try:
        yield exporter
    finally:
        instrumentor.uninstrument()
        provider.shutdown()


def test_an_authenticated_read_is_one_span_with_its_statement(
    fast_read_backend: SQLBackend, clock: Clock, spans: InMemorySpanExporter
) -> None:
    client, user_id = signed_in_client(fast_read_backend, clock)
    spans.clear()
    with QueryRecorder(fast_read_backend.engine) as recorder:
        response = client.get("/me")
    assert response.json == {"user_id": user_id, "email": "ada@example.com"}
    [statement] = statements_of(spans)
    assert statement.startswith("SELECT") and "JOIN" in statement
    assert "session" in statement and "expires_at" in statement
    # Watched, the read still costs one statement in one round trip.
    [sent] = recorder.statements
    assert sent.startswith("SELECT") and "JOIN" in sent
    assert recorder.round_trips == 1


def test_every_statement_of_a_session_life_is_a_span(
    fast_read_backend: SQLBackend, clock: Clock, spans: InMemorySpanExporter
) -> None:
    """Creates, reads, saves, touches, sign-outs and deletes: as many spans as
    statements reach the database (transaction control aside).
    """
    client, user_id = signed_in_client(fast_read_backend, clock)
    other, _ = signed_in_client(fast_read_backend, clock, user_id)
    spans.clear()
    with QueryRecorder(fast_read_backend.engine) as recorder:
        client.post("/set", data={"a": "1"})  # save
        clock.advance(seconds=61)
        client.get("/get")  # touch
        client.post("/sign-out-others")
        client.post("/logout")
        client.post("/login", data={"user_id": str(user_id)})
    sent = [s for s in recorder.statements if not s.upper().startswith(TRANSACTION_CONTROL)]
    traced = statements_of(spans)
    assert len(traced) == len(sent), (traced, sent)
    verbs = {statement.split()[0] for statement in traced}
    assert {"SELECT", "UPDATE", "DELETE", "INSERT"} <= verbs
    assert other.get("/me").json == {"user_id": None, "email": None}


def test_without_a_listener_the_fast_path_runs_raw(
    fast_read_backend: SQLBackend, clock: Clock
) -> None:
    """The events fire only while someone listens: with the listener gone, the
    statement no longer reaches them, and costs the same one round trip.
    """
    client, _ = signed_in_client(fast_read_backend, clock)
    seen: list[str] = []

    def listener(*args: t.Any) -> None:
        seen.append(args[2])

    engine = fast_read_backend.engine
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        client.get("/me")
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert len(seen) == 1 and seen[0].startswith("SELECT")
    with QueryRecorder(engine) as recorder:
        client.get("/me")
    assert len(seen) == 1
    assert recorder.round_trips == 1


def test_echo_logs_the_session_query(
    fast_read_backend: SQLBackend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = signed_in_client(fast_read_backend, clock)
    engine = fast_read_backend.engine
    logger = logging.getLogger("sqlalchemy.engine.Engine")
    handlers = list(logger.handlers)
    engine.echo = True
    try:
        with caplog.at_level(logging.INFO, logger="sqlalchemy.engine.Engine"):
            client.get("/me")
    finally:
        engine.echo = False
        # echo=True adds a handler printing to stdout: leave the logger as it was.
        for handler in logger.handlers[:]:
            if handler not in handlers:
                logger.removeHandler(handler)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("sqlalchemy.engine")]
    assert any(m.startswith("SELECT") and "JOIN" in m for m in logged), logged
