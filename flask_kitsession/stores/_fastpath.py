"""The SQL store's hot path: compiled statements on a raw DBAPI connection.

An authenticated request reads its session once (and writes it once, when it
changed), and that is most of what kitsession adds to a request. Going through
a SQLAlchemy ``Connection`` costs more than the query itself on a fast
database: an execution context per call, a cache-key walk of the statement,
and (to run outside a transaction) switching the pooled connection to
autocommit and back, which on SQLite runs a ``PRAGMA`` each time. Here each
statement is compiled once for the engine's dialect, with SQLAlchemy's own
bind and result processors for each column, and run on a pooled DBAPI
connection as a statement of its own, atomic by itself:

- psycopg / psycopg2: the connection is put in autocommit for the one
  statement (a client-side flag: no round trip), so no ``BEGIN`` goes before
  it and no ``ROLLBACK`` or ``COMMIT`` after it: one round trip.
- pysqlite: a ``SELECT`` never begins a transaction; for a write the
  connection's ``isolation_level`` is ``None`` (autocommit) for the statement,
  so pysqlite sends no ``BEGIN`` and ``COMMIT`` around it.

Other drivers (MySQL's, say) take the ordinary SQLAlchemy path, which is
correct everywhere.

Tools watch a database through the engine: ``echo=True`` and the
``before_cursor_execute`` / ``after_cursor_execute`` events that OpenTelemetry,
Sentry and Flask-DebugToolbar listen to. While any of them is on, the same
compiled statement runs through :meth:`Connection.exec_driver_sql
<sqlalchemy.engine.Connection.exec_driver_sql>`, so they see it as they see
any other query, with the same autocommit switch (still one statement in one
round trip). With none on, nothing of that is paid: the check is two
attribute reads.
"""

from __future__ import annotations

import logging
import typing as t

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement

#: (dialect name, driver) pairs whose statements take the fast path.
FAST_DRIVERS = frozenset(
    {("postgresql", "psycopg"), ("postgresql", "psycopg2"), ("sqlite", "pysqlite")}
)


class Disconnected(Exception):
    """The database connection broke during a read (it has been discarded)."""


class FastStatement:
    """A statement compiled once for ``engine``: :meth:`first` runs a SELECT,
    :meth:`rowcount` a write.

    :param engine: Where to run it; its pool is shared with every other use.
    :param statement: The statement, with named ``bindparam``\\ s.
    """

    def __init__(self, engine: Engine, statement: ClauseElement) -> None:
        dialect = engine.dialect
        self.engine = engine
        self.autocommit = dialect.name == "postgresql"
        self.sqlite_write = dialect.name == "sqlite" and not hasattr(statement, "selected_columns")
        compiled = t.cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.positions: list[str] | None = (
            list(compiled.positiontup or ()) if dialect.positional else None
        )
        self.bind_processors = {
            name: processor
            for name, bind in compiled.binds.items()
            if (processor := bind.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        }
        columns = getattr(statement, "selected_columns", ())
        self.result_processors = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        #: (column index, processor) of the columns that have a processor.
        self.processed_columns = [
            (index, processor)
            for index, processor in enumerate(self.result_processors)
            if processor is not None
        ]
        self.dbapi_error: type[Exception] = dialect.loaded_dbapi.Error

    @staticmethod
    def supports(engine: Engine) -> bool:
        """Whether statements on ``engine`` can take the fast path."""
        return (engine.dialect.name, engine.dialect.driver) in FAST_DRIVERS

    def _parameters(self, values: dict[str, t.Any]) -> t.Any:
        if self.bind_processors:
            values = dict(values)
            for name, processor in self.bind_processors.items():
                values[name] = processor(values[name])
        if self.positions is not None:
            return [values[name] for name in self.positions]
        return values

    def first(self, values: dict[str, t.Any]) -> tuple[t.Any, ...] | None:
        """Run the SELECT and return its first row (processed), or ``None``.

        :raises Disconnected: if the connection broke; it is discarded, and
            so are the pool's idle connections, which likely broke with it.
        """
        row = self._run(values, fetch=True)
        if row is None:
            return None
        if not self.processed_columns:
            return tuple(row)
        processed = list(row)
        for index, processor in self.processed_columns:
            processed[index] = processor(processed[index])
        return tuple(processed)

    def rowcount(self, values: dict[str, t.Any]) -> int:
        """Run the write and return how many rows it changed.

        :raises Disconnected: as :meth:`first`.
        """
        return t.cast(int, self._run(values, fetch=False))

    def observed(self) -> bool:
        """Whether something watches the engine's statements: a
        ``before_cursor_execute`` or ``after_cursor_execute`` listener, or
        statement logging (``echo=True``, or the ``sqlalchemy.engine``
        logger at ``INFO``).
        """
        dispatch = self.engine.dispatch
        return bool(
            dispatch.before_cursor_execute
            or dispatch.after_cursor_execute
            or self.engine.logger.isEnabledFor(logging.INFO)
        )

    def _run(self, values: dict[str, t.Any], *, fetch: bool) -> t.Any:
        parameters = self._parameters(values)
        if self.observed():
            return self._run_observed(parameters, fetch=fetch)
        connection = self.engine.raw_connection()
        cursor = None
        try:
            driver: t.Any = connection.driver_connection
            if self.autocommit:
                driver.autocommit = True
            elif self.sqlite_write:
                isolation_level = driver.isolation_level
                driver.isolation_level = None
            try:
                cursor = connection.cursor()
                cursor.execute(self.sql, parameters)
                outcome = cursor.fetchone() if fetch else cursor.rowcount
            finally:
                if self.autocommit:
                    driver.autocommit = False
                elif self.sqlite_write:
                    driver.isolation_level = isolation_level
        except self.dbapi_error as e:
            if self.engine.dialect.is_disconnect(e, connection.dbapi_connection, cursor):  # type: ignore[arg-type]
                connection.invalidate(e)
                self.engine.pool.dispose()
                raise Disconnected(str(e)) from e
            raise
        finally:
            if cursor is not None:
                try:
                    cursor.close()
                except self.dbapi_error:
                    pass  # the connection is gone; nothing to release
            connection.close()
        return outcome

    def _run_observed(self, parameters: t.Any, *, fetch: bool) -> t.Any:
        """:meth:`_run` through a SQLAlchemy ``Connection``, which fires the
        engine's events and logs the statement.
        """
        if isinstance(parameters, list):
            # A list would be read as many parameter sets (executemany).
            parameters = tuple(parameters)
        try:
            with self.engine.connect() as connection:
                driver: t.Any = connection.connection.driver_connection
                # The same switch as the raw path: SQLAlchemy begins no
                # transaction of its own on a DBAPI connection, so with
                # autocommit on, the driver sends the statement alone, and the
                # rollback when the connection closes has nothing to do.
                if self.autocommit:
                    driver.autocommit = True
                elif self.sqlite_write:
                    isolation_level = driver.isolation_level
                    driver.isolation_level = None
                try:
                    result = connection.exec_driver_sql(self.sql, parameters)
                    return result.fetchone() if fetch else result.rowcount
                finally:
                    if self.autocommit:
                        driver.autocommit = False
                    elif self.sqlite_write:
                        driver.isolation_level = isolation_level
        except sa_exc.DBAPIError as e:
            if e.connection_invalidated:
                self.engine.pool.dispose()
                raise Disconnected(str(e)) from e
            raise
