"""The production store: sessions in a SQL database through SQLAlchemy Core."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import select
import sqlite3
import time
import typing as t
import weakref
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import exc as orm_exc
from sqlalchemy.orm import Mapper
from sqlalchemy.orm import Session as OrmSession

from .. import models
from ..exceptions import SessionDataError
from ..exceptions import SessionExistsError
from ..exceptions import StoreUnavailableError
from ..exceptions import UnknownUserError
from ..serialization import SessionSerializer
from ..settings import check_user_fields
from ..userkey import UserKeyType
from ..users import UserFactory
from ._fastpath import Disconnected
from ._fastpath import FastStatement
from .base import ALL_USERS
from .base import NO_USER
from .base import SessionRecord
from .base import SessionStore
from .base import STORED_FIELDS
from .sqlerrors import check_url
from .sqlerrors import explain
from .sqlerrors import missing_driver_message
from .sqlerrors import safe_reason

logger = logging.getLogger("flask_kitsession")

#: Room left in a MySQL/MariaDB packet for the rest of a session's statement.
_PACKET_MARGIN = 64 * 1024

#: The session columns read with every session, in this order.
_SESSION_FIELDS = ("id", *STORED_FIELDS)
# A row is turned into a SessionRecord by position: the columns are read in
# the order of the record's own fields.
assert _SESSION_FIELDS == tuple(
    f.name for f in dataclasses.fields(SessionRecord) if f.name != "user"
), "the session columns must be read in the order of SessionRecord's fields"

#: A value a user object does not have.
_MISSING: t.Any = object()


def create_store_engine(url: str | sa.URL, **options: t.Any) -> Engine:
    """Create the engine kitsession uses when it is given a database URL.

    On SQLite it turns on what the schema relies on and what concurrent
    requests need: foreign keys (so deleting a user deletes their sessions),
    write-ahead logging and a busy timeout. On other databases, a pooled
    connection that the server closed while it sat in the pool (a restart)
    is replaced before use, without a round trip (see :func:`_replace_if_closed`).

    With psycopg 3, statements are prepared on the server only when the
    connection goes straight to PostgreSQL (see :func:`_prepare_if_direct`):
    a connection pooler in transaction mode (PgBouncer, the usual way to run
    many workers against one PostgreSQL) hands each transaction to any of its
    server connections, where a statement prepared on another one does not
    exist. Behind a pooler every statement is still one round trip; the
    server plans it each time. ``connect_args={"prepare_threshold": ...}``
    decides instead.

    :param url: A SQLAlchemy database URL. A multi-host URL
        (``?host=a:5432&host=b:5432&target_session_attrs=read-write``) finds
        the primary again after a failover.
    :param options: Passed to :func:`sqlalchemy.create_engine`.
    :raises ValueError: for a ``postgres://`` URL, naming the one to write.
    :raises ModuleNotFoundError: if the URL's driver is not installed,
        naming the extra that installs it.

    .. versionchanged:: 0.1
        Prepared statements with psycopg 3 only on direct connections.
    """
    url = sa.make_url(url)
    check_url(url)
    detect_pooler = False
    try:
        driver = url.get_driver_name()
    except sa_exc.NoSuchModuleError:
        driver = ""  # create_engine() says what is wrong with the URL
    if driver == "psycopg":
        connect_args = dict(options.get("connect_args", {}))
        if "prepare_threshold" not in connect_args:
            # Nothing is prepared before the connection is known to be direct.
            connect_args["prepare_threshold"] = None
            detect_pooler = True
        options["connect_args"] = connect_args
    try:
        engine = sa.create_engine(url, **options)
    except ImportError as e:
        raise ModuleNotFoundError(missing_driver_message(url, e), name=e.name) from e
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
    else:
        event.listen(engine, "checkout", _replace_if_closed)
    if detect_pooler:
        event.listen(engine, "connect", _prepare_if_direct)
    return engine


#: psycopg's own default: a statement is prepared on its sixth run.
PREPARE_THRESHOLD = 5


def _prepare_if_direct(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    """Let psycopg prepare statements on a connection that goes straight to
    PostgreSQL, never on one through a connection pooler.

    A server announces its backend's process id when a connection starts
    (libpq's ``PQbackendPID``, psycopg's ``info.backend_pid``). A pooler
    (PgBouncer, pgcat, Odyssey, Supavisor, RDS Proxy) answers the connection
    itself and announces a key of its own, since a cancel request must reach
    it, not a backend; a plain TCP proxy passes the server's on. So where
    ``pg_backend_pid()`` names the announced process, the connection is the
    backend's for its whole life, and what is prepared on it stays there.
    One query per new connection, never per request.
    """
    announced = dbapi_connection.info.backend_pid
    try:
        backend = dbapi_connection.execute("SELECT pg_backend_pid()", prepare=False).fetchone()
    finally:
        dbapi_connection.rollback()
    if backend is not None and backend[0] == announced:
        dbapi_connection.prepare_threshold = PREPARE_THRESHOLD


def _replace_if_closed(dbapi_connection: t.Any, connection_record: t.Any, proxy: t.Any) -> None:
    """Refuse a pooled connection that the server has closed meanwhile (a
    restart, an administrator, an idle timeout), so that the pool hands out
    a new one and no statement, a write included, meets a dead connection.

    An idle connection has nothing to read; one the server closed has its
    last message or the end of the stream waiting. Looking is a poll of the
    socket, not a round trip (redis-py checks its pooled connections the
    same way). SQLAlchemy replaces a connection whose checkout raises
    :exc:`~sqlalchemy.exc.DisconnectionError`.
    """
    fd = _socket_of(dbapi_connection)
    if fd is not None and _has_input(fd):
        raise sa_exc.DisconnectionError("The database server closed this pooled connection.")


def _socket_of(dbapi_connection: t.Any) -> int | None:
    """The socket of a DBAPI connection: ``fileno()`` of psycopg and
    psycopg2, ``_sock`` of PyMySQL; ``None`` for other drivers.
    """
    fileno = getattr(dbapi_connection, "fileno", None)
    if fileno is None:
        fileno = getattr(getattr(dbapi_connection, "_sock", None), "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
    except Exception:
        # Closed already (drivers raise their own errors for that): the
        # statement will fail and say so; nothing to look at here.
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


def _has_input(fd: int) -> bool:
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fd], [], [], 0)
    return bool(readable)


def _configure_sqlite(dbapi_connection: t.Any, connection_record: t.Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        if dbapi_connection.execute("PRAGMA database_list").fetchone()[2]:
            # A file database (not :memory:): readers never wait for writers.
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _use_wal(cursor: t.Any, *, patience: float = 30) -> None:
    """Put the database file in WAL mode, once for all its connections.

    Switching needs the file to itself, and SQLite answers "database is
    locked" at once, without waiting, while another connection writes (a
    worker creating the tables as several start together): try again until
    one of them has switched it, which lasts.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def resolve_user_key(user_model: t.Any) -> sa.Column[t.Any]:
    """Return the primary key column of a user table given as a
    :class:`~sqlalchemy.Table`, a mapped class or an import string
    (``"package.module:User"``).
    """
    if isinstance(user_model, str):
        user_model = _import_string(user_model)
    if isinstance(user_model, sa.Table):
        table = user_model
    else:
        try:
            mapper = sa.inspect(user_model)
            table = mapper.local_table
        except sa_exc.NoInspectionAvailable:
            raise TypeError(
                f"KITSESSION_USER_MODEL must be a SQLAlchemy Table, a mapped"
                f" class or an import string naming one, got {user_model!r}."
            ) from None
    if not isinstance(table, sa.Table):
        raise TypeError(f"The user model {user_model!r} is not mapped to a table.")
    key = list(table.primary_key.columns)
    if len(key) != 1:
        raise ValueError(
            f"The user table {table.name!r} must have a primary key of exactly one"
            f" column to link sessions to, it has {len(key)}."
        )
    return key[0]


#: The column that links sessions to users with no setting when the user
#: table has it: Flask-Security's ``User.get_id()`` returns it.
FLASK_SECURITY_ID_COLUMN = "fs_uniquifier"

#: The setting that names the column sessions link users by.
USER_ID_COLUMN_SETTING = "KITSESSION_USER_ID_COLUMN"


def resolve_user_link(user_key: sa.Column[t.Any], column: str | None = None) -> sa.Column[t.Any]:
    """Return the column of the user table that sessions link users by: the
    one Flask-Login's ``get_id()`` returns.

    :param user_key: The user table's primary key column.
    :param column: The name of the column (``KITSESSION_USER_ID_COLUMN``);
        ``None`` for ``fs_uniquifier`` if the table has it (Flask-Security),
        else the primary key.
    :raises ValueError: if the named column does not exist or is not unique:
        a link must name one user.
    """
    table = user_key.table
    assert isinstance(table, sa.Table)
    if column is None:
        found = table.columns.get(FLASK_SECURITY_ID_COLUMN)
        if found is None or found is user_key or not _is_unique(table, found):
            return user_key
        return found
    if column not in table.columns:
        raise ValueError(
            f"{USER_ID_COLUMN_SETTING} names {column!r}, which the user table"
            f" {table.name!r} does not have (it has {list(table.columns.keys())})."
        )
    link = table.columns[column]
    if link is not user_key and not _is_unique(table, link):
        raise ValueError(
            f"{USER_ID_COLUMN_SETTING} names {table.name}.{column}, which is not unique:"
            " sessions link users by it, so it must name one user. Declare it"
            " unique=True (a unique constraint or index)."
        )
    return link


def _is_unique(table: sa.Table, column: sa.Column[t.Any]) -> bool:
    if column.unique or list(table.primary_key.columns) == [column]:
        return True
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint) and list(constraint.columns) == [column]:
            return True
    return any(index.unique and list(index.columns) == [column] for index in table.indexes)


def _keep_old_value(user: t.Any, value: t.Any, old: t.Any, initiator: t.Any) -> t.Any:
    return value


def _import_string(path: str) -> t.Any:
    import importlib

    module_name, _, attribute = path.partition(":")
    if not attribute:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not an import string like 'package.module:User'.")
    obj: t.Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        obj = getattr(obj, part)
    return obj


#: Stores whose user model is a mapped class: see ``_sign_out_deleted_users``.
_WATCHING_USERS: weakref.WeakSet[SQLAlchemyStore] = weakref.WeakSet()


def _sign_out_deleted_users(session: OrmSession, *args: t.Any) -> None:
    """Before any ORM flush that deletes users, delete their sessions.

    A mapper's ``before_delete`` misses one case: an object deleted and a new
    one with the same primary key added in one flush, which SQLAlchemy
    writes as one ``UPDATE`` of the row (a "row switch"); the new user would
    inherit the old one's sessions. The deleted objects are all here.
    """
    if session.deleted:
        for store in list(_WATCHING_USERS):
            if store._sign_out_deleted is not None:
                store._sign_out_deleted(session)


event.listen(OrmSession, "before_flush", _sign_out_deleted_users)


class SQLAlchemyStore(SessionStore):
    """Keeps sessions in the ``session`` table of a SQL database.

    Reads run on an autocommit connection: a request that only reads its
    session costs one statement and one round trip, with no ``BEGIN`` or
    ``ROLLBACK`` around it. Single-statement writes are atomic by themselves
    and run the same way; only a login that replaces a previous session opens
    a transaction, to insert one row and delete the other as one change.

    :param engine: The engine to use. Pass the app's own engine to share its
        connection pool.
    :param user_model: The app's user table or mapped class (or an import
        string naming it). ``None`` uses kitsession's own ``user`` table.
    :param user_fields: Names of the user columns loaded with each session.
        By default every column whose name does not contain ``password``.
    :param orm_session: Returns the ORM session that users of a mapped
        ``user_model`` are attached to (see :mod:`flask_kitsession.users`).
    :param metadata: Define the session table in this metadata (the app's
        own, such as Flask-SQLAlchemy's ``db.metadata``, so that the app's
        migrations include it) rather than in one of kitsession's. Needs
        ``user_model``.
    :param user_id_column: The column of ``user_model`` that sessions link
        users by: the one its ``get_id()`` returns (a Flask-Login
        "alternative token"). ``None`` for ``fs_uniquifier`` when the table
        has it (Flask-Security), else the primary key. See
        :func:`resolve_user_link`.
    :param serializer: See :class:`SessionStore`.

    .. versionadded:: 0.1
    """

    #: Deletes the sessions of the users an ORM flush is about to delete,
    #: when the user model is a mapped class.
    _sign_out_deleted: t.Callable[[OrmSession], None] | None = None

    def __init__(
        self,
        engine: Engine,
        *,
        user_model: t.Any = None,
        user_fields: t.Sequence[str] | None = None,
        orm_session: t.Callable[[], t.Any] | None = None,
        metadata: sa.MetaData | None = None,
        user_id_column: str | None = None,
        serializer: SessionSerializer | None = None,
    ) -> None:
        super().__init__(serializer=serializer)
        if metadata is not None and user_model is None:
            raise ValueError(
                "A session table in the app's metadata links to the app's user model:"
                " give user_model= (or KITSESSION_USER_MODEL) too."
            )
        self.engine = engine
        self._foreign_keys: bool | None = None
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._dbapi: t.Any = engine.dialect.loaded_dbapi
        # MySQL/MariaDB lock ranges (InnoDB), which cleanup must avoid: see
        # purge_expired.
        self._locks_ranges = engine.dialect.name in ("mysql", "mariadb")
        #: MySQL/MariaDB's max_allowed_packet, read at the first large write.
        self._packet: int | None = None
        self._purging = (
            engine.execution_options(isolation_level="READ COMMITTED")
            if self._locks_ranges
            else engine
        )

        if user_model is None:
            #: The metadata that holds :attr:`session_table` (and the default user table).
            self.metadata = models.metadata
            self.session_table = models.session_table
            #: Whether kitsession owns (and migrates) the user table.
            self.owns_user_table = True
            #: The user table's primary key column.
            self.user_key = models.user_table.c.id
            #: The column sessions link users by (``session.user_id`` holds
            #: its value): the primary key, or the column ``get_id()`` returns.
            self.user_link = self.user_key
            if user_id_column not in (None, self.user_key.name):
                raise ValueError(
                    f"{USER_ID_COLUMN_SETTING} names a column of the app's user table:"
                    " set KITSESSION_USER_MODEL too."
                )
        else:
            self.user_key = resolve_user_key(user_model)
            self.user_link = resolve_user_link(self.user_key, user_id_column)
            if metadata is None:
                metadata = sa.MetaData(naming_convention=models.NAMING_CONVENTION)
            self.metadata = metadata
            self.session_table = models.define_session_table(
                self.metadata,
                self.user_key,
                None if self.user_link is self.user_key else self.user_link,
            )
            self.owns_user_table = False
        self.user_table: sa.Table = self.user_key.table
        self.user_columns = self._user_columns(user_fields)
        #: Builds ``session.user`` from the loaded user columns.
        self.users = UserFactory(
            user_model, self.user_columns, self.user_link, orm_session=orm_session
        )
        #: The link's type and range on this database: ids are converted to it
        #: where they come in (and 2**31 for a 32-bit key is no user's id).
        self.user_key_type = UserKeyType.for_column(self.user_link, engine.dialect)
        #: Where the link is among the loaded user columns, to compare ids
        #: exactly (string ids only: a collation may find another spelling).
        self._key_index: int | None = None
        if self.user_key_type.python_type is str:
            for index, column in enumerate(self.user_columns):
                if column is self.user_link:
                    self._key_index = index
        self._collation_compares = self._key_index is not None and engine.dialect.name in (
            "mysql",
            "mariadb",
        )
        self._compile_statements()
        self._sign_out_when_the_user_changes()

    def _sign_out_when_the_user_changes(self) -> None:
        """When the user model is a mapped class, delete the sessions of a
        user in the same flush that deletes the user, and, when sessions link
        by a column other than the primary key, those that name a user's old
        value of it in the flush that changes it (Flask-Security's password
        change): at once, in the same transaction, on every database, leaving
        no unlinked session behind, even where the database does not enforce
        the foreign key (SQLite without ``PRAGMA foreign_keys``, which would
        give a deleted user's id, and their sessions, to the next user).

        The foreign key's ``ON UPDATE SET NULL`` / ``ON DELETE CASCADE`` and
        the JOIN in :meth:`get` cover changes that bypass the ORM.
        """
        mapper = self.users.mapper
        if mapper is None:
            return
        try:
            key = mapper.get_property_by_column(self.user_link).key
        except orm_exc.UnmappedColumnError:
            return
        delete = sa.delete(self.session_table).where(
            self.session_table.c.user_id == sa.bindparam("old")
        )
        engine = self.engine

        def ours(connection: sa.Connection) -> bool:
            # Not when the model is written to another database, which has
            # no session table of this store's.
            return connection.engine is engine or connection.engine.url == engine.url

        def before_delete(mapper: Mapper[t.Any], connection: sa.Connection, user: t.Any) -> None:
            value = getattr(user, key)
            if value is not None and ours(connection):
                connection.execute(delete, {"old": value})

        def sign_out_deleted(session: OrmSession) -> None:
            for user in session.deleted:
                if isinstance(user, mapper.class_):
                    value = getattr(user, key)
                    connection = session.connection(bind_arguments={"mapper": mapper})
                    if value is not None and ours(connection):
                        connection.execute(delete, {"old": value})

        # Subclasses of the model (single-table inheritance) too.
        event.listen(mapper, "before_delete", before_delete, propagate=True)
        self._sign_out_deleted = sign_out_deleted
        _WATCHING_USERS.add(self)
        if self.user_link is self.user_key:
            return
        # The old value must be known when the new one is set, even if the
        # attribute had expired (after a commit): active history loads it.
        event.listen(
            getattr(mapper.class_, key),
            "set",
            _keep_old_value,
            active_history=True,
            propagate=True,
        )

        def before_update(mapper: Mapper[t.Any], connection: sa.Connection, user: t.Any) -> None:
            if not ours(connection):
                return
            history = sa.inspect(user).attrs[key].history
            old = [value for value in history.deleted if value is not None]
            if history.added and old:
                connection.execute(delete, [{"old": value} for value in old])

        event.listen(mapper, "before_update", before_update, propagate=True)

    def _user_columns(self, user_fields: t.Sequence[str] | None) -> list[sa.Column[t.Any]]:
        columns = self.user_table.columns
        check_user_fields(user_fields)
        if user_fields is None:
            return [c for c in columns if "password" not in c.name.lower()]
        unknown = [name for name in user_fields if name not in columns]
        if unknown:
            raise ValueError(
                f"KITSESSION_USER_FIELDS names {unknown}, which the user table"
                f" {self.user_table.name!r} does not have (it has {list(columns.keys())})."
            )
        return [columns[name] for name in user_fields]

    def _is_user(self, value: t.Any) -> sa.ColumnElement[bool]:
        """``session.user_id`` is exactly ``value``. MySQL/MariaDB's collations
        find "user-1" for "USER-1" and "user-1 "; there the bytes are compared
        too (the index still finds the rows by the collation).
        """
        column = self.session_table.c.user_id
        same: sa.ColumnElement[bool] = column == value
        if self._collation_compares:
            exact = sa.cast(column, sa.LargeBinary) == sa.cast(
                sa.type_coerce(value, column.type), sa.LargeBinary
            )
            same = sa.and_(same, exact)
        return same

    def _compile_statements(self) -> None:
        s = self.session_table
        bind = sa.bindparam
        user_labels = [c.label(f"user__{c.name}") for c in self.user_columns]
        session_columns = [s.c[name] for name in _SESSION_FIELDS]
        link = self.user_link
        joined = s.outerjoin(self.user_table, link == s.c.user_id)
        # The link column as the JOIN found it: NULL when the session names
        # no user (anymore), whichever user columns are loaded.
        found = link.label("user__link__")
        self._select = sa.select(*session_columns, found, *user_labels).select_from(joined)
        by_id = s.c.id == bind("current_id")
        changes: dict[str, t.Any] = {
            "data": bind("v_data"),
            "user_id": bind("v_user_id"),
            "updated_at": bind("v_updated_at"),
            "last_seen_at": bind("v_last_seen_at"),
            "expires_at": bind("v_expires_at"),
            "authenticated_at": bind("v_authenticated_at"),
            "ip_address": bind("v_ip_address"),
        }
        touch: dict[str, t.Any] = {
            "last_seen_at": bind("v_last_seen_at"),
            "expires_at": bind("v_expires_at"),
        }
        by_user = self._is_user(bind("user_id"))
        statements: dict[str, t.Any] = {
            # Whether it has expired is checked on the loaded row: one bound
            # parameter fewer on the statement every request runs.
            "get": self._select.where(s.c.id == bind("id")),
            "load_user": sa.select(*self.user_columns).where(link == bind("user_id")),
            "insert": sa.insert(s),
            "update": sa.update(s).where(by_id).values(**changes),
            "update_renaming": sa.update(s).where(by_id).values(id=bind("v_id"), **changes),
            "touch": sa.update(s).where(by_id).values(**touch),
            "touch_ip": sa.update(s).where(by_id).values(**touch, ip_address=bind("v_ip_address")),
            "delete": sa.delete(s).where(s.c.id == bind("id")),
            "delete_for_user": sa.delete(s).where(by_user),
            "delete_for_user_keeping": sa.delete(s).where(by_user, s.c.id != bind("keep")),
        }
        fast = FastStatement.supports(self.engine)
        self._statements = {
            name: (statement, FastStatement(self.engine, statement) if fast else None)
            for name, statement in statements.items()
        }

    def _first(self, name: str, values: dict[str, t.Any]) -> t.Sequence[t.Any] | None:
        """Run the SELECT ``name`` and return its first row, or ``None``."""
        statement, fast = self._statements[name]
        if fast is None:
            with self._autocommit.connect() as connection:
                return connection.execute(statement, values).first()
        try:
            return fast.first(values)
        except Disconnected:
            # A pooled connection broke (the database restarted, say): a read
            # is safe to repeat, on a new connection.
            logger.warning("Lost a connection to the session database; reading again.")
            return fast.first(values)

    def _write(self, name: str, values: dict[str, t.Any]) -> int:
        """Run the write ``name`` as a statement of its own; return its row count."""
        statement, fast = self._statements[name]
        if fast is None:
            with self._autocommit.connect() as connection:
                return connection.execute(statement, values).rowcount
        return fast.rowcount(values)

    # -- helpers ------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, action: str) -> t.Iterator[None]:
        """Turn database errors into kitsession's own exceptions."""
        try:
            yield
        except (sa_exc.DBAPIError, Disconnected, self._dbapi.Error) as e:
            # Not chained: the database's error, and SQLAlchemy's wrapper of it
            # with the statement's parameters, quote the session's data, and a
            # logged traceback shows the chain. The message says what failed.
            raise self._translate(action, e) from None

    def _translate(self, action: str, e: Exception) -> Exception:
        """Return kitsession's exception for a database error met doing ``action``."""
        error = e.orig if isinstance(e, sa_exc.DBAPIError) and e.orig is not None else e
        if isinstance(error, self._dbapi.IntegrityError):
            # Never the database's text: it quotes the values (the user id,
            # the session id) and ends up in logs.
            text = str(error).lower()
            if "foreign key" in text:
                return UnknownUserError(
                    f"Cannot {action}: the session names a user who does not exist"
                    f" in table {self.user_table.name!r}."
                )
            if "unique" in text or "duplicate" in text:
                return SessionExistsError(f"Cannot {action}: the session id exists already.")
        if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
            logger.warning("Lost the connection to the session database: %s", safe_reason(error))
        return StoreUnavailableError(explain(error, action))

    def _row_to_record(self, row: t.Sequence[t.Any]) -> SessionRecord:
        # The columns come in the order of _SESSION_FIELDS, which is the
        # order of SessionRecord's fields (see STORED_FIELDS), then the link
        # and the user's.
        n = len(_SESSION_FIELDS)
        # Then the link column as the JOIN found it (NULL: no user has it).
        user_values = row[n + 1 :]
        user = None
        if row[2] is not None and row[n] is not None:
            user = self.users.build(user_values)
        session_id, data, *fields = row[:n]
        record = SessionRecord(session_id, self.serializer.load(data), *fields)
        record.user = user
        return record

    def _encode(self, record: SessionRecord) -> t.Any:
        """Return the session data as the data column stores it.

        :raises SessionDataError: if the data cannot be stored, or is larger
            than one statement may carry to the database (MySQL/MariaDB's
            ``max_allowed_packet``), which would otherwise drop the connection.
        """
        value, text = self.serializer.dump(record.data)
        if self._locks_ranges and len(text) * 4 + _PACKET_MARGIN > self._max_packet():
            # Four bytes per character at worst (UTF-8), plus the statement.
            raise SessionDataError(
                f"The session data is {len(text)} characters of JSON, more than the"
                f" database takes in one statement (max_allowed_packet ="
                f" {self._max_packet()} bytes). Set KITSESSION_MAX_DATA_SIZE below it,"
                " or raise max_allowed_packet on the server."
            )
        return value

    def _max_packet(self) -> int:
        if self._packet is None:
            with self._errors("read max_allowed_packet"), self.engine.connect() as connection:
                self._packet = int(
                    connection.exec_driver_sql("SELECT @@max_allowed_packet").scalar() or 2**62
                )
        return self._packet

    def _changes(self, record: SessionRecord) -> dict[str, t.Any]:
        value = self._encode(record)
        return {
            "v_data": value,
            # Converted where it came in (user_id_from), not again here.
            "v_user_id": record.user_id,
            "v_updated_at": record.updated_at,
            "v_last_seen_at": record.last_seen_at,
            "v_expires_at": record.expires_at,
            "v_authenticated_at": record.authenticated_at,
            "v_ip_address": record.ip_address,
        }

    # -- the contract ---------------------------------------------------------

    def get(self, session_id: str, now: datetime) -> SessionRecord | None:
        """Return the session, or ``None`` if it is unknown, expired, or signed
        out by a change of its user: a session the foreign key's ``ON UPDATE
        SET NULL`` unlinked, or whose link the JOIN finds no user for, never
        authenticates again (it is deleted here).
        """
        # Not "with self._errors(...)": every request comes here.
        try:
            row = self._first("get", {"id": session_id})
        except (sa_exc.DBAPIError, Disconnected, self._dbapi.Error) as e:
            raise self._translate("load the session", e) from None
        if row is None:
            return None
        record = self._row_to_record(row)
        if record.expires_at <= now:
            return None
        # Linked sessions, and only they, have an authenticated_at: one that
        # has it but no link was unlinked by the foreign key's ON UPDATE SET
        # NULL; one whose link the JOIN finds no user for names an id that no
        # user has anymore.
        if row[len(_SESSION_FIELDS)] is None and (
            record.user_id is not None or record.authenticated_at is not None
        ):
            # Its user changed the id sessions link by (Flask-Security does on
            # a password change and reset_user_access), or is gone: signed
            # out, as they meant. Deleted, so that it cannot come back even
            # where the database does not enforce the foreign key (SQLite
            # without PRAGMA foreign_keys) and the old value returns.
            logger.info("A session signed out by a change of its user was used; deleted it.")
            with self._errors("delete the session"):
                self._write("delete", {"id": session_id})
            return None
        return record

    def check_user(self, user_id: t.Any) -> None:
        """See :meth:`SessionStore.check_user`.

        The session table's foreign key refuses a session of a user who does
        not exist, when the database enforces it. SQLite does so only with
        ``PRAGMA foreign_keys=ON``, which kitsession's own engines turn on and
        an app's engine (Flask-SQLAlchemy's) may not; and MySQL/MariaDB
        compare string keys by their collation, case and trailing spaces
        aside. Then the user is looked up here (once per login), and must
        have exactly this id.
        """
        if self._enforces_foreign_keys() and not self._collation_compares:
            return
        if self.load_user(user_id) is None:
            raise UnknownUserError(
                f"Cannot link the session: it names a user who does not exist in table"
                f" {self.user_table.name!r}."
            )

    def _enforces_foreign_keys(self) -> bool:
        if self._foreign_keys is None:
            if self.engine.dialect.name != "sqlite" or event.contains(
                self.engine, "connect", _configure_sqlite
            ):
                self._foreign_keys = True
            else:
                # An engine of the app's: asked once (a connect hook turns the
                # pragma on for every connection, or for none).
                with self._errors("check the user"), self.engine.connect() as connection:
                    pragma = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
                self._foreign_keys = bool(pragma)
        return self._foreign_keys

    def load_user(self, user_id: t.Any) -> t.Any:
        user_id = None if user_id is None else self._lookup_id(user_id)
        if user_id is None or user_id is NO_USER:
            return None
        with self._errors("load the user"):
            row = self._first("load_user", {"user_id": user_id})
        if row is None:
            return None
        if self._key_index is not None and row[self._key_index] != user_id:
            # Found by the column's collation ("USER-1" or "user-1 " finds
            # "user-1" on MariaDB), not by its value: another id.
            return None
        return self.users.build(row)

    def attach_user(self, user: t.Any) -> t.Any:
        return self.users.attach(user)

    def coerce_user_id(self, value: t.Any) -> t.Any:
        """Convert a user id to the type of :attr:`user_link`; the error for an
        id that cannot be one (a login whose ``get_id()`` returns another
        column) names the setting that fixes it.
        """
        try:
            return super().coerce_user_id(value)
        except UnknownUserError as e:
            raise UnknownUserError(
                f"{e} Sessions link users by {self.user_table.name}.{self.user_link.name}:"
                " if the user model's get_id() returns another unique column (a"
                f" Flask-Login alternative token), name it: {USER_ID_COLUMN_SETTING} ="
                " '<column>'."
            ) from None

    def check_login(self, user: t.Any) -> None:
        """Check that ``user.get_id()`` (what Flask-Login stores) is the user's
        value of :attr:`user_link`, the column sessions link users by, and
        say which setting fixes it when it is not. Nothing is queried: the
        values come from the user object.
        """
        get_id = getattr(user, "get_id", None)
        if not callable(get_id):
            return
        login_id = get_id()
        try:
            wanted = self.coerce_user_id(login_id)
        except UnknownUserError:
            wanted = _MISSING
        values = self._user_values(user)
        linked = values.get(self.user_link.name, _MISSING)
        if wanted is not _MISSING and (linked is _MISSING or linked == wanted):
            return
        link = f"{self.user_table.name}.{self.user_link.name}"
        holding = [
            name
            for name, value in values.items()
            if name != self.user_link.name and value is not None and str(value) == str(login_id)
        ]
        if holding:
            fix = f"Set {USER_ID_COLUMN_SETTING} = {holding[0]!r}, the column get_id() returns."
        else:
            fix = (
                f"Set {USER_ID_COLUMN_SETTING} to the (unique) column get_id() returns,"
                f" or make get_id() return the user's {link}."
            )
        # No value in the message: ids end up in logs.
        raise UnknownUserError(
            f"Cannot link the session to this {type(user).__name__}: its get_id() is not"
            f" its {link}, the column sessions link users by. {fix}"
        )

    def _user_values(self, user: t.Any) -> dict[str, t.Any]:
        """The values of the user table's columns on a user object, by column
        name (those the object has).
        """
        mapper = sa.inspect(type(user), raiseerr=False)
        values: dict[str, t.Any] = {}
        if isinstance(mapper, Mapper):
            for prop in mapper.column_attrs:
                column = prop.columns[0]
                if isinstance(column, sa.Column) and column.table is self.user_table:
                    values[column.name] = getattr(user, prop.key, None)
            return values
        for column in self.user_table.columns:
            value = getattr(user, column.name, _MISSING)
            if value is not _MISSING:
                values[column.name] = value
        return values

    def create(self, record: SessionRecord, *, replaces: str | None = None) -> None:
        value = self._encode(record)
        row = {
            "id": record.id,
            "data": value,
            "user_id": record.user_id,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "last_seen_at": record.last_seen_at,
            "expires_at": record.expires_at,
            "authenticated_at": record.authenticated_at,
            "user_agent": record.user_agent,
            "ip_address": record.ip_address,
        }
        with self._errors("store the session"):
            if replaces is None:
                self._write("insert", row)
                return
            # A login replacing the visitor's session: both rows change together.
            with self.engine.begin() as connection:
                connection.execute(self._statements["delete"][0], {"id": replaces})
                connection.execute(self._statements["insert"][0], row)

    def update(self, record: SessionRecord, *, previous_id: str | None = None) -> bool:
        values = self._changes(record)
        values["current_id"] = record.id if previous_id is None else previous_id
        name = "update"
        if previous_id is not None and previous_id != record.id:
            values["v_id"] = record.id
            name = "update_renaming"
        with self._errors("save the session"):
            return self._write(name, values) > 0

    def touch(
        self,
        session_id: str,
        *,
        last_seen_at: datetime,
        expires_at: datetime,
        ip_address: str | None = None,
    ) -> bool:
        values = {
            "current_id": session_id,
            "v_last_seen_at": last_seen_at,
            "v_expires_at": expires_at,
        }
        name = "touch"
        if ip_address is not None:
            values["v_ip_address"] = ip_address
            name = "touch_ip"
        with self._errors("touch the session"):
            return self._write(name, values) > 0

    def delete(self, session_id: str) -> bool:
        with self._errors("delete the session"):
            return self._write("delete", {"id": session_id}) > 0

    def delete_all_for_user(self, user_id: t.Any, *, keep: str | None = None) -> int:
        user_id = self._lookup_id(user_id)
        if user_id is NO_USER:
            return 0
        values = {"user_id": user_id}
        name = "delete_for_user"
        if keep is not None:
            values["keep"] = keep
            name = "delete_for_user_keeping"
        with self._errors("delete the user's sessions"):
            return self._write(name, values)

    def iterate(
        self,
        *,
        user_id: t.Any = ALL_USERS,
        now: datetime | None = None,
        batch_size: int = 500,
    ) -> t.Iterator[SessionRecord]:
        s = self.session_table
        statement = self._select.order_by(s.c.id).limit(batch_size)
        if user_id is None:
            statement = statement.where(s.c.user_id.is_(None))
        elif user_id is not ALL_USERS:
            user_id = self._lookup_id(user_id)
            if user_id is NO_USER:
                return
            statement = statement.where(self._is_user(user_id))
        if now is not None:
            statement = statement.where(s.c.expires_at > now)
        after: str | None = None
        while True:
            page = statement if after is None else statement.where(s.c.id > after)
            with self._errors("list sessions"), self._autocommit.connect() as conn:
                rows = conn.execute(page).all()
            for row in rows:
                yield self._row_to_record(row)
            if len(rows) < batch_size:
                return
            after = rows[-1][0]

    def purge_expired(
        self,
        now: datetime | None = None,
        *,
        batch_size: int = 1000,
        progress: t.Callable[[int], None] | None = None,
    ) -> int:
        s = self.session_table
        cutoff = models.database_now() if now is None else now
        # Each batch is a short transaction of its own, deleting up to
        # batch_size sessions picked in the order of the expires_at index.
        # No request ever waits for cleanup for long, and none can deadlock
        # with it:
        # - PostgreSQL (and SQLite): one statement. The pick locks its rows
        #   (SKIP LOCKED: two servers clean up at once without waiting for
        #   each other, and a session being saved is skipped), and the DELETE
        #   finds them by primary key. Nothing else in it names expires_at: the
        #   planner, whose statistics may still show those sessions as live
        #   (they all expired since the last ANALYZE), must not drive the
        #   DELETE from the expires_at index, scanning every expired row for
        #   every batch.
        # - MySQL/MariaDB: InnoDB would also lock the entry after the range,
        #   a live session, even in READ COMMITTED, and may run a DELETE ...
        #   IN (SELECT ...) as a scan of the whole table that locks every
        #   session. So there the pick is a plain read, and the DELETE by
        #   primary key runs in READ COMMITTED, checking expires_at again (a
        #   session saved meanwhile stays), and keeps only the locks of the
        #   rows it deletes.
        pick = (
            sa.select(s.c.id)
            .where(s.c.expires_at <= cutoff)
            .order_by(s.c.expires_at)
            .limit(batch_size)
        )
        if self._locks_ranges:
            delete = sa.delete(s).where(
                s.c.id.in_(sa.bindparam("ids", expanding=True)), s.c.expires_at <= cutoff
            )
        else:
            locked = pick.with_for_update(skip_locked=True).subquery("expired")
            delete = sa.delete(s).where(s.c.id.in_(sa.select(locked.c.id)))
        deleted = 0
        while True:
            with self._errors("delete expired sessions"), self._purging.begin() as conn:
                if self._locks_ranges:
                    ids = conn.execute(pick).scalars().all()
                    count = conn.execute(delete, {"ids": ids}).rowcount if ids else 0
                    picked = len(ids)
                else:
                    count = picked = conn.execute(delete).rowcount
            deleted += count
            if progress is not None:
                progress(count)
            if picked < batch_size:
                return deleted

    def close(self) -> None:
        self.engine.dispose()
