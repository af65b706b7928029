"""The tables kitsession stores sessions (and, by default, users) in.

Everything lives in kitsession's own :data:`metadata`, with a naming
convention so that constraint names are stable across databases and Alembic
can compare them. Include :data:`metadata` in your own autogenerate
(``target_metadata = [db.metadata, flask_kitsession.metadata]``) if you keep
these tables in your app's migration history.

Apps with a user table of their own point the session table's foreign key (and
the user JOIN) at it with ``KITSESSION_USER_MODEL``; kitsession then builds
its session table with :func:`define_session_table` in a metadata of its own
and creates no ``user`` table.

Sessions link to users by the id Flask-Login stores (``get_id()``): the
primary key, or another unique column (Flask-Security's ``fs_uniquifier``, a
Flask-Login "alternative token"; see :func:`define_session_table`).
"""

from __future__ import annotations

import functools
import typing as t
from datetime import datetime
from datetime import timezone

from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Dialect
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import JSON
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import relationship
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator
from sqlalchemy.types import TypeEngine

#: Constraint and index names, the same on every database.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Name of the session table.
SESSION_TABLE_NAME = "session"

#: Longest user agent kept; longer ones are cut, never refused.
USER_AGENT_LENGTH = 512

#: Room for any IPv6 address in text form.
IP_ADDRESS_LENGTH = 45


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(timezone.utc)


class database_now(FunctionElement[datetime]):
    """The database server's current UTC time, comparable with :class:`UTCDateTime`
    columns on every database: one clock for every app server that asks.
    """

    type = DateTime(timezone=True)
    inherit_cache = True
    name = "database_now"


@compiles(database_now)
def _now_default(element: database_now, compiler: t.Any, **kw: t.Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(database_now, "postgresql")
def _now_postgresql(element: database_now, compiler: t.Any, **kw: t.Any) -> str:
    return "statement_timestamp()"


@compiles(database_now, "sqlite")
def _now_sqlite(element: database_now, compiler: t.Any, **kw: t.Any) -> str:
    # The text form UTCDateTime stores on SQLite, to the millisecond.
    return "strftime('%Y-%m-%d %H:%M:%f', 'now')"


@compiles(database_now, "mysql")
@compiles(database_now, "mariadb")
def _now_mysql(element: database_now, compiler: t.Any, **kw: t.Any) -> str:
    return "UTC_TIMESTAMP(6)"


@functools.lru_cache(maxsize=4096)
def _sqlite_time(text: str) -> datetime:
    """The aware UTC datetime of a time SQLite keeps as ISO text (naive UTC)."""
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every database.

    PostgreSQL keeps ``timestamp with time zone``; SQLite and MySQL/MariaDB,
    which have no time zones, keep the naive UTC value (with microseconds).
    Naive datetimes are refused on the way in, so nothing is stored in a local
    time by mistake.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[t.Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(
                f"Naive datetime {value!r}: kitsession stores aware UTC datetimes only."
            )
        if dialect.name == "postgresql":
            return value
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    def result_processor(self, dialect: Dialect, coltype: t.Any) -> t.Any:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)
        # SQLite hands back the ISO text SQLAlchemy wrote. Every request reads
        # five of these, mostly the same few values again and again (a
        # session's times change once per touch interval): each text is
        # parsed once, by datetime's C parser, and remembered.
        fallback = super().result_processor(dialect, coltype)

        def process(value: t.Any) -> datetime | None:
            if type(value) is str:
                try:
                    return _sqlite_time(value)
                except ValueError:
                    pass
            if value is None:
                return None
            return t.cast(datetime | None, fallback(value) if fallback else value)

        return process

    def __repr__(self) -> str:
        # How Alembic's autogenerate writes it into an app's migration script.
        return "UTCDateTime()"


class SessionData(TypeDecorator[t.Any]):
    """Session data: JSON, stored as JSONB on PostgreSQL."""

    impl = JSON()
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[t.Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def __repr__(self) -> str:
        return "SessionData()"


#: kitsession's own metadata: the default ``user`` table and the ``session`` table.
metadata = MetaData(naming_convention=NAMING_CONVENTION)

user_table = Table(
    "user",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(255), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False, default=utc_now),
)


def define_session_table(
    target_metadata: MetaData, user_key: Column[t.Any], user_link: Column[t.Any] | None = None
) -> Table:
    """Define the session table in ``target_metadata``, its ``user_id`` a
    foreign key to the user table.

    The ``user_id`` column takes the type of the column it links to, so a user
    table with string or UUID keys works as well as one with integers.

    When sessions link by a column other than the primary key (``user_link``,
    such as Flask-Security's ``fs_uniquifier``), the app changes that column's
    value to sign a user out everywhere. The foreign key then says
    ``ON UPDATE SET NULL``: the change never fails on the sessions that name
    the old value, and unlinks them; a session whose data names a user but
    whose link is gone is signed out when it is read (see
    :meth:`~flask_kitsession.SQLAlchemyStore.get`). Deleting a user deletes
    their sessions in both cases (``ON DELETE CASCADE``).

    :param target_metadata: Where the table is defined.
    :param user_key: The user table's primary key column.
    :param user_link: The column sessions link users by, if not ``user_key``;
        it must be unique.
    """
    link = user_key if user_link is None else user_link
    existing = target_metadata.tables.get(SESSION_TABLE_NAME)
    if existing is not None:
        # An app factory makes its app again (each test, say) with the same
        # models: the table defined the first time serves.
        if "user_id" in existing.c and any(
            fk.column is link for fk in existing.c.user_id.foreign_keys
        ):
            return existing
        raise ValueError(
            f"The metadata already has a {SESSION_TABLE_NAME!r} table, which does not"
            f" link sessions to {link}: is another table of the app named"
            f" {SESSION_TABLE_NAME!r}?"
        )
    return Table(
        SESSION_TABLE_NAME,
        target_metadata,
        # The hex SHA-256 of the cookie token; the token itself is never stored.
        Column("id", String(64), primary_key=True),
        Column(
            "user_id",
            link.type,
            ForeignKey(
                link,
                ondelete="CASCADE",
                onupdate=None if link is user_key else "SET NULL",
            ),
            nullable=True,
            index=True,
        ),
        Column("data", SessionData(), nullable=False),
        Column("created_at", UTCDateTime(), nullable=False),
        Column("updated_at", UTCDateTime(), nullable=False),
        Column("last_seen_at", UTCDateTime(), nullable=False),
        Column("expires_at", UTCDateTime(), nullable=False, index=True),
        Column("authenticated_at", UTCDateTime(), nullable=True),
        Column("user_agent", String(USER_AGENT_LENGTH), nullable=True),
        Column("ip_address", String(IP_ADDRESS_LENGTH), nullable=True),
    )


session_table = define_session_table(metadata, user_table.c.id)


class Base(DeclarativeBase):
    """Declarative base of kitsession's ORM classes, bound to :data:`metadata`."""

    metadata = metadata


class User(Base):
    """The default user: enough for an app to register and sign people in."""

    __table__ = user_table

    id: Mapped[int]
    email: Mapped[str]
    password_hash: Mapped[str | None]
    created_at: Mapped[datetime]

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email!r}>"


class Session(Base):
    """A stored session row (ORM view of :data:`session_table`).

    The request path uses Core statements on the table; this class is for
    apps that want to query sessions with the ORM, such as an admin page.
    """

    __table__ = session_table

    id: Mapped[str]
    user_id: Mapped[int | None]
    data: Mapped[dict[str, t.Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    authenticated_at: Mapped[datetime | None]
    user_agent: Mapped[str | None]
    ip_address: Mapped[str | None]

    user: Mapped[User | None] = relationship(User, lazy="joined", passive_deletes=True)

    def __repr__(self) -> str:
        return f"<Session {self.id[:8]}… user={self.user_id}>"
