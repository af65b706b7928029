"""Count what reaches the database, for tests and benchmarks.

:class:`QueryRecorder` records every statement the driver runs, including the
ones a driver sends by itself (``BEGIN``, ``COMMIT``), and on PostgreSQL the
round trips to the server, read from libpq's own protocol trace. So a test can
state exactly what a request costs::

    with QueryRecorder(engine) as recorder:
        client.get("/profile")
    assert recorder.statements == ["SELECT ..."]
    assert recorder.round_trips == 1
"""

from __future__ import annotations

import re
import tempfile
import threading
import typing as t

from sqlalchemy import event
from sqlalchemy.engine import Engine

_PREPARED_KEY = "flask_kitsession.prepared_statements"


class QueryRecorder:
    """Records the statements (and PostgreSQL round trips) run on ``engine``
    while it is active (``with QueryRecorder(engine) as recorder:``).

    - SQLite (pysqlite): every statement SQLite runs, through the connection's
      trace callback, the implicit ``BEGIN``/``COMMIT`` included. There is no
      network, so :attr:`round_trips` counts statements.
    - PostgreSQL (psycopg 3): libpq's protocol trace. Every ``Query`` or
      ``Sync`` message the client sends waits for the server's answer: each is
      one round trip. Statements come from ``Query``, ``Parse`` and ``Bind``
      messages; statements that psycopg prepared before the recorder watched
      the connection are named by asking the server afterwards (not counted).
    - Other drivers: SQLAlchemy's ``before_cursor_execute`` events plus its
      ``commit``/``rollback`` events (what the driver sends for those is up to
      the driver).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        kind = (engine.dialect.name, engine.dialect.driver)
        self.kind = {("sqlite", "pysqlite"): "sqlite", ("postgresql", "psycopg"): "psycopg"}.get(
            kind, "events"
        )
        #: The statements, in order, whitespace folded.
        self.statements: list[str] = []
        self._round_trips = 0
        self._lock = threading.Lock()
        self._listeners: list[tuple[t.Any, str, t.Callable[..., t.Any]]] = []

    @property
    def round_trips(self) -> int:
        """Requests sent to the server that waited for its answer."""
        return self._round_trips if self.kind == "psycopg" else len(self.statements)

    def reads(self) -> list[str]:
        """The statements that only read (``SELECT``)."""
        return [s for s in self.statements if s.upper().startswith("SELECT")]

    def writes(self) -> list[str]:
        """Every statement but reads: writes and transaction control."""
        return [s for s in self.statements if not s.upper().startswith("SELECT")]

    def clear(self) -> None:
        with self._lock:
            self.statements.clear()
            self._round_trips = 0

    def _add(self, statement: str, round_trips: int = 0) -> None:
        with self._lock:
            if statement:
                self.statements.append(" ".join(statement.split()))
            self._round_trips += round_trips

    def _listen(self, target: t.Any, name: str, function: t.Callable[..., t.Any]) -> None:
        event.listen(target, name, function)
        self._listeners.append((target, name, function))

    def __enter__(self) -> QueryRecorder:
        if self.kind == "sqlite":
            self._listen(self.engine, "checkout", self._sqlite_checkout)
            self._listen(self.engine, "checkin", self._sqlite_checkin)
        elif self.kind == "psycopg":
            self._listen(self.engine, "checkout", self._psycopg_checkout)
            self._listen(self.engine, "checkin", self._psycopg_checkin)
        else:
            # DBAPI drivers begin transactions by themselves (SQLAlchemy's
            # "begin" sends nothing); commit and rollback are calls on the driver.
            self._listen(self.engine, "before_cursor_execute", self._before_execute)
            for name in ("commit", "rollback"):
                self._listen(self.engine, name, self._transaction_event(name.upper()))
        return self

    def __exit__(self, *exc_info: object) -> None:
        for target, name, function in self._listeners:
            event.remove(target, name, function)
        self._listeners.clear()

    # -- SQLite ---------------------------------------------------------------

    def _sqlite_checkout(self, dbapi_connection: t.Any, record: t.Any, proxy: t.Any) -> None:
        dbapi_connection.set_trace_callback(self._add)

    def _sqlite_checkin(self, dbapi_connection: t.Any, record: t.Any) -> None:
        if dbapi_connection is not None:
            dbapi_connection.set_trace_callback(None)

    # -- psycopg ----------------------------------------------------------------

    def _psycopg_checkout(self, dbapi_connection: t.Any, record: t.Any, proxy: t.Any) -> None:
        from psycopg import pq

        trace = tempfile.TemporaryFile()
        dbapi_connection.pgconn.trace(trace.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        record.info["flask_kitsession.trace"] = trace

    def _psycopg_checkin(self, dbapi_connection: t.Any, record: t.Any) -> None:
        trace = record.info.pop("flask_kitsession.trace", None)
        if trace is None:
            return
        if dbapi_connection is not None:
            try:
                dbapi_connection.pgconn.untrace()
            except Exception:
                pass  # a broken connection has nothing left to trace
        trace.seek(0)
        text = trace.read().decode("utf-8", "replace")
        trace.close()
        prepared: dict[str, str] = record.info.setdefault(_PREPARED_KEY, {})
        events = list(_client_messages(text))
        unknown = {
            name for kind, name in events if kind == "Bind" and name and name not in prepared
        } - {name for kind, name in events if kind == "Parse-name"}
        if unknown and dbapi_connection is not None:
            prepared.update(_server_prepared_statements(dbapi_connection))
        for kind, value in events:
            if kind == "Query":
                self._add(value, round_trips=1)
            elif kind == "Sync":
                self._add("", round_trips=1)
            elif kind == "Parse":
                name, statement = _parse_message(value)
                prepared[name] = statement
            elif kind == "Bind":
                self._add(prepared.get(value, f"<prepared statement {value}>"))

    # -- other drivers ----------------------------------------------------------

    def _before_execute(self, conn: t.Any, cursor: t.Any, statement: str, *args: t.Any) -> None:
        self._add(statement)

    def _transaction_event(self, name: str) -> t.Callable[..., None]:
        def record(conn: t.Any) -> None:
            self._add(name)

        return record


def _client_messages(text: str) -> t.Iterator[tuple[str, str]]:
    """The messages the client sent, as (kind, detail) pairs."""
    for line in _trace_messages(text):
        fields = line.split("\t")
        if len(fields) < 3 or fields[0] != "F":
            continue
        message, rest = fields[2], "\t".join(fields[3:]).strip()
        if message == "Query":
            yield "Query", _unquote(rest)
        elif message == "Sync":
            yield "Sync", ""
        elif message == "Parse":
            yield "Parse-name", _parse_message(rest)[0]
            yield "Parse", rest
        elif message == "Bind":
            yield "Bind", _bind_message(rest)


def _server_prepared_statements(connection: t.Any) -> dict[str, str]:
    """Ask the server for the statements prepared on ``connection`` (made before
    the recorder watched it). Runs outside any transaction, and is not counted.
    """
    from psycopg import pq

    if connection.info.transaction_status != pq.TransactionStatus.IDLE:
        return {}
    autocommit = connection.autocommit
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT name, statement FROM pg_prepared_statements")
            return {name: statement for name, statement in cursor.fetchall()}
    finally:
        connection.autocommit = autocommit


def _trace_messages(text: str) -> t.Iterator[str]:
    """The messages of a libpq trace: a line that starts with neither ``F`` nor
    ``B`` continues the message before (SQL with newlines in it).
    """
    message: str | None = None
    for line in text.split("\n"):
        if line.startswith(("F\t", "B\t")):
            if message is not None:
                yield message
            message = line
        elif message is not None:
            message += "\n" + line
    if message is not None:
        yield message


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


# libpq's trace prints strings between double quotes without escaping the
# quotes inside them, so the SQL of a Parse runs to the last quote before the
# parameter count.
_PARSE = re.compile(r'^"(?P<name>[^"]*)" "(?P<sql>.*)" \d+(?: \S+)*$', re.DOTALL)
_BIND = re.compile(r'^"(?P<portal>[^"]*)" "(?P<name>[^"]*)"')


def _parse_message(text: str) -> tuple[str, str]:
    match = _PARSE.match(text.strip())
    return (match["name"], match["sql"]) if match else ("", text)


def _bind_message(text: str) -> str:
    match = _BIND.match(text.strip())
    return match["name"] if match else ""
