"""Review 7: an outside reviewer's attacks on the promises of README.md and docs/.

Written from the documentation only (README.md, docs/security.md and the pages
it links), with the library as a black box.

Broken promises these tests found (they fail until fixed):

- test_refresh_authentication_lets_a_flask_login_user_through (every backend): in a
  Flask-Login app, refresh_authentication() after a password prompt does not get the
  user through fresh_login_required when Flask-Login's session identifier (_id) is
  missing or stale (user agent or address changed, magic-link session, session cleared
  and rewritten): Flask-Login's basic session protection sets _fresh back to False on
  every request, and refresh_authentication() (unlike confirm_login()) leaves _id alone.
- test_only_the_exact_string_id_names_a_user[mariadb]: get_sessions_for_user("USER-1")
  lists, and remove_all_sessions_for_user("USER-1 ") signs out, the sessions of user
  "user-1" (MariaDB's collation), while SQLite and PostgreSQL find none.

Every test quotes the promise it checks and fails when that promise is broken.
Every behaviour test runs on each backend: the memory store, SQLite (a file),
PostgreSQL (a schema of its own), MariaDB (a database of its own) and Redis (a
key prefix of its own).
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import flash
from flask import Flask
from flask import get_flashed_messages
from flask import jsonify
from flask import request
from flask import Response
from flask import session
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import invariant
from hypothesis.stateful import rule
from hypothesis.stateful import RuleBasedStateMachine
from werkzeug.local import LocalProxy
from werkzeug.test import TestResponse

import flask_kitsession
from flask_kitsession import create_session
from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import fresh_login_required
from flask_kitsession import get_all_sessions
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import migrate
from flask_kitsession import RedisStore
from flask_kitsession import refresh_authentication
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import ServerSession
from flask_kitsession import SessionDataError
from flask_kitsession import set_session_cookie
from flask_kitsession import signals
from flask_kitsession import SQLAlchemyStore
from flask_kitsession import UnknownUserError
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session
from flask_kitsession.models import user_table

flask_login = pytest.importorskip("flask_login")
from flask_login import confirm_login  # noqa: E402
from flask_login import current_user  # noqa: E402
from flask_login import login_user  # noqa: E402
from flask_login import LoginManager  # noqa: E402
from flask_login import logout_user  # noqa: E402

if t.TYPE_CHECKING:
    from flask_sqlalchemy import SQLAlchemy

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIA_URL = "mysql+pymysql://root@127.0.0.1:3306"
REDIS_URL = "redis://127.0.0.1:6379/0"
BACKENDS = ["memory", "sqlite", "postgresql", "mariadb", "redis"]
SECRET = "review7-secret"
SESSION_TABLE = flask_kitsession.metadata.tables["session"]

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# --------------------------------------------------------------------------
# Infrastructure: one app per test, on the backend asked for.
# --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture(scope="module")
def r7_pg_schema() -> t.Iterator[str]:
    try:
        engine = sa.create_engine(PG_URL)
        name = f"review7_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {name}")
    except Exception as exc:  # pragma: no cover - server missing
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA {name} CASCADE")
    engine.dispose()


@pytest.fixture(scope="module")
def r7_maria_db() -> t.Iterator[str]:
    try:
        engine = sa.create_engine(MARIA_URL + "/")
        name = f"review7_{uuid.uuid4().hex[:10]}"
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    except Exception as exc:  # pragma: no cover
        pytest.skip(f"MariaDB unavailable: {exc}")
    yield name
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name}")
    engine.dispose()


# (pytest sets __wrapped__ on a fixture definition at run time; its type does not declare it.)
r7_fsa_pg_schema = pytest.fixture(scope="module")(t.cast(t.Any, r7_pg_schema).__wrapped__)
r7_fsa_maria_db = pytest.fixture(scope="module")(t.cast(t.Any, r7_maria_db).__wrapped__)


class Env:
    """An app on one backend, with three users and a clock."""

    def __init__(
        self,
        backend: str,
        tmp_path: Path,
        request: pytest.FixtureRequest,
        *,
        login: bool = False,
        config: dict[str, t.Any] | None = None,
        setup: t.Callable[[Flask], None] | None = None,
    ) -> None:
        self.backend = backend
        self.clock = Clock()
        app = Flask(f"review7_{backend}")
        app.config["SECRET_KEY"] = SECRET
        app.config["TESTING"] = True
        app.config.update(config or {})
        self.prefix: str | None = None
        self.user_engine: sa.Engine | None = None
        if backend in ("memory", "redis"):
            self.user_engine = sa.create_engine(f"sqlite:///{tmp_path}/users.db")
            user_table.create(self.user_engine)
            users = SQLAlchemyStore(self.user_engine)
            store: MemoryStore | RedisStore
            if backend == "memory":
                store = MemoryStore(user_loader=users.load_user, user_id_type=users.user_id_type)
            else:
                self.prefix = f"review7:{uuid.uuid4().hex[:10]}:"
                store = RedisStore.from_url(
                    REDIS_URL,
                    prefix=self.prefix,
                    user_loader=users.load_user,
                    user_id_type=users.user_id_type,
                )
            self.kit = KitSession(app, store=store, clock=self.clock)
            engine = self.user_engine
        else:
            if backend == "sqlite":
                app.config["KITSESSION_DATABASE_URL"] = f"sqlite:///{tmp_path}/sessions.db"
            elif backend == "postgresql":
                schema = request.getfixturevalue("r7_pg_schema")
                app.config["KITSESSION_DATABASE_URL"] = PG_URL
                app.config["KITSESSION_ENGINE_OPTIONS"] = {
                    "connect_args": {"options": f"-csearch_path={schema}"}
                }
            elif backend == "mariadb":
                db = request.getfixturevalue("r7_maria_db")
                app.config["KITSESSION_DATABASE_URL"] = f"{MARIA_URL}/{db}"
            self.kit = KitSession(app, clock=self.clock)
            migrate.upgrade(app)
            engine = app.extensions["kitsession"].store.engine
            with engine.begin() as conn:
                conn.execute(SESSION_TABLE.delete())
                conn.execute(user_table.delete())
        self.engine = engine
        with engine.begin() as conn:
            conn.execute(
                user_table.insert(),
                [{"email": f"user{i}@example.com", "password_hash": "x"} for i in range(3)],
            )
            rows = conn.execute(sa.select(user_table.c.id, user_table.c.email)).all()
        ids = {email: uid for uid, email in rows}
        self.users = [ids[f"user{i}@example.com"] for i in range(3)]
        self.store = app.extensions["kitsession"].store
        self.app = app
        self.lm: LoginManager | None = None
        if login:
            self.lm = LoginManager(app)
            self.kit.init_login_manager(self.lm)
        add_views(app, self)
        if setup:
            setup(app)

    # -- reading the store from outside ------------------------------------
    def sessions(self, user_id: t.Any = None) -> list[ServerSession]:
        with self.app.app_context():
            if user_id is None:
                return list(get_all_sessions())
            return get_sessions_for_user(user_id)

    def count(self) -> int:
        return len(self.sessions())

    def close(self) -> None:
        try:
            self.store.close()
        except Exception:
            pass
        if self.prefix:
            import redis

            r = redis.Redis.from_url(REDIS_URL)
            for key in r.scan_iter(match=self.prefix + "*", count=1000):
                r.delete(key)
            r.close()
        if self.user_engine is not None:
            self.user_engine.dispose()


MakeEnv = t.Callable[..., Env]
"""The make_env fixture: make_env(login=..., config=..., setup=...) builds an Env."""


def add_views(app: Flask, env: Env) -> None:
    @app.get("/read")
    def read() -> Response:
        data = {k: repr(v) for k, v in session.items()}
        user = None
        if env.lm is not None and current_user.is_authenticated:
            user = current_user.get_id()
        return jsonify(
            data=data,
            uid=current_session.user_id,
            flask_login_user=user,
            flashes=get_flashed_messages(),
        )

    @app.post("/write")
    def write() -> str:
        for key, value in request.form.items():
            session[key] = value
        return "written"

    @app.post("/login/<int:uid>")
    @with_new_session
    def login(uid: int) -> str:
        session["user_id"] = uid
        return "logged in"

    @app.post("/failed-login")
    @with_new_session
    def failed_login() -> tuple[str, int]:
        flash("wrong password")
        return "nope", 401

    @app.post("/link/<key>/<int:uid>")
    def plain_link(key: str, uid: int) -> str:
        session[key] = uid
        return "linked"

    @app.post("/logout")
    @with_delete_session
    def logout() -> str:
        return "bye"

    @app.post("/sign-out-others")
    def sign_out_others() -> str:
        return str(remove_all_sessions_for_user(current_session.user_id, current_session))

    @app.post("/regenerate")
    def regen() -> str:
        regenerate()
        return "ok"

    @app.post("/refresh")
    def refresh() -> str:
        refresh_authentication()
        return "ok"

    @app.post("/credentials-changed")
    def cred() -> str:
        return str(credentials_changed())

    @app.get("/fresh")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def fresh() -> str:
        return "fresh enough"

    if env.lm is not None:

        @app.post("/fl-login/<int:uid>")
        def fl_login(uid: int) -> str:
            user = t.cast(LoginManager, env.lm)._user_callback(str(uid))
            login_user(
                user,
                remember=request.args.get("remember") == "1",
                fresh=request.args.get("fresh", "1") == "1",
            )
            return "logged in"

        @app.post("/fl-logout")
        def fl_logout() -> str:
            logout_user()
            return "bye"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return t.cast(str, request.param)


@pytest.fixture
def make_env(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> t.Iterator[MakeEnv]:
    envs: list[Env] = []

    def make(**kw: t.Any) -> Env:
        env = Env(backend, tmp_path / str(len(envs)), request, **kw)
        envs.append(env)
        return env

    (tmp_path / "0").mkdir()
    for i in range(1, 4):
        (tmp_path / str(i)).mkdir()
    yield make
    for env in envs:
        env.close()


def cookie(client: FlaskClient, name: str = "session") -> str | None:
    c = client.get_cookie(name)
    return None if c is None else c.value


def json_of(response: TestResponse) -> t.Any:
    """The JSON body of a response (dynamic: whatever the view returned)."""
    return response.json


def token_of(value: str) -> str:
    return value.split(".", 1)[0]


def sid(value: str) -> str:
    return hashlib.sha256(token_of(value).encode()).hexdigest()


def with_cookie(app: Flask, value: str | None) -> FlaskClient:
    client = app.test_client()
    if value is not None:
        client.set_cookie("session", value)
    return client


def session_cookie_headers(response: TestResponse, name: str = "session") -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]


# --------------------------------------------------------------------------
# 1. Session fixation: a planted cookie is worthless after any login.
# --------------------------------------------------------------------------

LINK_PATHS = [
    "with_new_session",
    "plain:user_id",
    "plain:_user_id",
    "plain:userId",
    "plain:id",
    "update",
    "setdefault",
    "ior",
    "flask_login",
    "flask_login_not_fresh",
    "remember_restore",
]


def _add_link_views(app: Flask) -> None:
    @app.post("/via/update/<int:uid>")
    def via_update(uid: int) -> str:
        session.update({"user_id": uid, "note": "x"})
        return "ok"

    @app.post("/via/setdefault/<int:uid>")
    def via_setdefault(uid: int) -> str:
        session.setdefault("user_id", uid)
        return "ok"

    @app.post("/via/ior/<int:uid>")
    def via_ior(uid: int) -> str:
        s = t.cast(LocalProxy[ServerSession], session)._get_current_object()
        s |= {"userId": uid}
        return "ok"


def _link(env: Env, client: FlaskClient, path: str, uid: int) -> TestResponse:
    if path == "with_new_session":
        return client.post(f"/login/{uid}")
    if path.startswith("plain:"):
        return client.post(f"/link/{path.split(':')[1]}/{uid}")
    if path in ("update", "setdefault", "ior"):
        return client.post(f"/via/{path}/{uid}")
    if path == "flask_login":
        return client.post(f"/fl-login/{uid}")
    if path == "flask_login_not_fresh":
        return client.post(f"/fl-login/{uid}?fresh=0")
    raise AssertionError(path)


@pytest.mark.parametrize("path", LINK_PATHS)
def test_a_planted_cookie_is_dead_after_any_login(make_env: MakeEnv, path: str) -> None:
    """security.md §0: "The token changes whenever the linked user changes (none → A,
    A → B, A → none), by any path ... The old cookie is dead from then on."
    flask-login.md: "a planted session id is worthless after the login"; "a
    remember-cookie login gets a new token too"."""
    env = make_env(login=True, setup=_add_link_views)
    app, alice = env.app, env.users[0]
    attacker = app.test_client()
    assert attacker.post("/write", data={"planted": "by attacker"}).status_code == 200
    planted = cookie(attacker)
    assert planted

    victim = with_cookie(app, planted)
    if path == "remember_restore":
        # The victim logged in earlier with "remember me", closed the browser; the
        # attacker plants a session cookie; the remember cookie logs the victim in.
        other = app.test_client()
        assert other.post(f"/fl-login/{alice}?remember=1").status_code == 200
        remember = other.get_cookie("remember_token")
        assert remember is not None
        victim.set_cookie("remember_token", remember.value)
        response = victim.get("/read")
        assert json_of(response)["flask_login_user"] == str(alice)
    else:
        response = _link(env, victim, path, alice)
    assert response.status_code == 200, response.data
    new = cookie(victim)
    assert new is not None and token_of(new) != token_of(planted), "the planted token was kept"
    assert json_of(victim.get("/read"))["uid"] == alice
    # The attacker's copy names nobody, and writing with it revives nothing.
    seen = json_of(with_cookie(app, planted).get("/read"))
    assert seen["uid"] is None and seen["flask_login_user"] is None
    replay = with_cookie(app, planted)
    replay.post("/write", data={"after": "1"})
    assert json_of(replay.get("/read"))["uid"] is None
    assert token_of(t.cast(str, cookie(replay))) != token_of(planted)
    # One browser, one stored session of the user.
    mine = [s.id for s in env.sessions(alice)]
    if path == "remember_restore":  # the other device that set "remember me" is Alice's too
        assert sid(t.cast(str, cookie(victim))) in mine and sid(planted) not in mine
    else:
        assert mine == [sid(t.cast(str, cookie(victim)))]


@pytest.mark.parametrize("sign", [True, False])
def test_a_token_the_server_never_issued_is_never_adopted(make_env: MakeEnv, sign: bool) -> None:
    """security.md §1: "A token the server never issued is never adopted (no session
    fixation). ... A request that finds no session starts a new one under a new token
    from secrets, whatever the cookie said." Also with KITSESSION_SIGN_COOKIE off."""
    env = make_env(config={"KITSESSION_SIGN_COOKIE": sign})
    app = env.app
    chosen = secrets.token_urlsafe(32)
    client = with_cookie(app, chosen)
    client.post("/write", data={"x": "1"})
    issued = t.cast(str, cookie(client))
    assert token_of(issued) != chosen
    assert json_of(with_cookie(app, chosen).get("/read"))["data"] == {}
    client.post(f"/login/{env.users[0]}")
    assert token_of(t.cast(str, cookie(client))) != chosen


def test_a_leaked_session_id_is_not_a_cookie(make_env: MakeEnv) -> None:
    """security.md §5: "Only the SHA-256 of a token is stored. A leaked table, dump or
    log gives nobody a working cookie." With KITSESSION_SIGN_COOKIE off (the cookie is
    the bare token), sending the stored id (or a slice of it) must not be accepted."""
    env = make_env(config={"KITSESSION_SIGN_COOKIE": False})
    app = env.app
    victim = app.test_client()
    victim.post(f"/login/{env.users[0]}")
    token = t.cast(str, cookie(victim))
    [stored] = env.sessions(env.users[0])
    assert stored.id == hashlib.sha256(token.encode()).hexdigest()
    for value in (stored.id, stored.id[:43], stored.id.upper(), token + "=", " " + token):
        seen = with_cookie(app, value).get("/read")
        assert seen.status_code == 200
        assert json_of(seen)["uid"] is None, value


def test_only_the_hash_of_the_token_is_stored(make_env: MakeEnv, backend: str) -> None:
    """security.md §5: "Only the SHA-256 of a token is stored ... no token or cookie in
    any form" (raw rows / Redis keys and values / SQLite file)."""
    env = make_env(login=True)
    app = env.app
    client = app.test_client()
    client.post("/write", data={"cart": "apples"})
    client.post(f"/fl-login/{env.users[0]}?remember=1")
    client.post("/regenerate")
    value = t.cast(str, cookie(client))
    token = token_of(value)
    assert env.sessions(env.users[0])[0].id == hashlib.sha256(token.encode()).hexdigest()
    needles = {token, token[:20], token[10:30], value.split(".", 1)[1][:20]}
    import base64

    raw = base64.urlsafe_b64decode(token + "=")
    needles |= {raw.hex(), base64.b64encode(raw).decode()[:20]}
    blob = ""
    if backend == "redis":
        import redis

        r = redis.Redis.from_url(REDIS_URL)
        for key in r.scan_iter(match=t.cast(str, env.prefix) + "*"):
            blob += key.decode()
            kind = t.cast(bytes, r.type(key)).decode()
            if kind == "hash":
                blob += repr(r.hgetall(key))
            elif kind == "zset":
                blob += repr(r.zrange(key, 0, -1))
            else:
                blob += repr(r.dump(key))
        r.close()
    elif backend == "memory":
        blob = repr(vars(env.store))
    else:
        with env.engine.connect() as conn:
            blob = repr(conn.execute(sa.select(SESSION_TABLE)).all())
        if backend == "sqlite":
            env.store.close()
            import glob

            for path in glob.glob(
                env.app.config["KITSESSION_DATABASE_URL"][len("sqlite:///") :] + "*"
            ):
                with open(path, "rb") as f:
                    blob += f.read().decode("latin-1")
    assert hashlib.sha256(token.encode()).hexdigest() in blob or backend == "memory"
    for needle in needles:
        assert needle not in blob, "a form of the token is stored"


# --------------------------------------------------------------------------
# 2. New tokens without a new user; logout; logout + login in one request.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["/regenerate", "/refresh", "/credentials-changed"])
def test_rotation_kills_the_old_cookie_and_keeps_data_and_clocks(
    make_env: MakeEnv, endpoint: str
) -> None:
    """lifecycle.md: "regenerate() gives the session a new token at the end of the
    request, keeping its data and clocks"; refresh_authentication() "give[s] the session
    a new token"; security.md §0 "The old cookie is dead from then on" and the absolute
    timeout "regenerate(), refresh_authentication() ... keep it"."""
    env = make_env(config={"KITSESSION_ABSOLUTE_TIMEOUT": timedelta(hours=2)})
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post(f"/login/{alice}")
    client.post("/write", data={"cart": "apples"})
    [before] = env.sessions(alice)
    old = t.cast(str, cookie(client))
    env.clock.advance(minutes=5)
    assert client.post(endpoint).status_code == 200
    new = t.cast(str, cookie(client))
    assert token_of(new) != token_of(old)
    seen = json_of(client.get("/read"))
    assert seen["uid"] == alice and seen["data"]["cart"] == "'apples'"
    assert json_of(with_cookie(app, old).get("/read"))["uid"] is None
    [after] = env.sessions(alice)
    assert after.id == sid(new)
    assert after.created_at == before.created_at
    if endpoint == "/refresh":
        assert after.authenticated_at == env.clock.now
    else:
        assert after.authenticated_at == before.authenticated_at


def test_logout_that_writes_nothing_leaves_no_session_and_no_cookie(make_env: MakeEnv) -> None:
    """lifecycle.md: "A logout view that writes nothing leaves no session and no cookie";
    the stored session is deleted and the cookie expired."""
    env = make_env()
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post(f"/login/{alice}")
    old = cookie(client)
    response = client.post("/logout")
    assert response.status_code == 200
    headers = session_cookie_headers(response)
    assert headers and all("Max-Age=0" in h or "Expires=Thu, 01 Jan 1970" in h for h in headers)
    assert cookie(client) is None
    assert env.count() == 0
    assert json_of(with_cookie(app, old).get("/read"))["uid"] is None


@pytest.mark.parametrize("carry", [(), ("cart", "csrf_token"), "*"])
def test_logout_then_login_of_another_user_in_one_request_carries_nothing(
    make_env: MakeEnv, carry: tuple[str, ...] | str
) -> None:
    """security.md §0: "Nothing crosses from one user to another ... Nothing of a
    signed-in session follows it into an anonymous one, from where a later login could
    carry it into another account." §9: the CSRF token "never passes to another user".
    flask-login.md: "what the request writes afterwards (a flash, another login_user)
    goes into a new session"."""

    def setup(app: Flask) -> None:
        @app.post("/switch/<int:uid>")
        def switch(uid: int) -> str:
            logout_user()
            flash("switched")
            login_user(t.cast(LoginManager, env_holder[0].lm)._user_callback(str(uid)))
            return "switched"

        @app.post("/logout-flash")
        def logout_flash() -> str:
            logout_user()
            flash("bye")
            return "bye"

    env_holder: list[Env] = []
    env = make_env(login=True, config={"KITSESSION_CARRY_OVER_KEYS": carry}, setup=setup)
    env_holder.append(env)
    app, alice, bob = env.app, env.users[0], env.users[1]
    client = app.test_client()
    client.post("/write", data={"cart": "anon-cart"})
    client.post(f"/fl-login/{alice}")
    client.post(
        "/write", data={"cart": "alice-cart", "csrf_token": "alice-csrf", "secret": "alice"}
    )
    alice_cookie = cookie(client)
    assert client.post(f"/switch/{bob}").status_code == 200
    seen = json_of(client.get("/read"))
    assert seen["uid"] == bob and seen["flask_login_user"] == str(bob)
    for key in ("cart", "csrf_token", "secret"):
        assert key not in seen["data"], f"{key} of Alice crossed into Bob's session"
    assert json_of(with_cookie(app, alice_cookie).get("/read"))["uid"] is None
    assert env.sessions(alice) == []
    # Two steps: logout (with a flash), then a login as Bob.
    client2 = app.test_client()
    client2.post(f"/fl-login/{alice}")
    client2.post("/write", data={"cart": "alice-cart", "csrf_token": "alice-csrf"})
    client2.post("/logout-flash")
    mid = json_of(client2.get("/read"))
    assert mid["uid"] is None and "cart" not in mid["data"] and "csrf_token" not in mid["data"]
    client2.post(f"/login/{bob}")
    seen = json_of(client2.get("/read"))
    assert seen["uid"] == bob and "cart" not in seen["data"] and "csrf_token" not in seen["data"]


def test_a_failed_login_changes_nothing_but_the_flash(make_env: MakeEnv) -> None:
    """security.md §0: "A @with_new_session view that links nobody leaves the visitor's
    session (its token, user and clocks) as it was, plus what the view wrote"."""
    env = make_env()
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post(f"/login/{alice}")
    [before] = env.sessions(alice)
    old = t.cast(str, cookie(client))
    env.clock.advance(minutes=3)
    assert client.post("/failed-login").status_code == 401
    assert token_of(t.cast(str, cookie(client))) == token_of(old)
    seen = json_of(client.get("/read"))
    assert seen["uid"] == alice and seen["flashes"] == ["wrong password"]
    [after] = env.sessions(alice)
    assert (after.id, after.created_at, after.authenticated_at) == (
        before.id,
        before.created_at,
        before.authenticated_at,
    )


def test_a_login_view_that_raises_leaves_the_session_as_it_was(make_env: MakeEnv) -> None:
    """lifecycle.md: "A view that raises leaves the session as it was before the view."
    security.md §6: "A request that ends in a 5xx ... keeps none of its session
    changes"."""

    def setup(app: Flask) -> None:
        @app.post("/boom/<int:uid>")
        @with_new_session
        def boom(uid: int) -> str:
            session["user_id"] = uid
            session["half"] = "done"
            raise RuntimeError("boom")

    env = make_env(config={"PROPAGATE_EXCEPTIONS": False}, setup=setup)
    app, alice, bob = env.app, env.users[0], env.users[1]
    client = app.test_client()
    client.post(f"/login/{alice}")
    old = cookie(client)
    received: list[dict[str, t.Any]] = []
    with signals.session_created.connected_to(lambda s, **kw: received.append(kw), app):
        assert client.post(f"/boom/{bob}").status_code == 500
    assert received == []
    assert cookie(client) == old
    seen = json_of(client.get("/read"))
    assert seen["uid"] == alice and "half" not in seen["data"]
    assert env.sessions(bob) == [] and len(env.sessions(alice)) == 1


# --------------------------------------------------------------------------
# 3. Sign out all other devices; revocation racing in-flight requests.
# --------------------------------------------------------------------------


def test_sign_out_others_keeps_this_device_and_ends_the_rest(make_env: MakeEnv) -> None:
    """README: "sign out all other devices"; security.md §2: "once
    remove_all_sessions_for_user returns, no revoked session is alive ... every later
    request of a revoked device is anonymous, and the kept session is intact"."""
    env = make_env()
    app, alice, bob = env.app, env.users[0], env.users[1]
    laptop, phone, tablet, bobs = (app.test_client() for _ in range(4))
    for c in (laptop, phone, tablet):
        c.post(f"/login/{alice}")
    bobs.post(f"/login/{bob}")
    laptop.post("/write", data={"keep": "me"})
    before = t.cast(str, cookie(laptop))
    response = laptop.post("/sign-out-others")
    assert response.data == b"2"
    assert cookie(laptop) == before
    seen = json_of(laptop.get("/read"))
    assert seen["uid"] == alice and seen["data"]["keep"] == "'me'"
    for c in (phone, tablet):
        assert json_of(c.get("/read"))["uid"] is None
        c.post("/write", data={"x": "1"})
        assert json_of(c.get("/read"))["uid"] is None
    assert [s.id for s in env.sessions(alice)] == [sid(before)]
    assert json_of(bobs.get("/read"))["uid"] == bob
    # A signed-out visitor pressing the button signs out nobody.
    stranger = app.test_client()
    assert stranger.post("/sign-out-others").data == b"0"
    assert json_of(bobs.get("/read"))["uid"] == bob


IN_FLIGHT = [
    "write",
    "regenerate",
    "refresh",
    "clear_rewrite_same",
    "pop_rewrite_same",
    "permanent",
    "touch",
    "plain_same_user",
    "flash_only",
]


@pytest.mark.parametrize("action", IN_FLIGHT)
def test_a_request_in_flight_across_sign_out_others_never_revives_the_session(
    make_env: MakeEnv, action: str
) -> None:
    """security.md §0: "A revoked session never comes back, not even through a request
    in flight across the revocation ..., whatever the request does to the session, short
    of logging a user in." §2: "A save or touch that was in flight does not bring it
    back"."""
    entered, release = threading.Event(), threading.Event()

    def setup(app: Flask) -> None:
        @app.post("/slow/<action>")
        def slow(action: str) -> str:
            uid = current_session.user_id
            _ = dict(session)
            entered.set()
            assert release.wait(20)
            if action == "write":
                session["late"] = "write"
            elif action == "regenerate":
                regenerate()
            elif action == "refresh":
                refresh_authentication()
            elif action == "clear_rewrite_same":
                data = dict(session)
                session.clear()
                session.update(data)
            elif action == "pop_rewrite_same":
                session.pop("user_id")
                session["user_id"] = uid
            elif action == "permanent":
                session.permanent = True
            elif action == "plain_same_user":
                session["user_id"] = uid
            elif action == "flash_only":
                flash("late")
            return "done"

    env = make_env(setup=setup)
    app, alice = env.app, env.users[0]
    laptop, phone = app.test_client(), app.test_client()
    laptop.post(f"/login/{alice}")
    phone.post(f"/login/{alice}")
    phone.post("/write", data={"x": "1"})
    phone_cookie = cookie(phone)
    if action == "touch":
        env.clock.advance(minutes=5)
    result: dict[str, TestResponse] = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", phone.post(f"/slow/{action}")))
    thread.start()
    assert entered.wait(20)
    assert laptop.post("/sign-out-others").data == b"1"
    release.set()
    thread.join(30)
    assert result["r"].status_code == 200
    kept = sid(t.cast(str, cookie(laptop)))
    assert [s.id for s in env.sessions(alice)] == [kept], "a revoked session came back"
    assert json_of(with_cookie(app, phone_cookie).get("/read"))["uid"] is None
    assert json_of(phone.get("/read"))["uid"] is None
    assert json_of(laptop.get("/read"))["uid"] == alice


PARALLEL = ["read", "write", "flash", "regenerate", "permanent", "touch", "logout_other_tab"]


@pytest.mark.parametrize("login_kind", ["login", "regenerate", "refresh"])
@pytest.mark.parametrize("action", PARALLEL[:-1])
def test_a_parallel_request_crossing_a_new_token_never_signs_the_browser_out(
    make_env: MakeEnv, action: str, login_kind: str
) -> None:
    """security.md §0: "No response expires the session cookie unless its request ended
    or emptied the session ... so that a request crossing a login or a new token of the
    same browser (parallel requests of one page) never signs it out." §5: "a token that
    another request of the browser renamed meanwhile is never re-sent"."""
    entered, release = threading.Event(), threading.Event()

    def setup(app: Flask) -> None:
        @app.post("/slow/<action>")
        def slow(action: str) -> str:
            _ = dict(session)
            entered.set()
            assert release.wait(20)
            if action == "write":
                session["late"] = "write"
            elif action == "flash":
                flash("late")
            elif action == "regenerate":
                regenerate()
            elif action == "permanent":
                session.permanent = True
            return "done"

    env = make_env(setup=setup)
    app, alice = env.app, env.users[0]
    browser = app.test_client()
    if login_kind == "login":
        browser.post("/write", data={"anon": "1"})
    else:
        browser.post(f"/login/{alice}")
    tab = with_cookie(app, cookie(browser))
    if action == "touch":
        env.clock.advance(minutes=5)
    result: dict[str, TestResponse] = {}
    thread = threading.Thread(target=lambda: result.setdefault("r", tab.post(f"/slow/{action}")))
    thread.start()
    assert entered.wait(20)
    if login_kind == "login":
        browser.post(f"/login/{alice}")
    else:
        browser.post(f"/{login_kind}")
    fresh_cookie = cookie(browser)
    release.set()
    thread.join(30)
    late = result["r"]
    assert late.status_code == 200
    # The late response arrives last at the browser: apply its session cookie.
    for header in session_cookie_headers(late):
        value = header.split(";", 1)[0].split("=", 1)[1]
        expired = "Max-Age=0" in header or "01 Jan 1970" in header
        assert not expired, f"the late {action} response expired the browser's cookie"
        fresh_cookie = value
    seen = json_of(with_cookie(app, fresh_cookie).get("/read"))
    assert seen["uid"] == alice, f"the late {action} response signed the browser out"


# --------------------------------------------------------------------------
# 4. Expiry and freshness, on the app's clock.
# --------------------------------------------------------------------------

TIMEOUTS = {
    "KITSESSION_IDLE_TIMEOUT": timedelta(hours=1),
    "KITSESSION_ABSOLUTE_TIMEOUT": timedelta(hours=2),
    "KITSESSION_TOUCH_INTERVAL": timedelta(seconds=60),
}


def test_idle_timeout_slides_only_with_recorded_uses(make_env: MakeEnv) -> None:
    """security.md §4: "A session expires at its last recorded use plus the idle timeout
    ... A use is recorded at most once per touch interval ..., so a session left alone
    expires between the idle timeout minus the touch interval and the idle timeout after
    its last request." """
    env = make_env(config=dict(TIMEOUTS, KITSESSION_ABSOLUTE_TIMEOUT=None))
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post(f"/login/{alice}")
    env.clock.advance(minutes=30)
    assert json_of(client.get("/read"))["uid"] == alice  # a recorded use (touch)
    env.clock.advance(seconds=30)
    assert json_of(client.get("/read"))["uid"] == alice  # within the touch interval
    last_request = env.clock.now
    env.clock.now = last_request + timedelta(hours=1) - timedelta(seconds=61)
    probe = with_cookie(app, cookie(client))
    assert json_of(probe.get("/read"))["uid"] == alice, "expired before idle - touch interval"
    # That probe was a recorded use too; start again from it.
    last_request = env.clock.now
    env.clock.now = last_request + timedelta(hours=1, seconds=1)
    assert json_of(client.get("/read"))["uid"] is None, "alive after the idle timeout"
    assert client.post("/write", data={"x": "1"}).status_code == 200
    assert json_of(client.get("/read"))["uid"] is None


@pytest.mark.parametrize(
    "keeper",
    [
        "read",
        "write",
        "relogin",
        "regenerate",
        "refresh",
        "flask_login_same_user",
        "clear_rewrite",
        "permanent",
    ],
)
def test_no_sequence_of_requests_outlives_the_absolute_timeout(
    make_env: MakeEnv, keeper: str
) -> None:
    """lifecycle.md: "A re-login of the same user, regenerate(), refresh_authentication()
    and carry-over keep it [created_at] ... So no sequence of requests keeps a session
    alive past the absolute timeout"."""

    def setup(app: Flask) -> None:
        @app.post("/clear-rewrite")
        def clear_rewrite() -> str:
            data = dict(session)
            session.clear()
            session.update(data)
            return "ok"

        @app.post("/permanent")
        def permanent() -> str:
            session.permanent = True
            return "ok"

    env = make_env(login=True, config=dict(TIMEOUTS), setup=setup)
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post(f"/fl-login/{alice}")
    start = env.clock.now
    steps = {
        "read": lambda: client.get("/read"),
        "write": lambda: client.post("/write", data={"n": str(env.clock.now)}),
        "relogin": lambda: client.post(f"/login/{alice}"),
        "regenerate": lambda: client.post("/regenerate"),
        "refresh": lambda: client.post("/refresh"),
        "flask_login_same_user": lambda: client.post(f"/fl-login/{alice}"),
        "clear_rewrite": lambda: client.post("/clear-rewrite"),
        "permanent": lambda: client.post("/permanent"),
    }
    while env.clock.now < start + timedelta(hours=2) - timedelta(minutes=20):
        env.clock.advance(minutes=20)
        assert steps[keeper]().status_code == 200
        assert json_of(client.get("/read"))["uid"] == alice
        for s in env.sessions(alice):
            assert t.cast(datetime, s.expires_at) <= start + timedelta(hours=2)
    env.clock.now = start + timedelta(hours=2, seconds=1)
    assert json_of(client.get("/read"))["uid"] is None
    if keeper not in ("relogin", "flask_login_same_user", "refresh"):  # logins are new sessions
        steps[keeper]()
        assert json_of(client.get("/read"))["uid"] is None, (
            "a session outlived the absolute timeout"
        )


def test_the_absolute_timeout_counts_from_the_login_not_the_anonymous_session(
    make_env: MakeEnv,
) -> None:
    """security.md §0: the absolute timeout "counts from created_at: the creation of the
    first session of an uninterrupted link of the browser to the same user"; a login is
    a new link (none → A), so the anonymous time before it does not count."""
    env = make_env(config=dict(TIMEOUTS))
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post("/write", data={"cart": "apples"})
    for _ in range(5):  # 1 h 50 min of anonymous browsing, used every 22 minutes
        env.clock.advance(minutes=22)
        assert client.post("/write", data={"cart": "apples"}).status_code == 200
    client.post(f"/login/{alice}")
    [s] = env.sessions(alice)
    assert s.created_at == env.clock.now
    env.clock.advance(minutes=30)
    assert json_of(client.get("/read"))["uid"] == alice


def test_fresh_login_required_accepts_only_real_authentication(make_env: MakeEnv) -> None:
    """security.md §0: "authenticated_at becomes now only when the app authenticates the
    user in this request ... A view that removes the user key and writes the same user
    back ... authenticates nobody. A login that Flask-Login marks not fresh ... sets it to
    None for a new link and leaves it as it was for the same user." flask-login.md:
    refresh_authentication / confirm_login make it fresh again."""

    def setup(app: Flask) -> None:
        @app.post("/rewrite-same")
        def rewrite_same() -> str:
            uid = session["_user_id"]
            session.clear()
            session["_user_id"] = uid
            return "ok"

        @app.post("/confirm")
        def confirm() -> str:
            confirm_login()
            return "ok"

    env = make_env(login=True, setup=setup)
    app, alice, bob = env.app, env.users[0], env.users[1]
    client = app.test_client()
    assert client.get("/fresh").status_code == 401  # anonymous: refused, not a 500
    client.post(f"/fl-login/{alice}")
    assert client.get("/fresh").status_code == 200
    env.clock.advance(minutes=11)
    assert client.get("/fresh").status_code == 401
    for not_an_authentication in (
        f"/link/_user_id/{alice}",
        "/regenerate",
        "/failed-login",
        "/credentials-changed",
    ):
        client.post(not_an_authentication)
        assert json_of(client.get("/read"))["uid"] == alice
        assert client.get("/fresh").status_code == 401, not_an_authentication
    client.post("/refresh")
    assert client.get("/fresh").status_code == 200
    env.clock.advance(minutes=11)
    client.post("/rewrite-same")  # removes the user key and writes it back: not fresh
    assert client.get("/fresh").status_code == 401
    client.post("/confirm")
    assert client.get("/fresh").status_code == 200
    # Not fresh: a login_user(fresh=False) of the same user, then of another user.
    client.post(f"/fl-login/{alice}?fresh=0")
    assert client.get("/fresh").status_code == 401
    other = app.test_client()
    other.post(f"/fl-login/{bob}?fresh=0")
    assert other.get("/fresh").status_code == 401
    [s] = env.sessions(bob)
    assert s.authenticated_at is None


def test_permanent_cookie_never_outlives_the_stored_session(make_env: MakeEnv) -> None:
    """configuration.md: "A permanent session's cookie expires with the stored session";
    expires_at is "capped by the absolute timeout from created_at"."""

    def setup(app: Flask) -> None:
        @app.post("/permanent")
        def permanent() -> str:
            session.permanent = True
            return "ok"

    env = make_env(
        config=dict(TIMEOUTS, KITSESSION_IDLE_TIMEOUT=timedelta(hours=1, minutes=30)), setup=setup
    )
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post(f"/login/{alice}")
    start = env.clock.now
    env.clock.advance(minutes=45)
    response = client.post("/permanent")
    [header] = session_cookie_headers(response)
    expires = t.cast(re.Match[str], re.search(r"Expires=([^;]+)", header)).group(1)
    from email.utils import parsedate_to_datetime

    assert parsedate_to_datetime(expires) <= start + timedelta(hours=2)
    [s] = env.sessions(alice)
    assert abs(parsedate_to_datetime(expires) - t.cast(datetime, s.expires_at)) <= timedelta(
        seconds=1
    )


@pytest.mark.parametrize("how", ["user_agent_changed", "magic_link", "clear_and_rewrite"])
def test_refresh_authentication_lets_a_flask_login_user_through(
    make_env: MakeEnv, how: str
) -> None:
    """flask-login.md, Sensitive pages: fresh_login_required "lets through only a session
    whose user logged in, or re-entered their password (refresh_authentication), less than
    max_age ago"; its docstring: "After the password check there, call
    refresh_authentication()"; refresh_authentication's docstring: "authenticated_at becomes
    now, so fresh_login_required lets them through". lifecycle.md: confirm_login() "counts
    as" refresh_authentication().

    In a Flask-Login app (default "basic" session protection), a user whose browser
    identifier changed (a new user agent after a browser update, a new address), who came in
    by a magic link (create_session + set_session_cookie), or whose session a view cleared
    and rewrote, re-enters their password and the app calls refresh_authentication(), as
    documented: they must now pass fresh_login_required."""

    def setup(app: Flask) -> None:
        @app.get("/magic/<int:uid>")
        def magic(uid: int) -> ResponseReturnValue:
            made = create_session(uid)
            return set_session_cookie(app.make_response("welcome"), made)

        @app.post("/rewrite-same")
        def rewrite_same() -> str:
            uid = session["_user_id"]
            session.clear()
            session["_user_id"] = uid
            return "ok"

    env = make_env(login=True, setup=setup)
    app, alice = env.app, env.users[0]
    client = app.test_client()
    headers = {"User-Agent": "Browser/1.0"}
    if how == "magic_link":
        assert client.get(f"/magic/{alice}", headers=headers).status_code == 200
    else:
        client.post(f"/fl-login/{alice}", headers=headers)
        assert client.get("/fresh", headers=headers).status_code == 200
        if how == "user_agent_changed":
            headers = {"User-Agent": "Browser/2.0"}
        else:
            client.post("/rewrite-same", headers=headers)
    assert json_of(client.get("/read", headers=headers))["flask_login_user"] == str(alice)
    # The reauthentication view checked the password and calls refresh_authentication().
    assert client.post("/refresh", headers=headers).status_code == 200
    [stored] = env.sessions(alice)
    assert stored.authenticated_at == env.clock.now
    assert client.get("/fresh", headers=headers).status_code == 200, (
        "refresh_authentication() did not let the user through fresh_login_required: "
        f"session data {json_of(client.get('/read', headers=headers))['data']}"
    )


# --------------------------------------------------------------------------
# 5. Key rotation; hostile cookies; store outages.
# --------------------------------------------------------------------------


def test_key_rotation_keeps_sessions_resigns_them_and_removal_ends_them(make_env: MakeEnv) -> None:
    """configuration.md / security.md §5: "Rotating keys through SECRET_KEY_FALLBACKS keeps
    sessions valid; removing a key invalidates the cookies signed only with it. A cookie
    that arrives signed with an old key is signed again with the current one, in the same
    response." """
    env = make_env()
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post(f"/login/{alice}")
    old_signed = t.cast(str, cookie(client))
    other = app.test_client()
    other.post(f"/login/{env.users[1]}")
    dormant = cookie(other)
    app.config["SECRET_KEY"] = "review7-new-key"
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET]
    response = client.get("/read")
    assert json_of(response)["uid"] == alice
    [header] = session_cookie_headers(response)
    resigned = header.split(";", 1)[0].split("=", 1)[1]
    assert token_of(resigned) == token_of(old_signed) and resigned != old_signed
    # A write request with an old-key cookie keeps the user too.
    assert with_cookie(app, dormant).post("/write", data={"w": "1"}).status_code == 200
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert json_of(with_cookie(app, resigned).get("/read"))["uid"] == alice
    assert json_of(with_cookie(app, old_signed).get("/read"))["uid"] is None
    # A cookie the app cannot verify is left alone by a read.
    assert session_cookie_headers(with_cookie(app, old_signed).get("/read")) == []


HOSTILE = [
    "",
    ".",
    "..",
    "a" * 43 + ".",
    "." + "a" * 27,
    "x" * 300,
    "x" * 5000,
    "\u00e9" * 10,
    "null",
    "undefined",
    "{}",
    '"quoted"',
    "%00",
    "a\tb",
    "YQ==.abc",
    "a" * 43 + "." + "b" * 27,
    "==." * 20,
    "a.b.c.d.e",
    "a" * 42 + "!." + "b" * 27,
    "a" * 44 + "." + "b" * 27,
    "../../etc/passwd",
    "'; DROP TABLE session; --",
    "*",
    "%",
    "_" * 43 + "." + "_" * 27,
    "\u2028\u2029",
    "\ud800abc",
]


@pytest.mark.parametrize("sign", [True, False])
def test_hostile_cookies_give_a_fresh_anonymous_session(make_env: MakeEnv, sign: bool) -> None:
    """README: "a bad cookie gives a fresh anonymous session, never an error";
    security.md §1: "Whatever a client sends as its session cookie, it gets a 200 and
    either a fresh anonymous session or the session whose whole token it sent. Never a
    500, never someone else's session" (and nothing a stranger sends writes anything)."""
    env = make_env(config={"KITSESSION_SIGN_COOKIE": sign})
    app, alice = env.app, env.users[0]
    victim = app.test_client()
    victim.post(f"/login/{alice}")
    good = t.cast(str, cookie(victim))
    values = list(HOSTILE)
    values += [
        good[:-1],
        good + "x",
        good.upper(),
        good[1:],
        token_of(good),
        token_of(good) + "." + "A" * 27,
        good.replace("-", "+").replace("_", "/"),
        good + "; session=" + good,
        good[: len(good) // 2],
    ]
    if sign:
        values.remove(token_of(good))
    for value in values:
        environ = {"HTTP_COOKIE": "session=" + value}
        try:
            environ["HTTP_COOKIE"].encode("latin-1")
        except UnicodeEncodeError:
            environ["HTTP_COOKIE"] = (
                ("session=" + value).encode("utf-8", "surrogatepass").decode("latin-1")
            )
        response = app.test_client().get("/read", environ_overrides=environ)
        assert response.status_code == 200, value
        assert json_of(response)["uid"] is None, value
        assert session_cookie_headers(response) == [], value
        response = app.test_client().post("/write", data={"k": "v"}, environ_overrides=environ)
        assert response.status_code == 200, value
    # Only the 2 * len(values) anonymous writes were stored, plus Alice's session.
    assert env.count() == 1 + len(values)
    assert json_of(victim.get("/read"))["uid"] == alice


@pytest.mark.parametrize("kind", ["sql", "redis"])
def test_an_unreachable_store_is_a_clean_503(tmp_path: Path, kind: str) -> None:
    """security.md §3: "While the store is unreachable, a request that needs it gets a
    clean 503, through the app's own handler for 503, never a 500 or a traceback. The
    visitor's cookie is kept. A visitor without a cookie who writes nothing is served as
    usual." README: "a bad cookie gives a fresh anonymous session, never an error"."""
    app = Flask("review7_down")
    app.config["SECRET_KEY"] = SECRET
    if kind == "sql":
        app.config["KITSESSION_DATABASE_URL"] = "postgresql+psycopg://postgres@127.0.0.1:1/test"
        app.config["KITSESSION_ENGINE_OPTIONS"] = {"connect_args": {"connect_timeout": 2}}
        KitSession(app)
    else:
        engine = sa.create_engine(f"sqlite:///{tmp_path}/users.db")
        user_table.create(engine)
        users = SQLAlchemyStore(engine)
        KitSession(
            app,
            store=RedisStore.from_url(
                "redis://127.0.0.1:1/0",
                prefix="review7:down:",
                user_loader=users.load_user,
                socket_connect_timeout=2,
            ),
        )

    @app.errorhandler(503)
    def unavailable(error: Exception) -> tuple[str, int]:
        return "custom 503 page", 503

    @app.get("/plain")
    def plain() -> str:
        return "hello"

    @app.post("/write")
    def write() -> str:
        session["x"] = "1"
        return "written"

    # A cookie signed with this app's key (issued by a twin app on a working store).
    twin = Flask("review7_twin")
    twin.config["SECRET_KEY"] = SECRET
    KitSession(twin, store=MemoryStore())

    @twin.post("/write")
    def twin_write() -> str:
        session["x"] = "1"
        return "written"

    issuer = twin.test_client()
    issuer.post("/write")
    signed = cookie(issuer)
    client = app.test_client()
    assert client.get("/plain").status_code == 200
    response = client.post("/write")
    assert response.status_code == 503 and response.data == b"custom 503 page"
    for method in ("get", "post"):
        response = getattr(with_cookie(app, signed), method)(
            "/plain" if method == "get" else "/write"
        )
        assert response.status_code == 503 and response.data == b"custom 503 page"
        assert session_cookie_headers(response) == [], "the visitor's cookie was not kept"
    # A bad cookie needs no store: never an error other than a clean 503.
    for bad in ("garbage", "a.b", "x" * 400):
        response = with_cookie(app, bad).get("/plain")
        assert response.status_code in (200, 503), bad
        assert session_cookie_headers(response) == []


# --------------------------------------------------------------------------
# 6. Data round-trips, request metadata, unknown users.
# --------------------------------------------------------------------------


def _tricky_values() -> dict[str, t.Any]:
    from zoneinfo import ZoneInfo

    import markupsafe

    ny = ZoneInfo("America/New_York")
    values = {
        "nul": "a\x00b",
        "surrogate": "x\ud800y",
        "pair": "\ud83d\ude00",
        "emoji": "\U0001f600",
        "neg_zero": -0.0,
        "big_float": 1e16,
        "tiny": 5e-324,
        "max_float": 1.7976931348623157e308,
        "digits": 1234567890123456.7,
        "point_one": 0.1,
        "big_int": 2**80,
        "neg_big": -(2**70),
        "tuple": (1, (2, [3, (4,)])),
        "bytes": b"\x00\xff",
        "uuid": uuid.UUID(int=7),
        "markup": markupsafe.Markup("<b>x</b>"),
        "naive": datetime(2020, 1, 2, 3, 4, 5, 678901),
        "aware": datetime(2020, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        "odd_offset": datetime(2020, 1, 2, tzinfo=timezone(timedelta(seconds=-3601))),
        "fold": datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=ny),
        "fold0": datetime(2021, 11, 7, 1, 30, fold=0, tzinfo=ny),
        "far": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=ZoneInfo("Pacific/Kiritimati")),
        "early": datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo")),
        "tag_t": {" t": [1, 2]},
        "tag_di": {" di": {" t__": 1}},
        "tag_d": {" d": "x"},
        "tag_kk": {" kk": 1},
        "tag_nested": [{" b": "AA=="}, {" u": "x"}, {" m": 1}],
        "nul_key": {"a\x00": 1, "b": {"\ud800": 2}},
        "empty_key": {"": {"": ""}},
        "keys": {"__proto__": 1, "$where": 2, "a.b": 3, " t__": 4},
        "ls": "\u2028\u2029",
        "bom": "\ufeffx",
        "long": "é" * 5000,
        "deep_dict": {"a": {"b": {"c": {"d": [[[[[[[{"e": (1,)}]]]]]]]}}}},
    }
    return values


def test_data_round_trips_exactly_on_every_backend(make_env: MakeEnv) -> None:
    """session-data.md: "a value is either stored and read back exactly by the next
    request (the same types all the way down, the same text, the same keys) or refused
    where it is set, with SessionDataError"."""
    values = _tricky_values()
    refused: dict[str, str] = {}
    results: dict[str, t.Any] = {}

    def setup(app: Flask) -> None:
        @app.post("/put/<name>")
        def put(name: str) -> str:
            try:
                session[name] = values[name]
            except SessionDataError as exc:
                refused[name] = str(exc)
            return "ok"

        @app.get("/get/<name>")
        def get(name: str) -> str:
            results[name] = session.get(name, "<missing>")
            return "ok"

    env = make_env(setup=setup)
    client = env.app.test_client()
    problems: list[str] = []
    for name in values:
        response = client.post(f"/put/{name}")
        if response.status_code != 200:
            problems.append(f"{name}: {response.status_code} on save")
            continue
        assert client.get(f"/get/{name}").status_code == 200
        if name in refused:
            continue
        got, want = results[name], values[name]

        def same(a: t.Any, b: t.Any) -> bool:
            if type(a) is not type(b):
                return False
            if isinstance(a, float):
                return a == b and math.copysign(1, a) == math.copysign(1, b)
            if isinstance(a, (list, tuple)):
                return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=False))
            if isinstance(a, dict):
                return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
            if isinstance(a, datetime):
                return t.cast(
                    bool,
                    a == b
                    and a.tzinfo == b.tzinfo
                    and a.fold == b.fold
                    and a.replace(tzinfo=None) == b.replace(tzinfo=None),
                )
            return t.cast(bool, a == b)  # (== with an Any operand is Any to mypy)

        if not same(got, want):
            problems.append(f"{name}: wrote {want!r}, read {got!r}")
    assert problems == []


def test_zone_without_a_name_is_refused_where_set_or_round_trips(
    make_env: MakeEnv, tmp_path: Path
) -> None:
    """session-data.md: datetimes "with a zoneinfo zone" are stored as "[wall time, zone,
    fold]" and read back with "the same zone"; anything else is "refused where it is
    set". A ZoneInfo made from a file has no key to store."""
    import zoneinfo
    from zoneinfo import ZoneInfo

    path: str | None = None
    for base in zoneinfo.TZPATH:
        candidate = f"{base}/Europe/Paris"
        try:
            with open(candidate, "rb"):
                path = candidate
                break
        except OSError:
            continue
    if path is None:
        pytest.skip("no tz database file")
    with open(path, "rb") as f:
        nameless = ZoneInfo.from_file(f)
    value = datetime(2022, 3, 27, 3, 30, tzinfo=nameless)
    outcome: dict[str, t.Any] = {}

    def setup(app: Flask) -> None:
        @app.post("/put")
        def put() -> str:
            try:
                session["when"] = value
                outcome["set"] = True
            except SessionDataError:
                outcome["refused"] = True
            return "ok"

        @app.get("/get")
        def get() -> str:
            outcome["got"] = session.get("when")
            return "ok"

    env = make_env(setup=setup, config={"PROPAGATE_EXCEPTIONS": False})
    client = env.app.test_client()
    assert client.post("/put").status_code == 200
    if outcome.get("refused"):
        return
    assert client.get("/get").status_code == 200
    got = outcome["got"]
    assert got == value and got.utcoffset() == value.utcoffset()


REMOTE_ADDRS = [
    "fe80::1%eth0",
    "[fe80::1%25eth0]:4711",
    "::ffff:10.0.0.1",
    "unknown",
    "",
    "\x00",
    "é" * 60,
    "1.2.3.4, 5.6.7.8",
    "x" * 500,
    "[::1]",
    "::1:80",
]
USER_AGENTS = ["\x00" * 10, "é" * 600, "\x7f\x01", "A" * 10000, "", "ÿ" * 513]


def test_client_address_and_user_agent_never_fail_a_request(make_env: MakeEnv) -> None:
    """security.md §6: "The client address and user agent never fail a request." """
    env = make_env()
    app, alice = env.app, env.users[0]
    for addr in REMOTE_ADDRS:
        client = app.test_client()
        response = client.post(f"/login/{alice}", environ_overrides={"REMOTE_ADDR": addr})
        assert response.status_code == 200, addr
        assert json_of(client.get("/read", environ_overrides={"REMOTE_ADDR": addr}))["uid"] == alice
    for agent in USER_AGENTS:
        client = app.test_client()
        response = client.post(f"/login/{alice}", environ_overrides={"HTTP_USER_AGENT": agent})
        assert response.status_code == 200, agent
        assert json_of(client.get("/read"))["uid"] == alice


@pytest.mark.parametrize("bad_id", [999999, 2**40, "abc", -1])
def test_an_unknown_user_changes_nothing(make_env: MakeEnv, bad_id: int | str) -> None:
    """security.md §6: "A user id that ... no user has exactly, is refused with
    UnknownUserError (never a 503 or an OverflowError), when the session is saved, and
    nothing is written: neither the session, nor the change a login was making to the
    visitor's previous session." (Memory and Redis: with a user_loader.)"""
    caught: list[Exception] = []

    def setup(app: Flask) -> None:
        @app.post("/bad-login")
        @with_new_session
        def bad_login() -> str:
            session["user_id"] = bad_id
            session["cart"] = "new"
            return "ok"

        @app.errorhandler(UnknownUserError)
        def unknown(error: UnknownUserError) -> tuple[str, int]:
            caught.append(error)
            return "unknown user", 400

    env = make_env(setup=setup)
    app = env.app
    client = app.test_client()
    client.post("/write", data={"cart": "old"})
    before = cookie(client)
    n = env.count()
    try:
        response = client.post("/bad-login")
    except UnknownUserError as exc:  # raised by the save, after the view
        caught.append(exc)
    except Exception as exc:  # pragma: no cover - the promise is broken
        pytest.fail(f"not an UnknownUserError: {exc!r}")
    else:
        assert caught, f"not an UnknownUserError: {response.status_code}"
    assert str(bad_id) not in str(caught[0])
    assert cookie(client) == before
    assert env.count() == n
    seen = json_of(client.get("/read"))
    assert seen["uid"] is None and seen["data"]["cart"] == "'old'"


# --------------------------------------------------------------------------
# 7. Signals, testing helpers, CLI.
# --------------------------------------------------------------------------


def test_signals_tell_facts_in_order(make_env: MakeEnv) -> None:
    """signals.md: "A login sends session_created first, then session_authenticated";
    replaced is "the visitor's session before a login"; logout sends session_revoked with
    LOGOUT; sign-out-others "once per call with the count"; "a remove_all_sessions_for_user
    that found no other session sends nothing"; "A request that ends in a server error
    (5xx) saves nothing, so it tells nothing"."""

    def setup(app: Flask) -> None:
        @app.post("/fail-login/<int:uid>")
        @with_new_session
        def fail_login(uid: int) -> tuple[str, int]:
            session["user_id"] = uid
            return "broken", 500

    env = make_env(setup=setup)
    app, alice = env.app, env.users[0]
    events: list[tuple[str, dict[str, t.Any]]] = []

    def recorder(name: str) -> t.Callable[..., None]:
        def receive(sender: Flask, **kw: t.Any) -> None:
            assert sender is app
            events.append((name, kw))

        return receive

    receivers = {
        name: recorder(name)
        for name in (
            "session_created",
            "session_authenticated",
            "session_revoked",
            "session_rotated",
        )
    }
    for name, fn in receivers.items():
        getattr(signals, name).connect(fn, app)
    try:
        laptop, phone = app.test_client(), app.test_client()
        laptop.post("/write", data={"x": "1"})
        anon_id = sid(t.cast(str, cookie(laptop)))
        events.clear()
        laptop.post(f"/fail-login/{alice}")
        assert events == []
        laptop.post(f"/login/{alice}")
        assert [e[0] for e in events] == ["session_created", "session_authenticated"]
        assert events[0][1]["replaced"] == anon_id
        assert events[1][1]["user_id"] == alice and events[1][1]["fresh"] is True
        events.clear()
        laptop.post("/sign-out-others")
        assert events == []
        phone.post(f"/login/{alice}")
        events.clear()
        laptop.post("/sign-out-others")
        assert [(e[0], e[1]["reason"], e[1]["count"]) for e in events] == [
            ("session_revoked", signals.SIGN_OUT_OTHERS, 1)
        ]
        events.clear()
        laptop.post("/regenerate")
        assert [e[0] for e in events] == ["session_rotated"]
        events.clear()
        laptop.post("/logout")
        assert [(e[0], e[1]["reason"], e[1]["user_id"]) for e in events] == [
            ("session_revoked", signals.LOGOUT, alice)
        ]
    finally:
        for name, fn in receivers.items():
            getattr(signals, name).disconnect(fn, app)


def test_testing_helpers_log_in_and_revoke(make_env: MakeEnv) -> None:
    """testing.md: login() "stores a real session ... Your app then sees what it sees after
    one of its own logins"; with Flask-Login "current_user is the user, login_fresh() is
    true (unless fresh=False)"; session_of returns None when the cookie is "tampered with";
    revoke(): "its next request is anonymous" and it "returns whether there was a session
    to delete"."""
    from flask_kitsession.testing import KitSessionClient
    from flask_kitsession.testing import login
    from flask_kitsession.testing import revoke
    from flask_kitsession.testing import session_of

    env = make_env(login=True)
    app, alice, bob = env.app, env.users[0], env.users[1]
    client = app.test_client()
    made = login(client, alice)
    assert t.cast(ServerSession, session_of(client)).id == made.id
    seen = json_of(client.get("/read"))
    assert seen["uid"] == alice and seen["flask_login_user"] == str(alice)
    assert client.get("/fresh").status_code == 200
    assert revoke(client) is True
    assert json_of(client.get("/read"))["uid"] is None
    assert revoke(client) is False
    stale = app.test_client()
    login(stale, bob, fresh=False)
    assert json_of(stale.get("/read"))["flask_login_user"] == str(bob)
    assert stale.get("/fresh").status_code == 401
    value = t.cast(str, cookie(stale))
    stale.set_cookie("session", ("A" if value[5] != "A" else "B").join([value[:5], value[6:]]))
    assert session_of(stale) is None
    app.test_client_class = KitSessionClient
    signed_in = t.cast(KitSessionClient, app.test_client(user=alice))
    assert json_of(signed_in.get("/read"))["flask_login_user"] == str(alice)
    assert t.cast(ServerSession, signed_in.server_session).user_id == alice
    signed_in.revoke()
    assert json_of(signed_in.get("/read"))["uid"] is None
    if env.backend not in ("memory", "redis"):
        with pytest.raises(UnknownUserError):
            login(app.test_client(), 987654)


def test_cli_revoke_and_list(make_env: MakeEnv) -> None:
    """cli.md: "revoke --session takes the whole id or its first 8 or more characters ...
    and refuses a prefix that two sessions share. revoke --user ID signs a user out
    everywhere." "list and revoke work on every store." """
    env = make_env()
    app, alice, bob = env.app, env.users[0], env.users[1]
    a1, a2, b1 = app.test_client(), app.test_client(), app.test_client()
    for c, u in ((a1, alice), (a2, alice), (b1, bob)):
        c.post(f"/login/{u}")
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["kitsession", "list", "--full-ids"])
    assert listed.exit_code == 0 and sid(t.cast(str, cookie(a1))) in listed.output
    for bad in (sid(t.cast(str, cookie(a1)))[:7], "%%%%%%%%", "________", "********", "        "):
        result = runner.invoke(args=["kitsession", "revoke", "--session", bad])
        assert result.exit_code != 0, bad
    assert env.count() == 3
    result = runner.invoke(
        args=["kitsession", "revoke", "--session", sid(t.cast(str, cookie(a1)))[:8]]
    )
    assert result.exit_code == 0, result.output
    assert json_of(a1.get("/read"))["uid"] is None and json_of(a2.get("/read"))["uid"] == alice
    result = runner.invoke(args=["kitsession", "revoke", "--user", str(bob)])
    assert result.exit_code == 0, result.output
    assert json_of(b1.get("/read"))["uid"] is None and json_of(a2.get("/read"))["uid"] == alice


# --------------------------------------------------------------------------
# 8. Flask-Login + Flask-SQLAlchemy apps (SQL backends).
# --------------------------------------------------------------------------

SQL_BACKENDS = ["sqlite", "postgresql", "mariadb"]


class FsaApp(Flask):
    """Typing only: _fsa_app's app, a plain Flask app that carries its Flask-SQLAlchemy
    ``db`` and its user model ``Member`` as attributes (cast there, never instantiated)."""

    db: SQLAlchemy
    Member: t.Any


def _fsa_app(backend: str, tmp_path: Path, request: pytest.FixtureRequest, key_type: str) -> FsaApp:
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy

    app = t.cast(FsaApp, Flask(f"review7_fsa_{backend}"))
    app.config["SECRET_KEY"] = SECRET
    app.config["TESTING"] = True
    if backend == "sqlite":
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path}/fsa.db"
    elif backend == "postgresql":
        schema = request.getfixturevalue("r7_fsa_pg_schema")
        app.config["SQLALCHEMY_DATABASE_URI"] = PG_URL
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
            "connect_args": {"options": f"-csearch_path={schema}"}
        }
    else:
        app.config["SQLALCHEMY_DATABASE_URI"] = (
            f"{MARIA_URL}/{request.getfixturevalue('r7_fsa_maria_db')}"
        )
    db = SQLAlchemy(app)

    class Member(db.Model, UserMixin):  # type: ignore[name-defined, misc]
        __tablename__ = "review7_member"
        id = db.Column(db.String(40) if key_type == "str" else db.Integer, primary_key=True)
        name = db.Column(db.String(40))

    kit = KitSession(app, db=db, user_model=Member)
    lm = LoginManager(app)
    kit.init_login_manager(lm)
    with app.app_context():
        db.drop_all()
        db.create_all()

    @app.post("/login/<uid>")
    def login(uid: str) -> str:
        key = uid if key_type == "str" else int(uid)
        login_user(db.session.get(Member, key))
        return "ok"

    @app.get("/me")
    def me() -> Response:
        return jsonify(
            uid=current_session.user_id,
            user=current_user.get_id() if current_user.is_authenticated else None,
            cls=type(current_user._get_current_object()).__name__,
        )

    app.db, app.Member = db, Member
    return app


@pytest.fixture
def fsa_app(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[t.Callable[..., FsaApp]]:
    apps: list[FsaApp] = []

    def make(backend: str, key_type: str = "int") -> FsaApp:
        app = _fsa_app(backend, tmp_path, request, key_type)
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            app.db.session.remove()
            app.db.drop_all()
            app.db.engine.dispose()


@pytest.mark.parametrize("sql_backend", SQL_BACKENDS)
def test_only_the_exact_string_id_names_a_user(
    fsa_app: t.Callable[..., FsaApp], sql_backend: str
) -> None:
    """session-data.md: "Only the exact id links a user, on every database: MariaDB's
    collations find "user-1" for "USER-1" and "user-1 " ..." and "Lookups by an id no user
    can have (load_user, delete_all_for_user, iterate) find nothing." So listing or signing
    out "USER-1" or "user-1 " must neither list nor sign out user-1, on every database."""
    app = fsa_app(sql_backend, "str")
    with app.app_context():
        app.db.session.add_all(
            [app.Member(id="user-1", name="a"), app.Member(id="user-2", name="b")]
        )
        app.db.session.commit()
    client = app.test_client()
    client.post("/login/user-1")
    assert json_of(client.get("/me"))["uid"] == "user-1"
    with app.app_context():
        for other in ("USER-1", "user-1 ", "User-1"):
            assert get_sessions_for_user(other) == [], f"{other!r} lists user-1's devices"
        assert remove_all_sessions_for_user("USER-1 ") == 0, "signed out user-1 by a lookalike id"
    assert json_of(client.get("/me"))["uid"] == "user-1"


@pytest.mark.parametrize("sql_backend", SQL_BACKENDS)
def test_deleting_a_user_through_the_orm_signs_them_out_and_a_reused_id_inherits_nothing(
    fsa_app: t.Callable[..., FsaApp], sql_backend: str
) -> None:
    """security.md §8: "Deleting a user signs out their sessions, and a later user given the
    same id (SQLite reuses the highest id) inherits none." flask-login.md: current_user "is an
    instance of your class"."""
    app = fsa_app(sql_backend)
    with app.app_context():
        app.db.session.add_all([app.Member(id=1, name="a"), app.Member(id=2, name="b")])
        app.db.session.commit()
    client = app.test_client()
    client.post("/login/2")
    seen = json_of(client.get("/me"))
    assert seen == {"uid": 2, "user": "2", "cls": "Member"}
    with app.app_context():
        app.db.session.delete(app.db.session.get(app.Member, 2))
        app.db.session.commit()
        app.db.session.add(app.Member(id=2, name="mallory"))
        app.db.session.commit()
    assert json_of(client.get("/me"))["user"] is None
    with app.app_context():
        assert get_sessions_for_user(2) == []


def test_redis_a_user_the_loader_no_longer_finds_counts_as_gone(
    make_env: MakeEnv, backend: str
) -> None:
    """redis.md: "A session whose user the loader no longer finds counts as gone, as ON
    DELETE CASCADE would make it in SQL". On SQL stores deleting the user row signs them
    out (configuration.md: "Deleting a user deletes their sessions").

    (Maintainers: MemoryStore now promises it too, in its docstring; no skip.)"""
    env = make_env(login=True)
    app, alice = env.app, env.users[0]
    client = app.test_client()
    client.post(f"/login/{alice}")
    with env.engine.begin() as conn:
        conn.execute(user_table.delete().where(user_table.c.id == alice))
    seen = client.get("/read")
    assert seen.status_code == 200
    assert json_of(seen)["uid"] is None and json_of(seen)["flask_login_user"] is None


# --------------------------------------------------------------------------
# 9. A stateful model: browsers, users, logins, logouts, sign-out-others, clock.
# --------------------------------------------------------------------------

IDLE, ABSOLUTE, FRESH = timedelta(minutes=65), timedelta(minutes=185), timedelta(minutes=10)


class Browser:
    def __init__(self) -> None:
        self.alive = False
        self.user: t.Any = None
        self.data: dict[str, t.Any] = {}
        self.created: datetime | None = None
        self.last_use: datetime | None = None
        self.auth: datetime | None = None
        self.cookie: str | None = None
        self.dead: list[str] = []


def run_model(make_plain_env: t.Callable[[], Env], max_examples: int) -> None:
    """The promises of security.md §0/§2/§4 as a reference model; see the test below."""

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.env = make_plain_env()
            self.app = self.env.app
            self.clock = self.env.clock
            self.clients = [self.app.test_client() for _ in range(3)]
            self.model = [Browser() for _ in range(3)]
            self.counter = 0

        def teardown(self) -> None:
            self.env.close()

        # -- the model's clock rules --------------------------------------
        def expire(self) -> None:
            now = self.clock.now
            for m in self.model:
                if m.alive and not (
                    now < t.cast(datetime, m.last_use) + IDLE
                    and now < t.cast(datetime, m.created) + ABSOLUTE
                ):
                    self.kill(m)

        def kill(self, m: Browser) -> None:
            m.alive, m.user, m.data, m.created, m.auth, m.last_use = (
                False,
                None,
                {},
                None,
                None,
                None,
            )

        def use(self, m: Browser) -> None:
            if m.alive:
                m.last_use = self.clock.now

        def new_session(
            self, m: Browser, user: t.Any, data: dict[str, t.Any], keep_created: bool = False
        ) -> None:
            now = self.clock.now
            created = m.created if keep_created else now
            m.alive, m.user, m.data, m.created, m.last_use = True, user, data, created, now

        def after(self, b: int, response: TestResponse, token_changes: bool | None = None) -> None:
            assert response.status_code < 500, response.data
            m = self.model[b]
            old = m.cookie
            new = cookie(self.clients[b])
            if token_changes is True and old is not None:
                assert new is None or token_of(new) != token_of(old), "token kept"
            if token_changes is False and old is not None and new is not None:
                assert token_of(new) == token_of(old), "token changed"
            if old is not None and (new is None or token_of(new) != token_of(old)):
                m.dead.append(old)
                m.dead = m.dead[-3:]
            m.cookie = new

        # -- steps --------------------------------------------------------
        @rule(b=st.integers(0, 2))
        def anonymous_write(self, b: int) -> None:
            self.expire()
            m = self.model[b]
            self.counter += 1
            value = str(self.counter)
            response = self.clients[b].post("/write", data={"n": value})
            if m.alive:
                m.data = {**m.data, "n": value}
                self.use(m)
                self.after(b, response, token_changes=False)
            else:
                self.new_session(m, None, {"n": value})
                m.auth = None
                self.after(b, response)

        @rule(b=st.integers(0, 2), u=st.integers(0, 1), plain=st.booleans())
        def login(self, b: int, u: int, plain: bool) -> None:
            self.expire()
            m = self.model[b]
            uid = self.env.users[u]
            if plain:
                response = self.clients[b].post(f"/link/user_id/{uid}")
            else:
                response = self.clients[b].post(f"/login/{uid}")
            same = m.alive and m.user == uid
            if plain and same:
                self.use(m)  # not a login: nothing changes
                self.after(b, response)
                return
            carried = dict(m.data) if (not m.alive or m.user is None or same) else {}
            if not m.alive:
                carried = {}
            self.new_session(m, uid, carried, keep_created=same)
            m.auth = self.clock.now
            self.after(b, response, token_changes=True)

        @rule(b=st.integers(0, 2))
        def logout(self, b: int) -> None:
            self.expire()
            response = self.clients[b].post("/logout")
            self.kill(self.model[b])
            self.after(b, response, token_changes=True)

        @rule(b=st.integers(0, 2))
        def sign_out_others(self, b: int) -> None:
            self.expire()
            m = self.model[b]
            response = self.clients[b].post("/sign-out-others")
            expected = 0
            if m.alive and m.user is not None:
                for i, other in enumerate(self.model):
                    if i != b and other.alive and other.user == m.user:
                        self.kill(other)
                        expected += 1
            self.use(m)
            # Expired sessions that are still stored may be counted too (unclear, see report).
            assert int(response.data) >= expected
            self.after(b, response, token_changes=False)

        @rule(b=st.integers(0, 2))
        def regenerate(self, b: int) -> None:
            self.expire()
            m = self.model[b]
            response = self.clients[b].post("/regenerate")
            self.use(m)
            self.after(b, response, token_changes=m.alive or None)

        @rule(b=st.integers(0, 2))
        def refresh_or_credentials_changed(self, b: int) -> None:
            self.expire()
            m = self.model[b]
            if not (m.alive and m.user is not None):
                return
            if self.counter % 2:
                response = self.clients[b].post("/refresh")
                m.auth = self.clock.now
            else:
                response = self.clients[b].post("/credentials-changed")
                for i, other in enumerate(self.model):
                    if i != b and other.alive and other.user == m.user:
                        self.kill(other)
            self.counter += 1
            self.use(m)
            self.after(b, response, token_changes=True)

        @rule(minutes=st.sampled_from([20, 20, 70]))
        def time_passes(self, minutes: int) -> None:
            self.clock.advance(minutes=minutes)

        # -- what must hold after every step ------------------------------
        @invariant()
        def browsers_see_the_model(self) -> None:
            self.expire()
            for b, (client, m) in enumerate(zip(self.clients, self.model, strict=False)):
                seen = json_of(client.get("/read"))
                assert seen["uid"] == m.user, (b, seen, vars(m))
                data = {
                    k: v
                    for k, v in seen["data"].items()
                    if k not in ("user_id", "_fresh", "_id", "_flashes")
                }
                assert data == {k: repr(v) for k, v in m.data.items()}, (b, seen, vars(m))
                fresh = client.get("/fresh").status_code
                want = (
                    200
                    if (
                        m.user is not None
                        and m.auth is not None
                        and self.clock.now - m.auth < FRESH
                    )
                    else 401
                )
                assert fresh == want, (b, fresh, vars(m))
                self.use(m)

        @invariant()
        def stored_sessions_are_the_models(self) -> None:
            for u in self.env.users[:2]:
                stored = sorted(s.id for s in self.env.sessions(u))
                want = sorted(
                    sid(t.cast(str, m.cookie)) for m in self.model if m.alive and m.user == u
                )
                assert stored == want, ("user", u, stored, want)
            for m in self.model:
                if m.alive and m.user is not None:
                    [s] = [
                        s for s in self.env.sessions(m.user) if s.id == sid(t.cast(str, m.cookie))
                    ]
                    assert s.created_at == m.created
                    assert t.cast(datetime, s.expires_at) <= t.cast(datetime, m.created) + ABSOLUTE

        @invariant()
        def dead_cookies_are_anonymous(self) -> None:
            for m in self.model:
                for value in m.dead:
                    if m.cookie is not None and token_of(value) == token_of(m.cookie):
                        continue
                    seen = json_of(with_cookie(self.app, value).get("/read"))
                    assert seen["uid"] is None and seen["data"] == {}, "a dead cookie lives"

    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(
        Machine,
        settings=hsettings(
            max_examples=max_examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=False,
        ),
    )


def test_the_lifecycle_model_holds(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A Hypothesis state machine against a reference model of security.md §0, §2, §4 and
    lifecycle.md, with KITSESSION_CARRY_OVER_KEYS = "*": three browsers, two users,
    @with_new_session logins and plain-view links, @with_delete_session logouts,
    sign-out-others, regenerate(), and a clock crossing the idle (65 min) and absolute
    (185 min) timeouts. It checks after every step: each browser's user and data; that
    "the token changes whenever the linked user changes" and not on ordinary requests; the
    stored sessions of every user are the model's ("one browser, one stored session");
    created_at ("counts from ... the first session of an uninterrupted link of the browser
    to the same user") and that no expiry passes the absolute timeout; fresh_login_required;
    and that ended sessions' cookies are anonymous."""
    counter = iter(range(10**6))

    def make_plain_env() -> Env:
        path = tmp_path / f"m{next(counter)}"
        path.mkdir()
        return Env(
            backend,
            path,
            request,
            config={
                "KITSESSION_IDLE_TIMEOUT": IDLE,
                "KITSESSION_ABSOLUTE_TIMEOUT": ABSOLUTE,
                "KITSESSION_TOUCH_INTERVAL": timedelta(seconds=60),
                "KITSESSION_CARRY_OVER_KEYS": "*",
            },
        )

    run_model(make_plain_env, max_examples=12)
