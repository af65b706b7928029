"""What a user id is: the one place where ids are converted to the user key's type.

The app, Flask-Login (which keeps ids as strings: ``"42"``), a command line
and a remember cookie all name users in their own way. :meth:`UserKeyType.coerce`
turns each into the Python value of the user table's key column -- an
``int`` within the column's range, a ``str`` that fits the column, a
:class:`~uuid.UUID` -- or refuses it with :exc:`UnknownUserError` when it
cannot be any user's key ("abc" for integer keys, ``2**63`` for a 64-bit
column, a malformed UUID). Stores convert where ids come in and never again
on the way to the database, so a value the database could not compare or
store (and would answer with an error, or an ``OverflowError`` from the
driver) never reaches it.
"""

from __future__ import annotations

import re
import typing as t
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator

from .exceptions import UnknownUserError

#: An integer as Flask-Login writes one (``str(42)``); ASCII digits only, so
#: that "٤٢", " 42" and "4_2", which ``int()`` takes, are not read as 42.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")

#: What no text column of PostgreSQL (or any database kitsession supports
#: alike) holds: NUL and surrogate code points.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

#: Longest text tried as a UUID: the longest form uuid.UUID() reads
#: ("urn:uuid:" and 36 characters) has 45.
_LONGEST_UUID_TEXT = 45


class UserKeyType:
    """The type of a user table's key: which values name a user, converted how.

    :param python_type: ``int``, ``str``, :class:`uuid.UUID` (or another type
        whose constructor converts); ``None`` when it is not known, and ids
        are taken as they come.
    :param min_value: Smallest integer the key column holds.
    :param max_value: Largest integer the key column holds.
    :param max_length: Longest string the key column holds.
    :param uuid_text: The key holds UUIDs as strings (SQLAlchemy's
        ``Uuid(as_uuid=False)``): ids are read as UUIDs and written as their
        canonical text.
    :param mariadb_uuid: The key may be MariaDB's ``UUID`` type, which
        refuses the values whose version nibble is 8 or more in the NCS
        variant (MariaDB 10.11): those are no user's id.

    .. versionadded:: 0.1
    """

    def __init__(
        self,
        python_type: type | None = None,
        *,
        min_value: int | None = None,
        max_value: int | None = None,
        max_length: int | None = None,
        uuid_text: bool = False,
        mariadb_uuid: bool = False,
    ) -> None:
        self.python_type = python_type
        self.min_value = min_value
        self.max_value = max_value
        self.max_length = max_length
        self.uuid_text = uuid_text
        self.mariadb_uuid = mariadb_uuid

    @classmethod
    def of(cls, value: type | UserKeyType | None) -> UserKeyType:
        """Return ``value`` if it is a :class:`UserKeyType`, else one for the
        Python type ``value`` (no range: the store knows no column).
        """
        if isinstance(value, UserKeyType):
            return value
        return cls(value)

    @classmethod
    def for_column(cls, column: sa.Column[t.Any], dialect: sa.Dialect) -> UserKeyType:
        """Return the key type of ``column`` (the user table's primary key) on
        ``dialect``, with the range its integers have there.
        """
        column_type: t.Any = column.type
        while isinstance(column_type, TypeDecorator):
            column_type = column_type.impl_instance
        if isinstance(column_type, sa.Uuid):
            # MariaDB's own UUID type (10.7+, which SQLAlchemy uses) refuses
            # some 128-bit values that other databases keep. Whether a
            # "mysql" URL reaches MariaDB is known only once connected: the
            # rule holds for both (no UUID generator makes those values).
            native = dialect.name in ("mysql", "mariadb") and column_type.native_uuid
            if column_type.as_uuid:
                return cls(uuid.UUID, mariadb_uuid=native)
            return cls(str, uuid_text=True, mariadb_uuid=native)
        if isinstance(column_type, sa.Integer):
            low, high = _integer_range(column_type, dialect)
            return cls(int, min_value=low, max_value=high)
        if isinstance(column_type, sa.String):
            return cls(str, max_length=column_type.length)
        try:
            python_type = column_type.python_type
        except NotImplementedError:
            python_type = None
        return cls(python_type)

    def coerce(self, value: t.Any) -> t.Any:
        """Return ``value`` as a key of the user table (``None`` stays ``None``).

        :raises UnknownUserError: if no user can have this id. The message
            says why without the value: ids are session data, and messages
            are logged.
        """
        kind = self.python_type
        if value is None or kind is None:
            return value
        if kind is int:
            return self._integer(value)
        if kind is str:
            return self._text(value)
        if kind is uuid.UUID:
            return self._uuid(value)
        if isinstance(value, kind) and not isinstance(value, bool):
            return value
        try:
            return kind(value)
        except (TypeError, ValueError, ArithmeticError):
            raise self._refused(value) from None

    def _integer(self, value: t.Any) -> int:
        if type(value) is str and len(value) <= 40 and _INTEGER_TEXT.fullmatch(value):
            value = int(value)
        if type(value) is not int:
            raise self._refused(value)
        if (self.min_value is not None and value < self.min_value) or (
            self.max_value is not None and value > self.max_value
        ):
            raise UnknownUserError(
                "The user id is an integer outside the range of the user table's key"
                " column: no user has it."
            )
        return value

    def _text(self, value: t.Any) -> str:
        if self.uuid_text:
            return str(self._uuid(value))
        if type(value) is int or type(value) is uuid.UUID:
            value = str(value)
        if type(value) is not str:
            raise self._refused(value)
        if self.max_length is not None and len(value) > self.max_length:
            raise UnknownUserError(
                f"The user id is a string longer than the user table's key holds"
                f" ({self.max_length} characters): no user has it."
            )
        if _UNSTORABLE.search(value) is not None:
            raise UnknownUserError(
                "The user id holds a NUL character or a surrogate, which no user"
                " table's key holds on every database: no user has it."
            )
        return value

    def _uuid(self, value: t.Any) -> uuid.UUID:
        if type(value) is str and len(value) <= _LONGEST_UUID_TEXT:
            try:
                value = uuid.UUID(value)
            except ValueError:
                pass
        if type(value) is not uuid.UUID:
            raise self._refused(value)
        if self.mariadb_uuid and not value.bytes[8] & 0x80 and value.bytes[6] >> 4 >= 8:
            raise UnknownUserError(
                "The user id is a UUID that MariaDB's UUID type refuses (version 8 or"
                " more in the NCS variant): no user has it."
            )
        return value

    def _refused(self, value: t.Any) -> UnknownUserError:
        return UnknownUserError(
            f"The user id (a {type(value).__name__}) cannot be a key of the user"
            f" table, whose users have {self.describe()}: no user has it."
        )

    def describe(self) -> str:
        """Say what the ids are, for messages: "integer ids", "UUID ids"."""
        if self.python_type is int:
            return "integer ids"
        if self.python_type is uuid.UUID or self.uuid_text:
            return "UUID ids"
        if self.python_type is str:
            return "string ids"
        name = "unknown" if self.python_type is None else self.python_type.__name__
        return f"{name} ids"

    def __repr__(self) -> str:
        name = None if self.python_type is None else self.python_type.__name__
        return f"<UserKeyType {name} {self.min_value}..{self.max_value} {self.max_length}>"


def _integer_range(column_type: sa.Integer, dialect: sa.Dialect) -> tuple[int, int]:
    """The integers a column of ``column_type`` holds on ``dialect``."""
    if dialect.name == "sqlite":
        # SQLite's INTEGER is 64 bits, whatever the declared type.
        bits = 64
    elif isinstance(column_type, sa.BigInteger):
        bits = 64
    elif isinstance(column_type, mysql.TINYINT):
        bits = 8
    elif isinstance(column_type, sa.SmallInteger):
        bits = 16
    elif isinstance(column_type, mysql.MEDIUMINT):
        bits = 24
    else:
        bits = 32
    if dialect.name in ("mysql", "mariadb") and getattr(column_type, "unsigned", False):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
