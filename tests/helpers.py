"""What the tests share besides fixtures: backends, a hand-moved clock, test views."""

from __future__ import annotations

import collections
import contextlib
import http.client
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import typing as t
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from alembic import command
from benchmarks.queries import QueryRecorder
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_kitsession import current_session
from flask_kitsession import MemoryStore
from flask_kitsession import RedisStore
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import SessionStore
from flask_kitsession import SQLAlchemyStore
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session
from flask_kitsession.migrate import alembic_config
from flask_kitsession.migrate import MigrationTarget
from flask_kitsession.models import session_table
from flask_kitsession.models import user_table
from flask_kitsession.models import utc_now
from flask_kitsession.stores.base import SessionRecord
from flask_kitsession.stores.redis import _FIELDS as REDIS_FIELDS
from flask_kitsession.stores.redis import _glob_escape as glob_escape
from flask_kitsession.stores.sql import create_store_engine

POSTGRESQL_URL = os.environ.get(
    "KITSESSION_TEST_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get(
    "KITSESSION_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
)
REDIS_URL = os.environ.get("KITSESSION_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"
SECRET_KEY = "test secret key, long enough to be a real one: 3f9a1c"

# -- time ---------------------------------------------------------------------


class Clock:
    """A clock the tests move by hand: ``clock.advance(minutes=5)``."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def server_problem(url: str) -> str | None:
    """Why the database server at ``url`` cannot be used, or ``None`` when it answers."""
    try:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    except ImportError as e:
        return f"its driver is not installed ({e})"
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as e:
        return str(e.orig)
    finally:
        engine.dispose()
    return None


def redis_problem(url: str) -> str | None:
    """Why the Redis server at ``url`` cannot be used, or ``None`` when it answers."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        return str(e)
    finally:
        client.close()
    return None


def _from_dead_run(name: str) -> bool:
    """Whether a ``kitsession_test_<pid>_...`` name belongs to a test run of this
    machine that has ended without cleaning up (killed by a timeout, say).
    """
    parts = name.split("_")
    if len(parts) < 4 or not parts[2].isdigit():
        return False
    try:
        os.kill(int(parts[2]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class SchemaFactory:
    """Makes PostgreSQL schemas private to this test run and drops them after."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.run_id = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.schemas: list[str] = []
        self.admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with self.admin.begin() as connection:
            names = connection.execute(
                sa.text("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'kitsession_test_%'")
            ).scalars()
            for name in [n for n in names if _from_dead_run(n)]:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))

    def engine(
        self,
        *,
        connect_args_extra: dict[str, t.Any] | None = None,
        url: str | sa.URL | None = None,
        **options: t.Any,
    ) -> sa.Engine:
        """An engine on a new schema; ``url`` reaches the server another way
        (through a proxy, say).
        """
        name = f"kitsession_test_{self.run_id}_{len(self.schemas)}"
        with self.admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
        self.schemas.append(name)
        # prepare_threshold=None: psycopg sends every statement's text, so
        # QueryRecorder can name what each request ran.
        return create_store_engine(
            self.url if url is None else url,
            connect_args={
                "options": f"-csearch_path={name}",
                "prepare_threshold": None,
                **(connect_args_extra or {}),
            },
            **options,
        )

    def url_for_last(self) -> str:
        """The URL (with its search_path) of the newest schema, for subprocesses."""
        from urllib.parse import quote

        return f"{self.url}?options={quote('-csearch_path=' + self.schemas[-1])}"

    def drop_all(self) -> None:
        with self.admin.begin() as connection:
            for name in self.schemas:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
        self.admin.dispose()


class MariaDBDatabaseFactory:
    """Makes MariaDB databases private to this test run and drops them after."""

    def __init__(self, url: str) -> None:
        self.url = sa.make_url(url)
        self.run_id = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.databases: list[str] = []
        self.admin = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        with self.admin.begin() as connection:
            names = connection.execute(sa.text("SHOW DATABASES LIKE 'kitsession_test_%'")).scalars()
            for name in [n for n in names if _from_dead_run(n)]:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))

    def engine(self, **options: t.Any) -> sa.Engine:
        name = f"kitsession_test_{self.run_id}_{len(self.databases)}"
        with self.admin.begin() as connection:
            connection.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
        self.databases.append(name)
        return create_store_engine(self.url.set(database=name), **options)

    def url_for_last(self) -> str:
        return self.url.set(database=self.databases[-1]).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.begin() as connection:
            for name in self.databases:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        self.admin.dispose()


class RedisKeyspace:
    """Gives each test a key prefix of its own under this run's prefix, and
    deletes the keys after. Never FLUSHDB: the server is shared.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.run_prefix = f"kitsession_test_{os.getpid()}_{secrets.token_hex(3)}"
        self.count = 0
        self.admin = redis.Redis.from_url(url, decode_responses=True)
        dead = [
            key
            for key in self.admin.scan_iter(match="kitsession_test_*", count=1000)
            if _from_dead_run(key.split(":", 1)[0])
        ]
        self._unlink(dead)

    def new_prefix(self) -> str:
        self.count += 1
        return f"{self.run_prefix}:{self.count}:"

    def keys(self, prefix: str) -> list[str]:
        pattern = glob_escape(prefix) + "*"
        return list(self.admin.scan_iter(match=pattern, count=1000))

    def delete(self, prefix: str) -> None:
        self._unlink(self.keys(prefix))

    def _unlink(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 500):
            self.admin.unlink(*keys[start : start + 500])

    def drop_all(self) -> None:
        self.delete(self.run_prefix + ":")
        self.admin.close()


def make_engine(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> sa.Engine:
    """A new, empty database of ``kind`` (``sqlite`` or ``postgresql``)."""
    if kind == "sqlite":
        return create_store_engine(f"sqlite:///{tmp_path / 'kitsession.sqlite3'}")
    factory: SchemaFactory | MariaDBDatabaseFactory = request.getfixturevalue(
        "pg_schemas" if kind == "postgresql" else "mariadb_databases"
    )
    return factory.engine()


def upgrade(engine: sa.Engine, target: MigrationTarget | None = None) -> None:
    """Create the tables with the bundled migrations."""
    with engine.begin() as connection:
        config = alembic_config(connection=connection, target=target)
        command.upgrade(config, "head")


SessionUser = collections.namedtuple("SessionUser", ["id", "email", "created_at"])


class Backend:
    """A store plus what tests need around it: users, raw rows, operation counts."""

    name: str
    store: SessionStore

    def add_user(self, email: str) -> t.Any:
        raise NotImplementedError

    def delete_user(self, user_id: t.Any) -> None:
        raise NotImplementedError

    def rows(self) -> list[dict[str, t.Any]]:
        """Every stored session, raw."""
        raise NotImplementedError

    def operations(self) -> t.ContextManager[list[str]]:
        """Record what reaches the storage: "SELECT ...", "UPDATE ..." and so on."""
        raise NotImplementedError

    def reads(self, operations: list[str]) -> list[str]:
        """The operations that read."""
        return [op for op in operations if op.upper().startswith("SELECT")]

    def writes(self, operations: list[str]) -> list[str]:
        """The operations that change data (transaction control aside)."""
        return [op for op in operations if op.upper().startswith(("INSERT", "UPDATE", "DELETE"))]

    def reset(self) -> None:
        pass


class RecordingMemoryStore(MemoryStore):
    """A MemoryStore that notes each storage call, as SQL stores note statements."""

    log: list[str] | None = None

    def _note(self, operation: str) -> None:
        if self.log is not None:
            self.log.append(operation)

    def get(self, session_id: str, now: datetime) -> t.Any:
        self._note("SELECT session")
        return super().get(session_id, now)

    def create(self, record: t.Any, *, replaces: str | None = None) -> None:
        self._note("INSERT session")
        super().create(record, replaces=replaces)

    def update(self, record: t.Any, *, previous_id: str | None = None) -> bool:
        self._note("UPDATE session")
        return super().update(record, previous_id=previous_id)

    def touch(self, session_id: str, **kwargs: t.Any) -> bool:
        self._note("UPDATE session touch")
        return super().touch(session_id, **kwargs)

    def delete(self, session_id: str) -> bool:
        self._note("DELETE session")
        return super().delete(session_id)

    def delete_all_for_user(self, user_id: t.Any, *, keep: str | None = None) -> int:
        self._note("DELETE session for user")
        return super().delete_all_for_user(user_id, keep=keep)


class DictUsersBackend(Backend):
    """A backend whose users live in a dict (stores without a user table)."""

    users: dict[int, SessionUser]

    def _load_user(self, user_id: t.Any) -> t.Any:
        return self.users.get(user_id)

    def add_user(self, email: str) -> t.Any:
        user_id = len(self.users) + 1
        self.users[user_id] = SessionUser(user_id, email, datetime.now(timezone.utc))
        return user_id

    def delete_user(self, user_id: t.Any) -> None:
        # What ON DELETE CASCADE does in SQL; an app without one does it itself.
        del self.users[user_id]
        self.store.delete_all_for_user(user_id)


class MemoryBackend(DictUsersBackend):
    name = "memory"

    def __init__(self) -> None:
        self.users: dict[int, SessionUser] = {}
        self.store: RecordingMemoryStore = RecordingMemoryStore(
            user_loader=self._load_user, user_id_type=int
        )

    def rows(self) -> list[dict[str, t.Any]]:
        store = self.store
        with store._lock:
            return [
                {
                    **{f: getattr(r, f) for f in r.__slots__ if f not in ("data", "user")},
                    "data": text,
                }
                for r, text in store._rows.values()
            ]

    @contextlib.contextmanager
    def operations(self) -> t.Iterator[list[str]]:
        log: list[str] = []
        self.store.log = log
        try:
            yield log
        finally:
            self.store.log = None


class RecordingRedis(redis.Redis):
    """A Redis client that notes each round trip, named as SQL backends name
    statements: reads as "SELECT ...", the store's scripts by what they do.
    """

    log: list[str] | None = None
    #: Script SHA-1 -> "INSERT session" and so on.
    script_names: dict[str, str] = {}
    reads = frozenset({"HMGET", "HGET", "HGETALL", "EXISTS", "SCAN", "SSCAN", "SMEMBERS", "PTTL"})

    def describe(self, args: t.Sequence[t.Any]) -> str:
        words = [a.decode() if isinstance(a, bytes) else str(a) for a in args]
        name = words[0].upper()
        text = " ".join(words)
        if name == "EVALSHA":
            return f"{self.script_names.get(words[1], 'SCRIPT')}: {text}"
        return f"SELECT {text}" if name in self.reads else text

    def execute_command(self, *args: t.Any, **options: t.Any) -> t.Any:
        result = super().execute_command(*args, **options)  # type: ignore[no-untyped-call]
        if self.log is not None:
            self.log.append(self.describe(args))
        return result

    def pipeline(self, transaction: bool = True, shard_hint: t.Any = None) -> redis.client.Pipeline:
        return RecordingPipeline(
            self, self.connection_pool, self.response_callbacks, transaction, shard_hint
        )


class RecordingPipeline(redis.client.Pipeline):
    """A pipeline that notes its commands as one round trip of its client."""

    def __init__(self, recorder: RecordingRedis, *args: t.Any) -> None:
        super().__init__(*args)
        self.recorder = recorder

    def execute(self, raise_on_error: bool = True) -> list[t.Any]:
        commands = [self.recorder.describe(args) for args, _ in self.command_stack]
        result = super().execute(raise_on_error)
        if self.recorder.log is not None:
            reads = all(c.startswith("SELECT") for c in commands)
            self.recorder.log.append(
                f"{'SELECT ' if reads else ''}PIPELINE of {len(commands)}: " + "; ".join(commands)
            )
        return result


class RedisBackend(DictUsersBackend):
    """A RedisStore under a key prefix of its own; users kept in a dict, as
    an app would keep them in SQL.
    """

    name = "redis"

    def __init__(self, keyspace: RedisKeyspace) -> None:
        self.keyspace = keyspace
        self.users: dict[int, SessionUser] = {}
        self.client = t.cast(RecordingRedis, RecordingRedis.from_url(keyspace.url))
        self.store: RedisStore = RedisStore(
            self.client,
            prefix=keyspace.new_prefix(),
            user_loader=self._load_user,
            user_id_type=int,
        )
        scripts = {
            "INSERT session": self.store._create_script,
            "UPDATE session": self.store._update_script,
            "UPDATE session touch": self.store._touch_script,
            "DELETE session": self.store._delete_script,
            "DELETE session for user": self.store._delete_all_for_user_script,
        }
        self.client.script_names = {script.sha: name for name, script in scripts.items()}
        for script in scripts.values():
            # Loaded now, so that no recorded operation is a first-use SCRIPT LOAD.
            self.client.script_load(script.script)

    def rows(self) -> list[dict[str, t.Any]]:
        admin = self.keyspace.admin
        rows = []
        for key in self.keyspace.keys(self.store.session_key("")):
            values = admin.hmget(key, REDIS_FIELDS)
            record = self.store._record(key.rsplit(":", 1)[1], values)
            if record is None:
                continue
            row = {f: getattr(record, f) for f in SessionRecord.__slots__ if f != "user"}
            row["data"] = values[0]
            rows.append(row)
        return rows

    @contextlib.contextmanager
    def operations(self) -> t.Iterator[list[str]]:
        log: list[str] = []
        self.client.log = log
        try:
            yield log
        finally:
            self.client.log = None

    def reset(self) -> None:
        self.keyspace.delete(self.store.prefix)
        self.client.close()


class SQLBackend(Backend):
    def __init__(self, name: str, engine: sa.Engine) -> None:
        self.name = name
        self.engine = engine
        self.store = SQLAlchemyStore(engine)

    def add_user(self, email: str) -> t.Any:
        with self.engine.begin() as connection:
            result = connection.execute(
                user_table.insert().values(email=email, created_at=datetime.now(timezone.utc))
            )
            return result.inserted_primary_key[0]  # type: ignore[index]

    def delete_user(self, user_id: t.Any) -> None:
        with self.engine.begin() as connection:
            connection.execute(user_table.delete().where(user_table.c.id == user_id))

    def rows(self) -> list[dict[str, t.Any]]:
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.select(session_table))]

    @contextlib.contextmanager
    def operations(self) -> t.Iterator[list[str]]:
        """The statements the driver runs (``BEGIN`` and ``COMMIT`` included)."""
        with QueryRecorder(self.engine) as recorder:
            yield recorder.statements

    def reset(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(session_table.delete())
            connection.execute(user_table.delete())


def add_data_views(app: Flask) -> None:
    """``POST /set`` stores the form in the session; ``GET /get`` shows it."""

    @app.post("/set")
    def set_value() -> t.Any:
        for key, value in request.form.items():
            session[key] = value
        return jsonify(dict(session))

    @app.get("/get")
    def get_values() -> t.Any:
        return jsonify(dict(session))


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    headers: dict[str, str],
    form: dict[str, str] | None = None,
    timeout: float = 10,
) -> tuple[http.client.HTTPResponse, str]:
    """One request to a server of the tests on 127.0.0.1 (a connection of its
    own); return the response and its body.
    """
    headers = dict(headers)
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
    finally:
        connection.close()
    return response, text


def add_views(app: Flask) -> None:
    """The views a typical app has, used throughout the tests."""

    @app.post("/login")
    @with_new_session
    def login() -> t.Any:
        user_id = request.form.get("user_id")
        if user_id:
            session["user_id"] = int(user_id)
        return jsonify(ok=bool(user_id))

    @app.post("/logout")
    @with_delete_session
    def logout() -> t.Any:
        return jsonify(bye=session.get("user_id"))

    @app.get("/me")
    def me() -> t.Any:
        user = session.user  # type: ignore[attr-defined]
        return jsonify(
            user_id=session.user_id,  # type: ignore[attr-defined]
            email=user.email if user is not None else None,
        )

    add_data_views(app)

    @app.get("/plain")
    def plain() -> str:
        return "no session here"

    @app.post("/sign-out-others")
    def sign_out_others() -> t.Any:
        count = remove_all_sessions_for_user(current_session.user_id, current_session)
        return jsonify(count=count)


def session_cookie(client: FlaskClient, name: str = "session") -> str | None:
    cookie = client.get_cookie(name)
    return None if cookie is None else cookie.value


def log_in(client: FlaskClient, user_id: t.Any) -> None:
    response = client.post("/login", data={"user_id": str(user_id)})
    assert response.status_code == 200, response.data


def me(client: FlaskClient) -> dict[str, t.Any]:
    """What the ``/me`` view says about the client's session."""
    data = client.get("/me").get_json()
    assert isinstance(data, dict)
    return data


# -- live servers for the browser and multi-worker tests ---------------------

#: Debian's Chromium, driven by Playwright; tests never download a browser.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
REPOSITORY = Path(__file__).resolve().parent.parent


def chromium_problem() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"Playwright is not installed ({e}); pip install -e '.[test]'"
    return None


class LocalServer:
    """A WSGI app served on 127.0.0.1 from a thread, for a browser to visit.

    Bounded like every server a test starts: it answers at most
    ``max_requests`` requests (then 503) and stops by itself after
    ``max_seconds``, whatever the test does. Every response's status is
    kept, so a test can check that nothing answered 5xx.
    """

    def __init__(self, app: t.Any, *, max_requests: int = 400, max_seconds: float = 120) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self.max_requests = max_requests
        self.statuses: list[tuple[int, str, str]] = []
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._serve, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._timer = threading.Timer(max_seconds, self.server.shutdown)
        self._timer.daemon = True

    def _serve(self, environ: t.Any, start_response: t.Any) -> t.Any:
        with self._lock:
            too_many = len(self.statuses) >= self.max_requests
            if too_many:
                self.statuses.append((503, environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        if too_many:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"LocalServer: request limit reached"]

        def record(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
            with self._lock:
                self.statuses.append(
                    (int(status.split()[0]), environ["REQUEST_METHOD"], environ["PATH_INFO"])
                )
            return start_response(status, headers, exc_info)

        return self.app(environ, record)

    def errors(self) -> list[tuple[int, str, str]]:
        """The responses with a 5xx status."""
        with self._lock:
            return [s for s in self.statuses if s[0] >= 500]

    def __enter__(self) -> LocalServer:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


class GunicornServer:
    """An app (the example app by default) under gunicorn with several worker
    processes, on 127.0.0.1.

    gunicorn runs under ``timeout(1)``, in its own process group, so it stops
    by itself after ``max_seconds`` even if the test run is killed; leaving
    the ``with`` block stops it sooner (SIGTERM, then SIGKILL). Its access
    log notes the worker pid of every response.

    :param directory: Where the logs go.
    :param env: Environment variables for the app (database URL, secret key).
    :param app: What gunicorn serves; its ``/`` must answer 200.
    """

    def __init__(
        self,
        directory: Path,
        env: t.Mapping[str, str],
        *,
        workers: int = 4,
        threads: int = 1,
        max_seconds: int = 100,
        app: str = "example_app:create_app()",
    ) -> None:
        self.workers = workers
        self.error_log = directory / "gunicorn-error.log"
        self.access_log = directory / "gunicorn-access.log"
        self.command = [
            "timeout",
            "--kill-after=5",
            str(max_seconds),
            sys.executable,
            "-m",
            "gunicorn",
            f"--workers={workers}",
            f"--threads={threads}",
            "--bind=127.0.0.1:0",
            "--graceful-timeout=5",
            "--timeout=30",
            # gunicorn >= 25.1 opens a control socket in $HOME by default,
            # which parallel test runs would share.
            "--no-control-socket",
            f"--error-logfile={self.error_log}",
            f"--access-logfile={self.access_log}",
            "--access-logformat=%(p)s %(s)s %(m)s %(U)s",
            "--capture-output",
            app,
        ]
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> GunicornServer:
        self.process = subprocess.Popen(
            self.command,
            cwd=REPOSITORY,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self._wait_until_ready(deadline=time.monotonic() + 60)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, deadline: float) -> None:
        """Wait for the address and for every worker to have booted and answered."""
        assert self.process is not None
        while True:
            log = self.error_log.read_text() if self.error_log.exists() else ""
            address = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log)
            if address is not None and self._ready(address.group(1)):
                self.url = address.group(1)
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gunicorn did not start in time:\n{log}")
            time.sleep(0.2)

    def _ready(self, url: str) -> bool:
        # A worker boots by running create_app() (migrations included); the
        # app is ready when the workers the log names have all booted.
        log = self.error_log.read_text()
        if log.count("Booting worker with pid") < self.workers:
            return False
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def worker_pids(self) -> set[int]:
        """The pids of every worker booted so far (a worker that died and was
        replaced shows up as an extra pid).
        """
        log = self.error_log.read_text()
        return {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log)}

    def error_log_problems(self) -> list[str]:
        """Lines of the error log that report an error or a traceback."""
        return [
            line
            for line in self.error_log.read_text().splitlines()
            if "[ERROR]" in line or "[CRITICAL]" in line or "Traceback" in line
        ]

    def access_log_lines(self) -> list[tuple[int, int, str, str]]:
        """(worker pid, status, method, path) of every response logged so far."""
        lines = []
        for line in self.access_log.read_text().splitlines():
            pid, status, method, path = line.split(" ", 3)
            lines.append((int(pid.strip("<>")), int(status), method, path))
        return lines


@dataclass
class LoginApp:
    """A Flask-SQLAlchemy + Flask-Login app on kitsession, and its parts."""

    app: Flask
    db: t.Any
    user_model: t.Any
    kitsession: t.Any

    def add_user(self, user_id: str, email: str) -> None:
        with self.app.app_context():
            self.db.session.add(
                self.user_model(
                    id=user_id, email=email, name=email.split("@")[0], password_hash="x"
                )
            )
            self.db.session.commit()


def make_login_app(
    database_url: str,
    *,
    clock: t.Callable[[], datetime] | None = None,
    config: dict[str, t.Any] | None = None,
) -> LoginApp:
    """An app as a Flask-Login user writes it; kitsession added with two lines."""
    from flask_login import current_user
    from flask_login import login_required
    from flask_login import login_user
    from flask_login import LoginManager
    from flask_login import logout_user
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy

    from flask_kitsession import KitSession

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        **(config or {}),
    )
    db = SQLAlchemy(app)

    class Member(UserMixin, db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "users"
        id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(255))
        name: Mapped[str] = mapped_column(sa.String(80))
        password_hash: Mapped[str] = mapped_column(sa.String(255))

    login_manager = LoginManager(app)
    kitsession = KitSession(app, db=db, user_model=Member, clock=clock or utc_now)
    kitsession.init_login_manager(login_manager)

    @app.post("/login/<user_id>")
    def login(user_id: str) -> str:
        remember = request.args.get("remember") == "1"
        if request.args.get("permanent") == "1":
            session.permanent = True
        login_user(db.session.get(Member, user_id), remember=remember)
        return "in"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "out"

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return f"{current_user.name} <{current_user.email}>"

    @app.get("/password-hash")
    @login_required
    def password_hash() -> str:
        # Not loaded with the session: read through db.session on demand.
        return str(current_user.password_hash)

    add_data_views(app)

    @app.post("/sign-out-others")
    def sign_out_others() -> str:
        return str(remove_all_sessions_for_user(current_session.user_id, current_session))

    return LoginApp(app, db, Member, kitsession)


# -- faults between the app and its database ----------------------------------


class TCPProxy:
    """Forwards 127.0.0.1:<port> to a server, and fails on demand: what a
    database restart or outage looks like to the app, for this proxy's
    connections only (the server itself is shared and never touched).

    - :meth:`drop_connections`: every open connection is reset (as when the
      server restarts and its backends die); new ones are accepted.
    - :meth:`stop`: the same, and new connections are refused (the server is
      down, or the port is closed) until :meth:`start`.

    Bounded like every server a test starts: it stops by itself after
    ``max_seconds``. Connections are pumped by daemon threads.

    :param target: ``(host, port)`` of the server.
    """

    def __init__(self, target: tuple[str, int], *, max_seconds: float = 300) -> None:
        import socket

        self._socket = socket
        self.target = target
        self.port = 0
        #: How many connections it has accepted so far.
        self.accepted = 0
        #: How many connections the server has ended (an orderly close).
        self.closed_by_server = 0
        self._upstreams: set[t.Any] = set()
        self._lock = threading.Lock()
        self._open: set[t.Any] = set()
        #: Sockets whose incoming direction has ended in an orderly way.
        self._ended: dict[t.Any, bool] = {}
        self._listener: t.Any = None
        self._accepting: threading.Thread | None = None
        self._timer = threading.Timer(max_seconds, self.stop)
        self._timer.daemon = True

    def __enter__(self) -> TCPProxy:
        self.start()
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self.stop()

    def start(self) -> None:
        """Listen (again, on the same port) and forward what arrives."""
        socket = self._socket
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        with self._lock:
            self._listener = listener
        self._accepting = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._accepting.start()

    def stop(self) -> None:
        """Refuse new connections and reset the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        if self._accepting is not None:
            self._accepting.join(timeout=5)
            self._accepting = None
        self.drop_connections()

    def drop_connections(self) -> int:
        """Reset every open connection; return how many there were."""
        with self._lock:
            sockets, self._open = self._open, set()
            self._ended.clear()
            self._upstreams.clear()
        for sock in sockets:
            self._reset(sock)
        return len(sockets) // 2

    def wait_for_server_closes(self, count: int, timeout: float = 10) -> None:
        """Wait until the server has closed ``count`` connections in all
        (and the proxy has passed each close on to the client).
        """
        deadline = time.monotonic() + timeout
        while self.closed_by_server < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server closed {self.closed_by_server} of {count}")
            time.sleep(0.005)

    def _reset(self, sock: t.Any) -> None:
        import struct

        socket = self._socket
        with contextlib.suppress(OSError):
            # Linger 0: close with RST, as a dead server's kernel answers.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _accept(self, listener: t.Any) -> None:
        socket = self._socket
        while True:
            with self._lock:
                if self._listener is not listener:
                    return
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    self._reset(client)
                    self._reset(upstream)
                    return
                self._open.update((client, upstream))
                self._upstreams.add(upstream)
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: t.Any, sink: t.Any) -> None:
        socket = self._socket
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                sink.sendall(chunk)
        except OSError:
            # A reset on one side resets the other, as through a real network.
            with self._lock:
                for sock in (source, sink):
                    self._open.discard(sock)
                    self._upstreams.discard(sock)
            self._reset(source)
            self._reset(sink)
            return
        # An orderly end on one side is passed on as one (the server's last
        # message must still arrive); the other direction ends by itself.
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        with self._lock:
            self._ended[source] = True
            if source in self._upstreams:
                self._upstreams.discard(source)
                self.closed_by_server += 1
            both = self._ended.get(sink, False)
            if both:
                for sock in (source, sink):
                    self._open.discard(sock)
                    self._ended.pop(sock, None)
        if both:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.close()


# -- one store, several processes ----------------------------------------------


class StoreSpec(t.NamedTuple):
    """How another process opens the same store as this one (picklable)."""

    kind: str
    url: str
    prefix: str = ""

    def open(self) -> SessionStore:
        if self.kind == "redis":
            return RedisStore.from_url(self.url, prefix=self.prefix, user_id_type=int)
        return SQLAlchemyStore(create_store_engine(self.url))


class Soak(t.NamedTuple):
    """The soak app under gunicorn, and what the test checks it with."""

    server: GunicornServer
    #: Straight to the app's schema, for the rows and the connection count.
    engine: sa.Engine
    #: The application_name of every connection the workers open.
    application_name: str
    user_ids: list[int]


def soak_seconds() -> float:
    """How long the soak runs: ``KITSESSION_SOAK_SECONDS``, 20 by default."""
    return float(os.environ.get("KITSESSION_SOAK_SECONDS", "20"))
