"""Review 8: black-box attacks on the promises of the README and docs/.

Every test names the page and the sentence it checks, and fails when the
promise is broken. Written from the documentation only (README.md, docs/),
with the library used through its public API.

Servers: PostgreSQL, MariaDB and Redis on 127.0.0.1 (shared): each test
makes databases named ``review8_*`` and Redis keys under ``review8:`` and
removes them. A server that is not there skips its tests.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import subprocess
import sys
import typing as t
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import Result
from flask import Flask
from flask import request
from flask import session
from werkzeug.test import Cookie

import flask_kitsession
from flask_kitsession import create_session
from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import get_all_sessions
from flask_kitsession import get_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import migrate
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import remove_session
from flask_kitsession import ServerSession
from flask_kitsession import SessionDataError
from flask_kitsession import signals
from flask_kitsession import UnknownUserError
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session
from flask_kitsession.models import user_table

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MY_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"
REDIS_URL = "redis://127.0.0.1:6379/0"

BACKENDS = ["memory", "sqlite", "postgresql", "mariadb", "redis"]
SQL_BACKENDS = ["sqlite", "postgresql", "mariadb"]


# ---------------------------------------------------------------------------
# Harness: a database (or Redis prefix) of the review's own per test
# ---------------------------------------------------------------------------


def _server_up(kind: str) -> bool:
    try:
        if kind == "postgresql":
            e = sa.create_engine(PG_ADMIN, connect_args={"connect_timeout": 2})
            with e.connect():
                pass
            e.dispose()
        elif kind == "mariadb":
            e = sa.create_engine(MY_ADMIN, connect_args={"connect_timeout": 2})
            with e.connect():
                pass
            e.dispose()
        elif kind == "redis":
            import redis

            redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
        return True
    except Exception:
        return False


_UP: dict[str, bool] = {}


def need(kind: str) -> None:
    if kind in ("memory", "sqlite"):
        return
    if kind not in _UP:
        _UP[kind] = _server_up(kind)
    if not _UP[kind]:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{kind} is not running")
        pytest.skip(f"{kind} is not running")


class Database:
    """A database of its own: a SQLite file, or ``review8_*`` on a server."""

    def __init__(self, kind: str, tmp_path: Path) -> None:
        self.kind = kind
        self.name = "review8_" + uuid.uuid4().hex[:12]
        if kind == "postgresql":
            e = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with e.connect() as c:
                c.exec_driver_sql(f'CREATE DATABASE "{self.name}"')
            e.dispose()
            self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"
        elif kind == "mariadb":
            e = sa.create_engine(MY_ADMIN)
            with e.begin() as c:
                c.exec_driver_sql(f"CREATE DATABASE `{self.name}`")
            e.dispose()
            self.url = f"mysql+pymysql://root@127.0.0.1:3306/{self.name}"
        else:
            self.url = f"sqlite:///{tmp_path}/{self.name}.sqlite3"

    def drop(self) -> None:
        if self.kind == "postgresql":
            e = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with e.connect() as c:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            e.dispose()
        elif self.kind == "mariadb":
            e = sa.create_engine(MY_ADMIN)
            with e.begin() as c:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS `{self.name}`")
            e.dispose()


MakeDatabase = t.Callable[[str], Database]


@pytest.fixture
def databases(tmp_path: Path) -> t.Iterator[MakeDatabase]:
    made: list[Database] = []

    def make(kind: str) -> Database:
        need(kind)
        db = Database(kind, tmp_path)
        made.append(db)
        return db

    yield make
    for db in made:
        try:
            db.drop()
        except Exception:
            pass


@pytest.fixture
def redis_prefix() -> t.Iterator[str]:
    need("redis")
    import redis

    prefix = f"review8:{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match=prefix + "*", count=1000):
        client.delete(key)
    client.close()


class Backend:
    """Apps on one backend: memory, SQLite, PostgreSQL, MariaDB or Redis.

    SQL backends keep users and sessions in one database; Redis keeps
    sessions under a prefix of the review's own and users in SQLite.
    """

    def __init__(
        self, kind: str, tmp_path: Path, databases: MakeDatabase, request: pytest.FixtureRequest
    ) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.store = MemoryStore() if kind == "memory" else None
        self.prefix: str | None = None
        self.db: Database | None
        if kind == "redis":
            self.prefix = request.getfixturevalue("redis_prefix")
            self.db = databases("sqlite")
        elif kind in SQL_BACKENDS:
            self.db = databases(kind)
        else:
            self.db = None
        self.apps: list[Flask] = []

    def config(self) -> dict[str, t.Any]:
        cfg: dict[str, t.Any] = {"SECRET_KEY": "review8 secret", "TESTING": True}
        if self.db is not None:
            cfg["KITSESSION_DATABASE_URL"] = self.db.url
        if self.kind == "redis":
            cfg["KITSESSION_REDIS_URL"] = REDIS_URL
            cfg["KITSESSION_REDIS_PREFIX"] = self.prefix
        return cfg

    def app(
        self, config: dict[str, t.Any] | None = None, name: str = "review8", **kwargs: t.Any
    ) -> Flask:
        app = Flask(name, instance_path=str(self.tmp_path / "instance"))
        app.config.update(self.config())
        app.config.update(config or {})
        if self.store is not None and "store" not in kwargs:
            kwargs["store"] = self.store
        if self.kind == "redis" and not self.apps:
            # The users' tables: redis.md names no way to create them for a
            # Redis app (migrate.upgrade refuses a RedisStore), so a SQL app on
            # the same database makes them.
            users = Flask("review8_users", instance_path=str(self.tmp_path / "instance"))
            users.config.update(
                SECRET_KEY="x", KITSESSION_DATABASE_URL=t.cast(Database, self.db).url
            )
            KitSession(users)
            migrate.upgrade(users)
            users.extensions["kitsession"].store.engine.dispose()
        KitSession(app, **kwargs)
        if self.kind in SQL_BACKENDS:
            migrate.upgrade(app)
        self.apps.append(app)
        return app

    def add_user(self, app: Flask, email: str) -> int | str:
        """A user of kitsession's own user table; its id."""
        if self.kind == "memory":
            return abs(hash(email)) % 100000 + 1
        engine = sa.create_engine(t.cast(Database, self.db).url)
        try:
            with engine.begin() as c:
                c.execute(user_table.insert(), {"email": email, "password_hash": "x"})
                return t.cast(
                    "int | str",
                    c.execute(
                        sa.select(user_table.c.id).where(user_table.c.email == email)
                    ).scalar_one(),
                )
        finally:
            engine.dispose()

    def close(self) -> None:
        for app in self.apps:
            state = app.extensions.get("kitsession")
            store = getattr(state, "store", None)
            engine = getattr(store, "engine", None)
            if engine is not None:
                engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, databases: MakeDatabase
) -> t.Iterator[Backend]:
    b = Backend(request.param, tmp_path, databases, request)
    yield b
    b.close()


@pytest.fixture(params=SQL_BACKENDS)
def sql_backend(
    request: pytest.FixtureRequest, tmp_path: Path, databases: MakeDatabase
) -> t.Iterator[Backend]:
    b = Backend(request.param, tmp_path, databases, request)
    yield b
    b.close()


def data_app(backend: Backend, config: dict[str, t.Any] | None = None) -> Flask:
    """An app whose views store and show data, as a user's views would."""
    app = backend.app(config)

    @app.post("/put/<key>")
    def put(key: str) -> str:
        session[key] = request.get_json()["value"]
        return "ok"

    @app.get("/keys")
    def keys() -> str:
        return json.dumps(sorted(session.keys()))

    return app


# ---------------------------------------------------------------------------
# Data round trips (docs/session-data.md; docs/security.md section 6)
# ---------------------------------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from markupsafe import Markup  # noqa: E402

TAG_NAMES = [" t", " di", " b", " u", " m", " d", " kf", " kt", " ks", " kk", " t__", " di__", "__"]


def same(a: t.Any, b: t.Any) -> bool:
    """Equal with the same types all the way down (session-data.md: "the same
    types all the way down, the same text, the same keys")."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return math.copysign(1, a) == math.copysign(1, b) and a == b
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, dt.datetime):
        return (
            a.replace(tzinfo=None) == b.replace(tzinfo=None)
            and a.utcoffset() == b.utcoffset()
            and a.fold == b.fold
            and (a.tzinfo is None) == (b.tzinfo is None)
            and getattr(a.tzinfo, "key", None) == getattr(b.tzinfo, "key", None)
        )
    return t.cast(bool, a == b)


fixed_offsets = st.integers(min_value=-86399, max_value=86399).map(
    lambda s: dt.timezone(dt.timedelta(seconds=s))
)
datetimes = st.datetimes(
    timezones=st.none() | st.just(dt.timezone.utc) | fixed_offsets | st.timezones(),
    allow_imaginary=False,
)
keys = st.sampled_from(TAG_NAMES + ["", "a", "_fresh", "csrf_token"]) | st.text(max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.binary(max_size=12)
    | st.uuids()
    | st.text(max_size=8).map(Markup)
    | datetimes
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=3)
    ),
    max_leaves=8,
)


def roundtrip_app(backend: Backend) -> Flask:
    app = backend.app()
    box: dict[str, t.Any] = {}
    app.config["R8_BOX"] = box

    @app.post("/set")
    def set_() -> str | tuple[str, int]:
        try:
            session.update(box["data"])
        except SessionDataError as e:
            return f"refused: {e}", 400
        return "ok"

    @app.get("/check")
    def check() -> str:
        got = dict(session)
        box["got"] = got
        return "ok"

    return app


@pytest.mark.parametrize("kind", BACKENDS)
def test_every_storable_value_is_read_back_exactly(
    kind: str, tmp_path: Path, databases: MakeDatabase, request: pytest.FixtureRequest
) -> None:
    """docs/session-data.md: "a value is either stored and read back **exactly**
    by the next request (the same types all the way down, the same text, the
    same keys) or refused where it is set". The table lists what is stored:
    JSON types, finite floats, tuples, bytes, UUIDs, Markup, datetimes ("the
    same datetime: microseconds, naive or aware, the same UTC offset, the same
    zone and fold"), text with NUL or surrogates, dicts whose keys are tag
    names. None of these may be refused, and each must come back exactly.
    """
    backend = Backend(kind, tmp_path, databases, request)
    app = roundtrip_app(backend)
    box = app.config["R8_BOX"]
    try:

        @settings(
            max_examples=int(os.environ.get("R8_EXAMPLES", "60")),
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            database=None,
        )
        @given(
            st.dictionaries(
                keys.filter(lambda k: k not in ("_fresh", "id", "user_id", "_user_id", "userId")),
                values,
                min_size=1,
                max_size=3,
            )
        )
        def check(data: dict[str, t.Any]) -> None:
            box.clear()
            box["data"] = data
            client = app.test_client()
            r = client.post("/set")
            assert r.status_code == 200, r.get_data(as_text=True)
            client.get("/check")
            assert same(box["got"], data), (box["got"], data)

        check()
    finally:
        backend.close()


weird_text = st.text(max_size=80) | st.sampled_from(
    [
        "\x00",
        "a" * 64,
        "A" * 64,
        "0" * 64,
        "%",
        "_",
        "*",
        "'",
        "\ud800",
        "é" * 64,
        " " * 64,
        "a" * 10000,
    ]
)


@pytest.mark.parametrize("kind", BACKENDS)
def test_ids_from_a_form_find_no_session_and_raise_nothing(
    kind: str, tmp_path: Path, databases: MakeDatabase, request: pytest.FixtureRequest
) -> None:
    """docs/api.rst, get_session: "Ids that are not well-formed, such as one
    edited in a form, give ``None`` too." remove_session: "Return: Whether the
    session existed." docs/session-data.md: "Lookups by an id no user can have
    (``load_user``, ``delete_all_for_user``, ``iterate``) find nothing."
    An admin page that takes these ids from a form must never crash on them,
    and must never remove a live session.
    """
    backend = Backend(kind, tmp_path, databases, request)
    try:
        app = backend.app()
        user = backend.add_user(app, "ada@example.com")
        with app.test_request_context():
            live = create_session(user, {"k": 1})
        live_id = live.id

        @settings(
            max_examples=int(os.environ.get("R8_EXAMPLES", "60")),
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
            database=None,
        )
        @given(weird_text)
        def check(text: str) -> None:
            with app.app_context():
                if text != live_id:
                    assert get_session(text) is None
                    assert remove_session(text) is False
                assert get_sessions_for_user(text) == [] or str(user) == text.strip()
                if str(user) != text.strip().lstrip("+0"):
                    assert remove_all_sessions_for_user(text) == 0
                assert get_session(live_id) is not None

        check()
    finally:
        backend.close()


# ---------------------------------------------------------------------------
# Flask-Login + Flask-SQLAlchemy (docs/flask-login.md)
# ---------------------------------------------------------------------------


def login_app(
    url: str,
    key_kind: str,
    tmp_path: Path,
    *,
    uniquifier: bool = False,
    config: dict[str, t.Any] | None = None,
) -> Flask:
    """The Flask-Login app of docs/flask-login.md, unchanged but for the
    documented lines, with a user model keyed by ``key_kind``."""
    from flask_login import current_user
    from flask_login import login_user
    from flask_login import LoginManager
    from flask_login import logout_user
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("review8_login", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="review8", TESTING=True, SQLALCHEMY_DATABASE_URI=url)
    app.config.update(config or {})
    db = SQLAlchemy(app)

    key_col: t.Callable[[], t.Any]
    new_key: t.Callable[[int], t.Any]
    if key_kind == "int":
        key_col = lambda: db.Column(db.Integer, primary_key=True)  # noqa: E731
        new_key = lambda n: None  # noqa: E731
    elif key_kind == "str":
        key_col = lambda: db.Column(db.String(40), primary_key=True)  # noqa: E731
        new_key = lambda n: f"user-{n}"  # noqa: E731
    else:
        key_col = lambda: db.Column(db.Uuid, primary_key=True)  # noqa: E731
        new_key = lambda n: uuid.uuid4()  # noqa: E731

    attrs: dict[str, t.Any] = {
        "__tablename__": "account",
        "id": key_col(),
        "email": db.Column(db.String(100), unique=True, nullable=False),
    }
    if uniquifier:
        attrs["fs_uniquifier"] = db.Column(db.String(64), unique=True, nullable=False)

        def get_id(self: t.Any) -> t.Any:
            return self.fs_uniquifier

        attrs["get_id"] = get_id
    User = type("User", (UserMixin, db.Model), attrs)

    login_manager = LoginManager(app)
    with app.app_context():
        kit = KitSession(app, db=db, user_model=User)
        kit.init_login_manager(login_manager)
        db.create_all()

    @app.post("/login/<email>")
    def login(email: str) -> str:
        user = db.session.execute(db.select(User).filter_by(email=email)).scalar_one()
        login_user(user)
        session["cart"] = "apples"
        return "ok"

    @app.get("/me")
    def me() -> str:
        if not current_user.is_authenticated:
            return "anonymous"
        return f"{current_user.email} on {len(get_sessions_for_user(current_user))}"

    @app.post("/others")
    def others() -> str:
        return str(remove_all_sessions_for_user(current_user, current_session))

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "bye"

    def add(email: str, n: int) -> t.Any:
        with app.app_context():
            kw: dict[str, t.Any] = {"email": email}
            k = new_key(n)
            if k is not None:
                kw["id"] = k
            if uniquifier:
                kw["fs_uniquifier"] = uuid.uuid4().hex
            u = User(**kw)
            db.session.add(u)
            db.session.commit()
            return u.get_id()

    app.config["R8_ADD"] = add
    app.config["R8_DB"] = db
    app.config["R8_USER"] = User
    return app


@pytest.mark.parametrize("kind", SQL_BACKENDS)
@pytest.mark.parametrize("key_kind", ["int", "str", "uuid", "uniquifier"])
def test_flask_login_app_keeps_its_code(
    kind: str, key_kind: str, tmp_path: Path, databases: MakeDatabase
) -> None:
    """docs/flask-login.md: "An app that uses Flask-Login keeps its code; add
    kitsession and one line"; "Any single-column primary key works
    (integers, strings, UUIDs)" (configuration.md); fs_uniquifier is
    "detected with no setting" (security.md section 8). Two devices log in,
    both are listed, sign-out-others ends the other, logout ends this one.
    """
    database = databases(kind)
    app = login_app(
        database.url,
        "int" if key_kind == "uniquifier" else key_kind,
        tmp_path,
        uniquifier=key_kind == "uniquifier",
    )
    add = app.config["R8_ADD"]
    add("ada@example.com", 1)
    add("bob@example.com", 2)
    laptop, phone, bob = app.test_client(), app.test_client(), app.test_client()
    try:
        assert laptop.post("/login/ada@example.com").status_code == 200
        assert phone.post("/login/ada@example.com").status_code == 200
        assert bob.post("/login/bob@example.com").status_code == 200
        assert laptop.get("/me").get_data(as_text=True) == "ada@example.com on 2"
        assert bob.get("/me").get_data(as_text=True) == "bob@example.com on 1"
        assert laptop.post("/others").get_data(as_text=True) == "1"
        assert phone.get("/me").get_data(as_text=True) == "anonymous"
        assert bob.get("/me").get_data(as_text=True) == "bob@example.com on 1"
        assert laptop.post("/logout").status_code == 200
        assert laptop.get("/me").get_data(as_text=True) == "anonymous"
    finally:
        with app.app_context():
            app.config["R8_DB"].engine.dispose()


# ---------------------------------------------------------------------------
# Configuration (docs/configuration.md)
# ---------------------------------------------------------------------------

CONFIG_DOC = (
    'docs/configuration.md: "`init_app` checks them and names the key that is wrong (a '
    "`TypeError` or `ValueError`), so a typo fails at start, not on the first request: ... "
    'a URL, prefix or option of the wrong kind"'
)


@pytest.mark.parametrize(
    "key, value",
    [
        ("KITSESSION_ENGINE_OPTIONS", {"pool_size": "5"}),
        ("KITSESSION_ENGINE_OPTIONS", {"echo": "loud"}),
        ("KITSESSION_ENGINE_OPTIONS", {"poolclass": "QueuePool"}),
        ("KITSESSION_ENGINE_OPTIONS", {"connect_args": "connect_timeout=5"}),
        ("KITSESSION_ENGINE_OPTIONS", {"pool_sise": 5}),
        ("KITSESSION_USER_FIELDS", [1]),
        ("KITSESSION_USER_FIELDS", "email"),
        ("KITSESSION_DATABASE_URL", "postgres://postgres@127.0.0.1/test"),
    ],
)
def test_a_bad_value_fails_at_init_naming_its_key(key: str, value: t.Any, tmp_path: Path) -> None:
    """docs/configuration.md: "`init_app` checks them and names the key that
    is wrong (a `TypeError` or `ValueError`), so a typo fails at start, not on
    the first request: ... a URL, prefix or option of the wrong kind". Each
    value here is of the wrong kind for its key (a string where SQLAlchemy
    needs an int, a dict or a class; a misspelt engine option; column
    positions or a bare string instead of a list of column names); the error
    must be a TypeError or ValueError whose message names the key.
    """
    app = Flask("review8_cfg", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="x", KITSESSION_DATABASE_URL=f"sqlite:///{tmp_path}/c.sqlite3")
    app.config[key] = value
    with pytest.raises((TypeError, ValueError)) as info:
        KitSession(app)
    assert key in str(info.value), f"{type(info.value).__name__}: {info.value}"


def test_a_reauthenticate_view_that_names_no_endpoint_is_logged_and_answers_401(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/configuration.md: "a `KITSESSION_REAUTHENTICATE_VIEW` that names no
    endpoint of the app is logged as an error on the `flask_kitsession` logger,
    and the stale login gets `401`, as with `None`"."""
    app = Flask("review8_reauth", instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="x", KITSESSION_REAUTHENTICATE_VIEW="no_such_view")
    KitSession(app, store=MemoryStore())

    @app.post("/login")
    @with_new_session
    def login() -> str:
        session["user_id"] = 1
        return "ok"

    @app.get("/secret")
    @flask_kitsession.fresh_login_required(max_age=dt.timedelta(microseconds=1))
    def secret() -> str:
        return "secret"

    client = app.test_client()
    client.post("/login")
    with caplog.at_level("ERROR", logger="flask_kitsession"):
        r = client.get("/secret")
    assert r.status_code == 401
    assert any("KITSESSION_REAUTHENTICATE_VIEW" in rec.getMessage() for rec in caplog.records)


# ---------------------------------------------------------------------------
# App factories: several apps, several engines, one shared store
# ---------------------------------------------------------------------------


def test_one_extension_on_two_apps_keeps_their_databases_apart(tmp_path: Path) -> None:
    """kitsession's docstring (docs/api.rst): "Create it once and call
    :meth:`init_app` in your app factory". Two apps with their own
    ``KITSESSION_DATABASE_URL`` from one ``KitSession()``: each keeps its
    sessions in its own database, and a cookie of one (same SECRET_KEY) is
    anonymous on the other."""
    kit = KitSession()
    apps: list[Flask] = []
    for n in (1, 2):
        app = Flask(f"review8_factory{n}", instance_path=str(tmp_path / f"instance{n}"))
        app.config.update(
            SECRET_KEY="shared", KITSESSION_DATABASE_URL=f"sqlite:///{tmp_path}/f{n}.sqlite3"
        )
        kit.init_app(app)
        migrate.upgrade(app)

        @app.route("/put", methods=["POST"], endpoint="put")
        def put(n: int = n) -> str:
            session["app"] = n
            return "ok"

        @app.get("/get", endpoint="get")
        def get() -> str:
            return str(session.get("app"))

        apps.append(app)
    a, b = apps
    ca = a.test_client()
    ca.post("/put")
    cookie = t.cast(Cookie, ca.get_cookie("session")).value
    cb = b.test_client()
    cb.set_cookie("session", cookie)
    assert ca.get("/get").get_data(as_text=True) == "1"
    assert cb.get("/get").get_data(as_text=True) == "None"
    with a.app_context():
        assert len(list(get_all_sessions())) == 1
    with b.app_context():
        assert list(get_all_sessions()) == []
    for app in apps:
        app.extensions["kitsession"].store.engine.dispose()


def test_one_store_shared_by_two_apps_tells_each_app_only_its_own(tmp_path: Path) -> None:
    """docs/signals.md: "The sender is always the app, so `connect_via(app)`
    hears only that app (one store may serve several)." docs/api.rst: store
    "shared by every app it is initialised on"."""
    store = MemoryStore()
    apps: list[Flask] = []
    for n in (1, 2):
        app = Flask(f"review8_shared{n}", instance_path=str(tmp_path / "instance"))
        app.config.update(SECRET_KEY="shared")
        KitSession(app, store=store)

        @app.post("/login", endpoint="login")
        @with_new_session
        def login(n: int = n) -> str:
            session["user_id"] = n
            return "ok"

        @app.post("/out", endpoint="out")
        @with_delete_session
        def out() -> str:
            return "bye"

        apps.append(app)
    heard: dict[int, list[tuple[str, dict[str, t.Any]]]] = {1: [], 2: []}
    for n, app in zip((1, 2), apps, strict=True):
        for sig in (
            signals.session_created,
            signals.session_authenticated,
            signals.session_revoked,
        ):
            sig.connect_via(app)(lambda sender, _n=n, _s=sig, **kw: heard[_n].append((_s.name, kw)))
    c1 = apps[0].test_client()
    c1.post("/login")
    c1.post("/out")
    names = [name for name, _ in heard[1]]
    assert names == [
        signals.session_created.name,
        signals.session_authenticated.name,
        signals.session_revoked.name,
    ], names
    assert heard[2] == []
    assert heard[1][-1][1]["reason"] == signals.LOGOUT
    assert heard[1][-1][1]["user_id"] == 1


# ---------------------------------------------------------------------------
# Redis (docs/redis.md)
# ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now


def test_redis_keys_keep_the_prefix_and_expire_with_the_session(
    tmp_path: Path, databases: MakeDatabase, request: pytest.FixtureRequest
) -> None:
    """docs/redis.md: "Each session is a hash under `<prefix>session:{xy}:<id>`";
    "A user's sessions are indexed in sorted sets `<prefix>user:{xy}:<user id>`";
    "A session's key has a Redis TTL that ends when the session does; saving or
    touching the session moves it (sliding expiry), never past the absolute
    timeout"; "A user's index expires with their longest-lived session".
    KITSESSION_REDIS_PREFIX: "Put before every Redis key kitsession writes".
    """
    import redis

    backend = Backend("redis", tmp_path, databases, request)
    clock = Clock()
    app = backend.app(
        {
            "KITSESSION_IDLE_TIMEOUT": 1000,
            "KITSESSION_ABSOLUTE_TIMEOUT": 1500,
            "KITSESSION_TOUCH_INTERVAL": 10,
        },
        clock=clock,
    )
    uid = backend.add_user(app, "ada@example.com")

    @app.post("/login")
    @with_new_session
    def login() -> str:
        session["user_id"] = uid
        return "ok"

    @app.get("/read")
    def read() -> str:
        return str(current_session.user_id)

    r = redis.Redis.from_url(REDIS_URL)
    try:
        client = app.test_client()
        client.post("/login")
        keys = [k.decode() for k in r.scan_iter(match=t.cast(str, backend.prefix) + "*")]
        assert keys and all(k.startswith(backend.prefix) for k in keys), keys
        (skey,) = [k for k in keys if k.startswith(t.cast(str, backend.prefix) + "session:")]
        (ukey,) = [k for k in keys if k.startswith(t.cast(str, backend.prefix) + "user:")]
        assert ukey.endswith(f":{uid}"), ukey
        assert 990 <= r.ttl(skey) <= 1000
        assert r.ttl(ukey) >= r.ttl(skey) - 2
        # 600 s later a read touches the session: its expiry slides to the
        # absolute limit (1500 s after creation, 900 s from now)
        clock.now += dt.timedelta(seconds=600)
        assert client.get("/read").get_data(as_text=True) == str(uid)
        assert 890 <= r.ttl(skey) <= 900, r.ttl(skey)
        assert r.ttl(ukey) >= r.ttl(skey) - 2
        # nothing outside the prefix was written for this user
        assert all(
            k.decode().startswith(backend.prefix)
            for k in r.scan_iter(match=f"*{skey.split(':')[-1]}*")
        )
    finally:
        r.close()
        backend.close()


# ---------------------------------------------------------------------------
# Migrations (docs/migrations.md, docs/flask-login.md)
# ---------------------------------------------------------------------------

BIN = Path(PYTHON).parent


def run(
    cmd: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k != "KITSESSION_DATABASE_URL"}
    full_env.update(env or {})
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)
    return proc


FM_APP = """
import os, uuid
from flask import Flask, session
from flask_sqlalchemy import SQLAlchemy
from flask_migrate import Migrate
from flask_login import LoginManager, UserMixin, login_user, current_user
from flask_kitsession import KitSession, get_sessions_for_user

app = Flask(__name__)
app.config.update(SECRET_KEY="x", SQLALCHEMY_DATABASE_URI=os.environ["R8_URL"])
db = SQLAlchemy(app)
migrate = Migrate(app, db)

class User(UserMixin, db.Model):
    __tablename__ = "member"
    id = db.Column(db.Uuid, primary_key=True, default=uuid.uuid4)
    email = db.Column(db.String(100), unique=True, nullable=False)

lm = LoginManager(app)
kit = KitSession(app, db=db, user_model=User)
kit.init_login_manager(lm)

@app.post("/login")
def login():
    u = db.session.execute(db.select(User)).scalars().first()
    login_user(u)
    return "ok"

@app.get("/me")
def me():
    if not current_user.is_authenticated:
        return "anon"
    return f"{current_user.email} {len(get_sessions_for_user(current_user))}"
"""


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_flask_migrate_puts_the_session_table_in_the_apps_history(
    kind: str, tmp_path: Path, databases: MakeDatabase
) -> None:
    """docs/migrations.md, Flask-Migrate: "`flask db migrate` puts it in your
    history and `flask db upgrade` creates it"; docs/flask-login.md: "Once, add
    `import flask_kitsession.models` to `migrations/script.py.mako`". Then the
    app works, `flask db check` finds nothing to do, and `flask db downgrade`
    removes the tables again. A UUID-keyed user table named `member`."""
    database = databases(kind)
    (tmp_path / "fmapp.py").write_text(FM_APP)
    env = {"R8_URL": database.url, "FLASK_APP": "fmapp", "PYTHONPATH": str(tmp_path)}
    flask = str(BIN / "flask")
    p = run([flask, "db", "init"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    mako = tmp_path / "migrations" / "script.py.mako"
    text = mako.read_text()
    assert "import sqlalchemy as sa\n" in text
    mako.write_text(
        text.replace(
            "import sqlalchemy as sa\n",
            "import sqlalchemy as sa\nimport flask_kitsession.models\n",
            1,
        )
    )
    for cmd in (["db", "migrate", "-m", "sessions"], ["db", "upgrade"], ["db", "check"]):
        p = run([flask, *cmd], tmp_path, env)
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)
    assert "No new upgrade operations detected" in p.stdout + p.stderr
    check = (
        "import fmapp\n"
        "from fmapp import app, db, User\n"
        "with app.app_context():\n"
        "    db.session.add(User(email='a@x')); db.session.commit()\n"
        "c = app.test_client(); c.post('/login'); print(c.get('/me').get_data(as_text=True))\n"
        "with app.app_context(): db.engine.dispose()\n"
    )
    p = run([PYTHON, "-c", check], tmp_path, env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "a@x 1"
    if kind == "mariadb":
        # Alembic's autogenerated downgrade drops the indexed foreign key's
        # index first, which MariaDB refuses for any such model (error 1553):
        # not kitsession's doing, and the docs promise no downgrade here.
        return
    p = run([flask, "db", "downgrade", "base"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    engine = sa.create_engine(database.url)
    try:
        names = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert names <= {"alembic_version"}, names


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_alembic_upgrade_head_in_a_checkout(
    kind: str, tmp_path: Path, databases: MakeDatabase
) -> None:
    """docs/migrations.md: "In a checkout of this repository, `alembic upgrade
    head` with its top-level `alembic.ini`: the URL comes from
    `KITSESSION_DATABASE_URL` or `-x url=...`"; then `flask kitsession db
    check`-equivalent `alembic check` finds nothing, and `downgrade base`
    removes the tables."""
    database = databases(kind)
    alembic = str(BIN / "alembic")
    for cmd in (["upgrade", "head"], ["check"], ["current"]):
        p = run([alembic, "-x", f"url={database.url}", *cmd], REPO)
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)
    assert "0002 (head)" in p.stdout
    # the URL from the environment instead
    p = run([alembic, "current"], REPO, {"KITSESSION_DATABASE_URL": database.url})
    assert p.returncode == 0 and "0002 (head)" in p.stdout, (p.stdout, p.stderr)
    p = run([alembic, "-x", f"url={database.url}", "downgrade", "base"], REPO)
    assert p.returncode == 0, p.stderr
    engine = sa.create_engine(database.url)
    try:
        names = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert names <= {"kitsession_alembic_version"}, names


MYAPP_MODELS = """
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(100), unique=True)
"""

USERS_REVISION = '''
"""users"""
from alembic import op
import sqlalchemy as sa

revision = "a1b2c3d4e5f6"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(100), unique=True, nullable=False),
    )


def downgrade():
    op.drop_table("users")
'''


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_the_apps_own_alembic_env_with_its_own_user_table(
    kind: str, tmp_path: Path, databases: MakeDatabase
) -> None:
    """docs/migrations.md, "Your app's own Alembic environment": in a project
    made by `alembic init`, one change to env.py, and "When the session table
    points at your own user table, say so:
    `include_kitsession(context, Base.metadata, user_model="myapp.models:User")`".
    "Then: `alembic upgrade heads` # your revisions and kitsession's;
    `alembic check` # "No new upgrade operations detected."".

    A new project: its own revision creates its `users` table; on an empty
    database `alembic upgrade heads` must create both apps' tables.
    """
    database = databases(kind)
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "models.py").write_text(MYAPP_MODELS)
    env = {"PYTHONPATH": str(tmp_path)}
    alembic = str(BIN / "alembic")
    p = run([alembic, "init", "migrations"], tmp_path, env)
    assert p.returncode == 0, p.stderr
    ini = tmp_path / "alembic.ini"
    lines = [
        f"sqlalchemy.url = {database.url}" if line.startswith("sqlalchemy.url =") else line
        for line in ini.read_text().splitlines()
    ]
    ini.write_text("\n".join(lines) + "\n")
    env_py = tmp_path / "migrations" / "env.py"
    text = env_py.read_text()
    assert "target_metadata = None\n" in text
    env_py.write_text(
        text.replace(
            "target_metadata = None\n",
            "from myapp.models import Base\n"
            "from flask_kitsession.migrate import include_kitsession\n\n"
            "target_metadata = include_kitsession(context, Base.metadata, "
            'user_model="myapp.models:User")\n',
        )
    )
    (tmp_path / "migrations" / "versions" / "a1b2c3d4e5f6_users.py").write_text(USERS_REVISION)
    p = run([alembic, "upgrade", "heads"], tmp_path, env)
    assert p.returncode == 0, p.stderr[-1500:]
    p = run([alembic, "check"], tmp_path, env)
    assert p.returncode == 0 and "No new upgrade operations detected" in p.stdout + p.stderr, (
        p.stderr[-1500:]
    )


# ---------------------------------------------------------------------------
# Helpers, signals and the testing helpers (docs/api.rst, signals.md, testing.md)
# ---------------------------------------------------------------------------


def helper_app(backend: Backend) -> tuple[Flask, int | str, int | str]:
    app = backend.app()
    ada = backend.add_user(app, "ada@example.com")
    bob = backend.add_user(app, "bob@example.com")

    @app.post("/login/<who>")
    @with_new_session
    def login(who: str) -> str:
        session["user_id"] = ada if who == "ada" else bob
        session["note"] = who
        return "ok"

    @app.get("/who")
    def who() -> str:
        return f"{current_session.user_id}:{session.get('note')}"

    @app.post("/regenerate")
    def regen() -> str:
        regenerate()
        return "ok"

    @app.post("/password")
    def password() -> str:
        return str(credentials_changed())

    return app, ada, bob


def test_regenerate_and_credentials_changed(backend: Backend) -> None:
    """docs/lifecycle.md: "`regenerate()` gives the session a new token at the
    end of the request, keeping its data and clocks"; "`credentials_changed()`,
    after a password change, signs the user out of every other session and
    regenerates this one". docs/signals.md: `session_rotated` with
    `previous_id` for both; `session_revoked` with `CREDENTIALS_CHANGED`
    "once with the count". api.rst: credentials_changed "raises ValueError:
    if the session belongs to no user"."""
    app, ada, bob = helper_app(backend)
    heard: list[tuple[t.Any, dict[str, t.Any]]] = []
    for sig in (signals.session_rotated, signals.session_revoked, signals.session_created):
        sig.connect_via(app)(lambda sender, _s=sig, **kw: heard.append((_s, kw)))
    laptop, phone, tablet, other = (app.test_client() for _ in range(4))
    for c in (laptop, phone, tablet):
        c.post("/login/ada")
    other.post("/login/bob")
    old = t.cast(Cookie, laptop.get_cookie("session")).value
    heard.clear()
    assert laptop.post("/regenerate").status_code == 200
    new = t.cast(Cookie, laptop.get_cookie("session")).value
    assert new != old
    assert laptop.get("/who").get_data(as_text=True) == f"{ada}:ada"
    stale = app.test_client()
    stale.set_cookie("session", old)
    assert stale.get("/who").get_data(as_text=True) == "None:None"
    rotated = [kw for s, kw in heard if s is signals.session_rotated]
    assert len(rotated) == 1 and rotated[0]["previous_id"] != rotated[0]["session"].id
    heard.clear()
    assert laptop.post("/password").get_data(as_text=True) == "2"
    assert laptop.get("/who").get_data(as_text=True) == f"{ada}:ada"
    assert phone.get("/who").get_data(as_text=True) == "None:None"
    assert tablet.get("/who").get_data(as_text=True) == "None:None"
    assert other.get("/who").get_data(as_text=True) == f"{bob}:bob"
    revoked = [kw for s, kw in heard if s is signals.session_revoked]
    assert [(kw["reason"], kw["count"]) for kw in revoked] == [(signals.CREDENTIALS_CHANGED, 2)]
    assert [s for s, _ in heard].count(signals.session_rotated) == 1
    # an anonymous session: ValueError
    anon = app.test_client()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ValueError):
        anon.post("/password")


def test_testing_helpers(backend: Backend) -> None:
    """docs/testing.md: `login(client, user)` "stores a real session in the
    app's store ... and gives the client its cookie"; "On a SQL store, a user
    id that no user has raises UnknownUserError"; `session_of(client)` "returns
    the stored session the client's cookie names, or `None`"; `revoke(client)`
    "returns whether there was a session to delete, and sends
    `session_revoked` with the reason `"admin"`"; `KitSessionClient`:
    `app.test_client(user=user)` is logged in."""
    from flask_kitsession.testing import KitSessionClient
    from flask_kitsession.testing import login
    from flask_kitsession.testing import revoke
    from flask_kitsession.testing import session_of

    app, ada, bob = helper_app(backend)
    client = app.test_client()
    assert session_of(client) is None
    stored = login(client, ada, data={"note": "given"})
    assert client.get("/who").get_data(as_text=True) == f"{ada}:given"
    assert t.cast(ServerSession, session_of(client)).id == stored.id
    with app.app_context():
        assert [s.id for s in get_sessions_for_user(ada)] == [stored.id]
    heard: list[dict[str, t.Any]] = []
    signals.session_revoked.connect_via(app)(lambda sender, **kw: heard.append(kw))
    assert revoke(client) is True
    assert revoke(client) is False
    assert [kw["reason"] for kw in heard] == [signals.ADMIN]
    assert session_of(client) is None
    assert client.get("/who").get_data(as_text=True) == "None:None"
    if backend.kind in SQL_BACKENDS:
        with pytest.raises(UnknownUserError):
            login(app.test_client(), 987654)
    app.test_client_class = KitSessionClient
    signed_in = t.cast(KitSessionClient, app.test_client(user=bob))
    assert signed_in.get("/who").get_data(as_text=True) == f"{bob}:None"
    assert t.cast(ServerSession, signed_in.server_session).user_id == bob
    assert signed_in.revoke() is True
    assert signed_in.get("/who").get_data(as_text=True) == "None:None"


def test_config_keys_do_what_they_say(backend: Backend) -> None:
    """The table of docs/configuration.md: KITSESSION_SIGN_COOKIE "Off: the
    cookie is the bare 256-bit token"; KITSESSION_TRACK_USER_AGENT and
    KITSESSION_TRACK_IP off store neither; KITSESSION_USER_ID_KEYS "the session
    keys that name the session's user"; KITSESSION_CARRY_OVER_KEYS "Keys of
    the session (a cart, a next URL) kept when a login ... starts the
    logged-in one"; KITSESSION_IDLE_TIMEOUT "A session unused for this long
    expires"."""
    clock = Clock()
    app = backend.app(
        {
            "KITSESSION_SIGN_COOKIE": False,
            "KITSESSION_TRACK_USER_AGENT": False,
            "KITSESSION_TRACK_IP": False,
            "KITSESSION_USER_ID_KEYS": ["account"],
            "KITSESSION_CARRY_OVER_KEYS": ["cart"],
            "KITSESSION_IDLE_TIMEOUT": dt.timedelta(minutes=5),
            "KITSESSION_TOUCH_INTERVAL": 30,
        },
        clock=clock,
    )
    ada = backend.add_user(app, "ada@example.com")

    @app.post("/anon")
    def anon() -> str:
        session["cart"] = ["apples"]
        session["scratch"] = 1
        session["user_id"] = 12345  # no longer a user key: plain data
        return "ok"

    @app.post("/login")
    @with_new_session
    def login() -> str:
        session["account"] = ada
        return "ok"

    @app.get("/show")
    def show() -> str:
        s = current_session
        return json.dumps([s.user_id, sorted(session.keys()), s.user_agent, s.ip_address])

    client = app.test_client()
    client.post("/anon", headers={"User-Agent": "Review8/1.0"})
    token = t.cast(Cookie, client.get_cookie("session")).value
    assert len(token) == 43 and "." not in token, token
    assert json.loads(client.get("/show").get_data(as_text=True)) == [
        None,
        ["cart", "scratch", "user_id"],
        None,
        None,
    ]
    client.post("/login", headers={"User-Agent": "Review8/1.0"})
    assert t.cast(Cookie, client.get_cookie("session")).value != token
    assert json.loads(client.get("/show").get_data(as_text=True)) == [
        ada,
        ["account", "cart"],
        None,
        None,
    ]
    # a bare token one character off is anonymous, not an error
    good = t.cast(Cookie, client.get_cookie("session")).value
    bad = good[:20] + ("A" if good[20] != "A" else "B") + good[21:]
    other = app.test_client()
    other.set_cookie("session", bad)
    assert json.loads(other.get("/show").get_data(as_text=True))[0] is None
    # idle timeout, decided by the app's clock
    clock.now += dt.timedelta(minutes=4)
    assert json.loads(client.get("/show").get_data(as_text=True))[0] == ada
    clock.now += dt.timedelta(minutes=4)
    assert json.loads(client.get("/show").get_data(as_text=True))[0] == ada
    clock.now += dt.timedelta(minutes=5, seconds=1)
    assert json.loads(client.get("/show").get_data(as_text=True))[0] is None


def test_cli_list_revoke_cleanup_on_every_store(backend: Backend) -> None:
    """docs/cli.md: "`list` and `revoke` work on every store"; "`revoke
    --session` takes the whole id or its first 8 or more characters";
    "`revoke --user ID` signs a user out everywhere. Both print the sessions
    they revoked"; cleanup with a RedisStore "says so"; bad input ends in a
    usage error, not a traceback. (Not the MemoryStore: it lives in one
    process, so a command line never sees it.)"""
    if backend.kind == "memory":
        pytest.skip("a MemoryStore is never seen by a separate `flask` process")
    app, ada, bob = helper_app(backend)
    a1, a2, b1 = app.test_client(), app.test_client(), app.test_client()
    a1.post("/login/ada")
    a2.post("/login/ada")
    b1.post("/login/bob")
    runner = app.test_cli_runner()

    def cli(*args: str) -> Result:
        result = runner.invoke(args=["kitsession", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args,
            result.output,
            result.exception,
        )
        return result

    r = cli("list", "--user", str(ada), "--full-ids")
    assert r.exit_code == 0 and "2 sessions." in r.output, r.output
    with app.app_context():
        ids = [s.id for s in get_sessions_for_user(ada)]
    assert all(i in r.output for i in ids)
    r = cli("revoke", "--session", ids[0][:8])
    assert r.exit_code == 0 and ids[0][:12] in r.output, r.output
    r = cli("revoke", "--user", str(ada))
    assert r.exit_code == 0 and ids[1][:12] in r.output, r.output
    assert a1.get("/who").get_data(as_text=True) == "None:None"
    assert a2.get("/who").get_data(as_text=True) == "None:None"
    assert b1.get("/who").get_data(as_text=True) == f"{bob}:bob"
    for bad in (
        ["revoke"],
        ["revoke", "--session", "abc"],
        ["list", "--limit", "0"],
        ["revoke", "--session", "zzzzzzzzzz"],
        ["list", "--user", "x" * 300],
        ["cleanup", "--batch-size", "-1"],
    ):
        cli(*bad)
    r = cli("cleanup")
    assert r.exit_code == 0, r.output
    if backend.kind == "redis":
        assert "Redis" in r.output or "nothing" in r.output.lower(), r.output


# ---------------------------------------------------------------------------
# The README quick start, verbatim (README.md "Quick start")
# ---------------------------------------------------------------------------


def readme_quickstart() -> str:
    text = (REPO / "README.md").read_text()
    block = text.split("<!-- quickstart-start -->", 1)[1].split("<!-- quickstart-end -->", 1)[0]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_readme_quick_start_and_its_curl_flow(
    kind: str, tmp_path: Path, databases: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README.md: "Save this as `quickstart.py`" with `create_engine(
    "sqlite:///quickstart.sqlite3")  # or postgresql+psycopg://...`; then the
    curl flow: two devices log in, "signed in on 2 devices", sign-out-others,
    the phone is "not logged in". Run on every SQL database the comment
    names (and MariaDB, which the README lists), code otherwise unchanged."""
    code = readme_quickstart()
    if kind != "sqlite":
        database = databases(kind)
        code = code.replace('"sqlite:///quickstart.sqlite3"', repr(database.url))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, t.Any] = {"__name__": "quickstart"}
    exec(compile(code, "quickstart.py", "exec"), namespace)
    app = namespace["app"]
    try:
        form = {"email": "ada@example.com", "password": "secret"}
        anon, laptop, phone = app.test_client(), app.test_client(), app.test_client()
        assert anon.post("/register", data=form).get_data(as_text=True) == "registered\n"
        assert anon.post("/register", data=form).status_code == 409
        assert laptop.post("/login", data=form).get_data(as_text=True) == "logged in\n"
        assert phone.post("/login", data=form).get_data(as_text=True) == "logged in\n"
        assert laptop.get("/").get_data(as_text=True) == "ada@example.com, signed in on 2 devices\n"
        assert (
            laptop.post("/sign-out-others").get_data(as_text=True) == "signed out 1 other devices\n"
        )
        assert phone.get("/").get_data(as_text=True) == "not logged in\n"
        # what a stranger may send: no 500
        assert (
            anon.post("/login", data={"email": "ada@example.com", "password": "x"}).status_code
            == 401
        )
        assert anon.post("/sign-out-others").status_code == 200
        assert anon.post("/logout").status_code == 200
        assert laptop.post("/logout").get_data(as_text=True) == "logged out\n"
        assert laptop.get("/").get_data(as_text=True) == "not logged in\n"
    finally:
        namespace["engine"].dispose()


@pytest.mark.parametrize("kind", SQL_BACKENDS)
def test_readme_quick_start_login_with_a_nul_in_the_form_is_not_a_500(
    kind: str, tmp_path: Path, databases: MakeDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README.md quick start, "# or postgresql+psycopg://..."; and
    docs/session-data.md: "A visitor can put a NUL into any form field, so
    refusing it would turn client input into a 500". The README's own views
    pass form fields to SQL: a NUL in the e-mail must give 401 (or 400), as any
    other wrong e-mail does, on every database the quick start names. (This
    is the example code's query, not kitsession's session handling.)"""
    code = readme_quickstart()
    if kind != "sqlite":
        database = databases(kind)
        code = code.replace('"sqlite:///quickstart.sqlite3"', repr(database.url))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, t.Any] = {"__name__": "quickstart"}
    exec(compile(code, "quickstart.py", "exec"), namespace)
    app = namespace["app"]
    app.config["PROPAGATE_EXCEPTIONS"] = False
    try:
        client = app.test_client()
        assert client.post(
            "/login", data={"email": "ada\x00@example.com", "password": "x"}
        ).status_code in (400, 401)
        assert (
            client.post(
                "/register", data={"email": "ada\x00@example.com", "password": "x"}
            ).status_code
            != 500
        )
    finally:
        namespace["engine"].dispose()
