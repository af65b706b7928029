"""What a database error means for the operator, and the one step that fixes it.

:func:`explain` turns an error of the session database into the message of a
:exc:`~flask_kitsession.StoreUnavailableError`: what failed and, when it is
known, the one step that fixes it (create the tables, create the database,
check the password, configure the pooler). A hint is given only for the
problem it fixes: "run the migrations" is not the answer to a refused
password.

The message never carries session data. A database quotes the values it
refuses (PostgreSQL's ``DETAIL`` and ``CONTEXT`` lines, MariaDB's ``Duplicate
entry '...'``), and this message is logged: for an error about a value only
its kind is kept.

:func:`check_url` and :func:`missing_driver_message` do the same for a
database URL that cannot work.
"""

from __future__ import annotations

import re
import typing as t

import sqlalchemy as sa

_CREATE_TABLES = "Create the tables with `flask kitsession db upgrade`."
_UPDATE_TABLES = "Bring the tables up to date with `flask kitsession db upgrade`."
_CHECK_LOGIN = (
    "Check the user name and password in the database URL (KITSESSION_DATABASE_URL),"
    " and that the server lets this user connect."
)
_CHECK_SERVER = (
    "Check that the database server is running and that the host and port in the"
    " database URL (KITSESSION_DATABASE_URL) are right."
)

#: (pattern in the message of a PgBouncer error, hint). PgBouncer answers as
#: the server would, with messages of its own.
_POOLER_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"unsupported startup parameter: (\w+)"),
        "The connection pooler (PgBouncer) does not pass on the startup parameter"
        " {0} of the database URL: remove it from the URL, or list it in the pooler's"
        " ignore_startup_parameters (and set it on the database role instead).",
    ),
    (
        re.compile(r"bouncer config error|no such database"),
        "The connection pooler (PgBouncer) has no entry for this database: add it to"
        " the pooler's [databases] section, or correct the database name in the URL.",
    ),
    (
        re.compile(r"no more connections allowed"),
        "The connection pooler (PgBouncer) has reached max_client_conn: raise it, or"
        " give each app server fewer connections (pool_size in"
        " KITSESSION_ENGINE_OPTIONS).",
    ),
    (
        re.compile(r'prepared statement "[^"]*" (does not exist|already exists)'),
        "A connection pooler in transaction mode cannot keep psycopg's prepared"
        " statements: turn them off with KITSESSION_ENGINE_OPTIONS ="
        ' {{"connect_args": {{"prepare_threshold": None}}}}.',
    ),
    (
        re.compile(r"pgbouncer cannot connect to server|server login (failed|retry)"),
        "The connection pooler (PgBouncer) cannot log in to the database server:"
        " check the server, and the host, port and user of its [databases] entry.",
    ),
)

#: PostgreSQL SQLSTATE classes whose messages quote the values refused.
_PG_VALUE_CLASSES = ("22", "23")

#: MySQL/MariaDB error codes: unknown table, unknown column, unknown database,
#: access denied (three forms), cannot connect (three forms).
_MYSQL_NO_TABLE = {1146}
_MYSQL_NO_COLUMN = {1054}
_MYSQL_NO_DATABASE = {1049}
_MYSQL_LOGIN = {1044, 1045, 1698}
_MYSQL_UNREACHABLE = {2002, 2003, 2005}


def explain(error: BaseException, action: str) -> str:
    """Return the message for ``error``, met doing ``action`` ("save the
    session"): what failed, and the step that fixes it when it is known.

    :param error: The DBAPI error, or SQLAlchemy's wrapper of one.
    :param action: What kitsession was doing, as a verb phrase.
    """
    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    if original is None:
        original = error
    reason, hint = _describe(original)
    message = f"Cannot {action}: the session database failed: {reason}"
    message = message.rstrip(".") + "."
    return f"{message} {hint}" if hint else message


def safe_reason(error: BaseException) -> str:
    """Return what went wrong, without any value the database quotes."""
    original = error.orig if isinstance(error, sa.exc.DBAPIError) else error
    return _describe(original if original is not None else error)[0]


def _describe(error: BaseException) -> tuple[str, str]:
    """Return (what failed, hint) for a DBAPI error."""
    module = type(error).__module__.split(".")[0]
    name = type(error).__name__
    if module == "psycopg" or module == "psycopg2":
        return _describe_postgresql(error, name)
    if module == "pymysql" or module == "MySQLdb":
        return _describe_mysql(error, name)
    if module == "sqlite3":
        return _describe_sqlite(error, name)
    if name in ("DataError", "IntegrityError"):
        return f"it refused a value of the session ({name})", ""
    return _first_line(str(error)), ""


def _describe_postgresql(error: BaseException, name: str) -> tuple[str, str]:
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if sqlstate is not None and sqlstate[:2] in _PG_VALUE_CLASSES:
        # The primary message may quote the value too ('invalid input syntax
        # for type integer: "abc"'): keep only the condition's name.
        return f"it refused a value of the session ({name}, SQLSTATE {sqlstate})", ""
    diag = getattr(error, "diag", None)
    primary = getattr(diag, "message_primary", None)
    # Without DETAIL and CONTEXT, which quote the statement's data.
    text = primary if primary else _first_line(str(error))
    for pattern, hint in _POOLER_HINTS:
        found = pattern.search(text)
        if found is not None:
            return text, hint.format(*found.groups())
    if sqlstate == "42P01":
        return text, _CREATE_TABLES
    if sqlstate == "42703":
        return text, _UPDATE_TABLES
    if sqlstate == "3D000" or re.search(r'database "[^"]*" does not exist', text):
        return text, (
            "Create the database (`createdb NAME`), or correct its name in the"
            " database URL (KITSESSION_DATABASE_URL)."
        )
    if (sqlstate is not None and sqlstate[:2] == "28") or re.search(
        r'password authentication failed|role "[^"]*" does not exist|no pg_hba\.conf entry'
        r"|authentication failed",
        text,
    ):
        return text, _CHECK_LOGIN
    if re.search(r"Connection refused|could not translate host name|timeout expired", text):
        return text, _CHECK_SERVER
    return text, ""


def _describe_mysql(error: BaseException, name: str) -> tuple[str, str]:
    args: tuple[t.Any, ...] = tuple(getattr(error, "args", ()))
    code = args[0] if args and isinstance(args[0], int) else None
    if name in ("DataError", "IntegrityError") or code == 4025:
        # MariaDB quotes refused values ("Duplicate entry '...'").
        return f"it refused a value of the session ({name}, error {code})", ""
    text = str(args[1]) if len(args) > 1 else _first_line(str(error))
    text = f"({code}) {text}" if code is not None else text
    if code in _MYSQL_NO_TABLE:
        return text, _CREATE_TABLES
    if code in _MYSQL_NO_COLUMN:
        return text, _UPDATE_TABLES
    if code in _MYSQL_NO_DATABASE:
        return text, (
            "Create the database (CREATE DATABASE name CHARACTER SET utf8mb4), or"
            " correct its name in the database URL (KITSESSION_DATABASE_URL)."
        )
    if code in _MYSQL_LOGIN:
        return text, _CHECK_LOGIN
    if code in _MYSQL_UNREACHABLE:
        return text, _CHECK_SERVER
    return text, ""


def _describe_sqlite(error: BaseException, name: str) -> tuple[str, str]:
    if name in ("DataError", "IntegrityError"):
        return f"it refused a value of the session ({name})", ""
    text = _first_line(str(error))
    if text.startswith("no such table"):
        return text, _CREATE_TABLES
    if text.startswith(("no such column", "table session has no column")):
        return text, _UPDATE_TABLES
    if text == "unable to open database file":
        return text, (
            "Create the folder of the SQLite file and let the app write to it, or"
            " correct the path in the database URL (KITSESSION_DATABASE_URL)."
        )
    return text, ""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no message"


# -- database URLs ----------------------------------------------------------------

#: Extras of flask-kitsession that install a database driver, by backend.
_EXTRAS = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql"}
#: The driver each extra installs, to name in a URL.
_EXTRA_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql"}


def check_url(url: sa.URL) -> None:
    """Refuse a database URL that SQLAlchemy would refuse with a bare error.

    :raises ValueError: for ``postgres://``, which SQLAlchemy does not know
        (hosting platforms hand out such URLs), naming the URL to use.
    """
    backend = url.get_backend_name()
    if backend == "postgres":
        raise ValueError(
            "The database URL starts with postgres://, a name SQLAlchemy does not"
            " know: write postgresql+psycopg:// instead (the driver that"
            " pip install 'flask-kitsession[postgresql]' installs)."
        )


def missing_driver_message(url: sa.URL, error: ImportError) -> str:
    """Return the message for a database URL whose driver is not installed."""
    backend = url.get_backend_name()
    driver = url.get_driver_name() or "its default driver"
    missing = error.name or driver
    extra = _EXTRAS.get(backend)
    if extra is None:
        return (
            f"The database URL needs the Python package {missing!r} ({backend}+{driver}),"
            f" which is not installed: pip install {missing}"
        )
    install = f"pip install 'flask-kitsession[{extra}]'"
    wanted = _EXTRA_DRIVERS[extra]
    if url.drivername != wanted and not (backend == "mariadb" and driver == "pymysql"):
        return (
            f"The database URL ({url.drivername}://) needs the Python package"
            f" {missing!r}, which is not installed. Write {wanted}:// and {install},"
            f" or install {missing}."
        )
    return f"The database URL needs the Python package {missing!r}: {install}"
