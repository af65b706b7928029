"""Review 10: black-box attacks on flask-kitsession's documented promises.

Written from the docs only (README.md, docs/*.md, docs/api.rst, help()),
never from the library's source or its other tests. Each test quotes the
sentence it checks. Backends: the memory store, SQLite (a file in tmp),
PostgreSQL, MariaDB and Redis (users in SQLite); a server that is not there
is skipped.

Run: .venv/bin/python -m pytest -p no:cacheprovider tests/test_review10_attacks.py -q
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import flash
from flask import Flask
from flask import get_flashed_messages
from flask import jsonify
from flask import make_response
from flask import request
from flask import session
from flask_login import confirm_login
from flask_login import current_user
from flask_login import fresh_login_required as fl_fresh_login_required
from flask_login import login_fresh
from flask_login import login_user
from flask_login import LoginManager
from flask_login import logout_user
from flask_login import UserMixin

import flask_kitsession
from flask_kitsession import create_session
from flask_kitsession import current_session
from flask_kitsession import fresh_login_required
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import migrate
from flask_kitsession import refresh_authentication
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import set_session_cookie
from flask_kitsession import testing as kit_testing
from flask_kitsession import UnknownUserError
from flask_kitsession import with_new_session
from flask_kitsession.state import get_state
from flask_kitsession.testing import KitSessionClient
from flask_kitsession.testing import revoke
from flask_kitsession.testing import session_of

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
MARIA_ADMIN = "mysql+pymysql://root@127.0.0.1:3306/"
REDIS_URL = "redis://127.0.0.1:6379/0"
RUN_TOKEN = uuid.uuid4().hex[:8]
BACKENDS = ["memory", "sqlite", "postgresql", "mariadb", "redis"]
SQL_BACKENDS = ["sqlite", "postgresql", "mariadb"]
KEY_TYPES = ["int", "str", "uuid"]
UUIDS = [uuid.UUID(f"00000000-0000-4000-8000-00000000000{i}") for i in range(1, 4)]


# --------------------------------------------------------------------------
# Servers and databases
# --------------------------------------------------------------------------


def _server_up(name: str) -> bool:
    try:
        if name in ("postgresql", "mariadb"):
            eng = sa.create_engine(PG_ADMIN if name == "postgresql" else MARIA_ADMIN)
            try:
                with eng.connect():
                    pass
            finally:
                eng.dispose()
        elif name == "redis":
            import redis

            redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
        return True
    except Exception:
        return False


_UP: dict[str, bool] = {}


def require(backend: str) -> None:
    if backend in ("memory", "sqlite"):
        return
    server = "redis" if backend == "redis" else backend
    if server not in _UP:
        _UP[server] = _server_up(server)
    if not _UP[server]:
        pytest.skip(f"{server} is not running")


class Databases:
    """review10_* databases on the shared servers, made on demand, dropped after."""

    def __init__(self) -> None:
        self.made: list[tuple[str, str]] = []

    def url(self, backend: str, suffix: str) -> str:
        name = f"review10_{RUN_TOKEN}_{suffix}"
        if (backend, name) not in self.made:
            if backend == "postgresql":
                eng = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
                with eng.connect() as c:
                    c.exec_driver_sql(f"CREATE DATABASE {name}")
            else:
                eng = sa.create_engine(MARIA_ADMIN)
                with eng.begin() as c:
                    c.exec_driver_sql(f"CREATE DATABASE {name}")
            eng.dispose()
            self.made.append((backend, name))
        if backend == "postgresql":
            return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        return f"mysql+pymysql://root@127.0.0.1:3306/{name}"

    def drop_all(self) -> None:
        for backend, name in self.made:
            try:
                if backend == "postgresql":
                    eng = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
                    with eng.connect() as c:
                        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                else:
                    eng = sa.create_engine(MARIA_ADMIN)
                    with eng.begin() as c:
                        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
                eng.dispose()
            except Exception:  # pragma: no cover - best effort
                pass


@pytest.fixture(scope="module")
def databases() -> Iterator[Databases]:
    dbs = Databases()
    yield dbs
    dbs.drop_all()


# --------------------------------------------------------------------------
# The app under test
# --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(timezone.utc).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class MemUser(UserMixin):  # type: ignore[misc]
    def __init__(self, id: Any) -> None:
        self.id = id


def user_ids(key_type: str) -> list[Any]:
    if key_type == "int":
        return [1, 2, 3]
    if key_type == "str":
        return ["alice", "bob", "carol"]
    return list(UUIDS)


def column_type(key_type: str) -> Any:
    return {"int": sa.Integer(), "str": sa.String(64), "uuid": sa.Uuid()}[key_type]


@dataclass
class Env:
    backend: str
    key_type: str
    tmp: Path
    clock: Clock
    databases: Databases | None
    extra_users: list[Any] = field(default_factory=list)
    redis_prefix: str = ""
    engines: list[sa.Engine] = field(default_factory=list)
    user_engine: sa.Engine | None = None
    user_table: sa.Table | None = None

    @property
    def users(self) -> list[Any]:
        return user_ids(self.key_type)

    @property
    def sql(self) -> bool:
        return self.backend in SQL_BACKENDS

    def db_url(self) -> str:
        if self.backend == "sqlite" or self.backend == "redis":
            return f"sqlite:///{self.tmp}/r10_{self.key_type}.db"
        assert self.databases is not None
        return self.databases.url(self.backend, self.key_type)

    def setup_users(self) -> None:
        if self.backend == "memory":
            return
        md = sa.MetaData()
        self.user_table = sa.Table(
            "r10_user",
            md,
            sa.Column("id", column_type(self.key_type), primary_key=True),
            sa.Column("name", sa.String(50)),
        )
        eng = sa.create_engine(self.db_url())
        self.engines.append(eng)
        self.user_engine = eng
        md.create_all(eng)
        insp = sa.inspect(eng)
        with eng.begin() as c:
            if "session" in insp.get_table_names():
                c.execute(sa.text("DELETE FROM session"))
            c.execute(self.user_table.delete())
            rows = [{"id": u, "name": f"user {u}"} for u in self.users + self.extra_users]
            c.execute(self.user_table.insert(), rows)

    def make_store_and_config(self) -> tuple[Any, dict[str, Any]]:
        if self.backend == "memory":
            known = set(self.users) | set(self.extra_users)
            pytype = {"int": int, "str": str, "uuid": uuid.UUID}[self.key_type]
            store = MemoryStore(
                user_loader=lambda uid: MemUser(uid) if uid in known else None,
                user_id_type=pytype,
            )
            return store, {}
        assert self.user_table is not None
        config: dict[str, Any] = {
            "KITSESSION_DATABASE_URL": self.db_url(),
            "KITSESSION_USER_MODEL": self.user_table,
        }
        if self.backend == "redis":
            config["KITSESSION_REDIS_URL"] = REDIS_URL
            config["KITSESSION_REDIS_PREFIX"] = self.redis_prefix
        return None, config

    def cleanup(self) -> None:
        if self.backend == "redis" and self.redis_prefix:
            import redis

            r = redis.Redis.from_url(REDIS_URL)
            keys = list(r.scan_iter(match=self.redis_prefix + "*", count=1000))
            if keys:
                r.delete(*keys)
            r.close()
        for eng in self.engines:
            eng.dispose()


def make_env(
    backend: str,
    key_type: str,
    tmp: Path,
    databases: Databases,
    extra_users: list[Any] | None = None,
) -> Env:
    require(backend)
    env = Env(backend, key_type, tmp, Clock(), databases, extra_users=list(extra_users or []))
    if backend == "redis":
        env.redis_prefix = f"review10:{uuid.uuid4().hex[:12]}:"
    env.setup_users()
    return env


@pytest.fixture(params=BACKENDS)
def env(request: pytest.FixtureRequest, tmp_path: Path, databases: Databases) -> Iterator[Env]:
    e = make_env(request.param, "int", tmp_path, databases)
    yield e
    e.cleanup()


def build_app(
    env: Env,
    *,
    protection: str | None = None,
    config: dict[str, Any] | None = None,
    with_login_manager: bool = True,
) -> Flask:
    app = Flask(f"review10_{uuid.uuid4().hex[:8]}")
    app.config.update(SECRET_KEY="review10-secret", TESTING=True)
    store, cfg = env.make_store_and_config()
    app.config.update(cfg)
    app.config.update(config or {})
    ks = KitSession(store=store, clock=env.clock)
    ks.init_app(app)
    if env.sql:
        migrate.upgrade(app)
    with app.app_context():
        st = get_state(app).store
        eng = getattr(st, "engine", None)
        if isinstance(eng, sa.Engine):
            env.engines.append(eng)
            app.extensions["r10_engine"] = eng
    lm: LoginManager | None = None
    if with_login_manager:
        lm = LoginManager(app)
        lm.session_protection = protection
        ks.init_login_manager(lm)

    def load(uid: str) -> Any:
        key = {"int": int, "str": str, "uuid": uuid.UUID}[env.key_type](uid)
        user = get_state(app).store.load_user(key)
        assert user is not None, uid
        return user

    app.extensions["r10_load"] = load

    def flash_args(name: str) -> None:
        for msg in request.args.getlist(name):
            flash(msg)

    @app.get("/login/<uid>")
    def login_view(uid: str) -> str:
        flash_args("before")
        login_user(
            load(uid),
            remember=request.args.get("remember") == "1",
            fresh=request.args.get("fresh", "1") == "1",
        )
        flash_args("after")
        return "ok"

    @app.get("/wns-login/<uid>")
    @with_new_session
    def wns_login(uid: str) -> str:
        if request.args.get("ok", "1") != "1":
            flash("wrong password")
            return "no"
        login_user(load(uid))
        return "ok"

    @app.get("/logout")
    def logout_view() -> str:
        flash_args("before")
        logout_user()
        flash_args("after")
        return "bye"

    @app.get("/switch/<uid>")
    def switch_view(uid: str) -> str:
        flash_args("before")
        logout_user()
        login_user(load(uid))
        flash_args("after")
        return "ok"

    @app.get("/flash/<msg>")
    def flash_view(msg: str) -> str:
        flash(msg)
        return "ok"

    @app.get("/flashes")
    def flashes_view() -> Any:
        return jsonify(get_flashed_messages())

    @app.get("/cart/<item>")
    def cart_view(item: str) -> str:
        session["cart"] = [*session.get("cart", []), item]
        return "ok"

    @app.get("/set/<key>/<value>")
    def set_view(key: str, value: str) -> str:
        session[key] = value
        return "ok"

    @app.get("/me")
    def me_view() -> Any:
        authenticated = bool(current_user and current_user.is_authenticated)
        return jsonify(
            user=current_user.get_id() if authenticated else None,
            fresh=login_fresh(),
            ks_user=None if current_session.user_id is None else str(current_session.user_id),
            keys=sorted(session.keys()),
            data={k: v for k, v in session.items() if isinstance(v, (str, int, list, bool))},
            authenticated_at=_iso(current_session.authenticated_at),
            created_at=_iso(current_session.created_at),
        )

    @app.get("/ks-fresh")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def ks_fresh() -> str:
        return "fresh"

    @app.get("/fl-fresh")
    @fl_fresh_login_required
    def fl_fresh() -> str:
        return "fresh"

    @app.get("/confirm")
    def confirm_view() -> str:
        confirm_login()
        return "ok"

    @app.get("/refresh")
    def refresh_view() -> str:
        refresh_authentication()
        return "ok"

    @app.get("/magic/<uid>")
    def magic_view(uid: str) -> Any:
        flash_args("before")
        s = create_session(load(uid).get_id())
        resp = make_response("ok")
        return set_session_cookie(resp, s)

    @app.get("/csrf")
    def csrf_view() -> str:
        from flask_wtf.csrf import generate_csrf

        return str(generate_csrf())

    @app.get("/regenerate")
    def regenerate_view() -> str:
        flask_kitsession.regenerate()
        return "ok"

    return app


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def me(client: Any, **kw: Any) -> dict[str, Any]:
    r = client.get("/me", **kw)
    assert r.status_code == 200, r.data
    return dict(r.json)


def cookie(client: Any, name: str = "session") -> str | None:
    c = client.get_cookie(name)
    return None if c is None else c.value


def set_cookie(client: Any, value: str | None, name: str = "session") -> None:
    if value is None:
        client.delete_cookie(name)
    else:
        client.set_cookie(name, value)


def stored_ids(app: Flask, user: Any) -> set[str]:
    with app.app_context():
        return {s.id for s in get_sessions_for_user(user)}


# --------------------------------------------------------------------------
# 1. Flask-Login: login_user, remember cookies, freshness
# --------------------------------------------------------------------------


def test_login_user_gets_a_new_token_and_the_planted_cookie_is_dead(env: Env) -> None:
    """flask-login.md: "`login_user(user)` is a login: the session starts over
    with a new token [...]: a planted session id is worthless after the login"."""
    app = build_app(env)
    victim = app.test_client()
    victim.get("/cart/apple")
    planted = cookie(victim)
    attacker = app.test_client()
    set_cookie(attacker, planted)
    victim.get("/login/1")
    assert cookie(victim) != planted
    assert me(victim)["user"] == "1"
    seen = me(attacker)
    assert seen["user"] is None and seen["ks_user"] is None
    assert "cart" not in seen["keys"]


@pytest.mark.parametrize("how", ["fresh-false", "remember-restore"])
def test_a_login_that_is_not_fresh_is_refused_by_both_decorators(env: Env, how: str) -> None:
    """flask-login.md: "`login_user(user, fresh=False)` and a login restored from
    Flask-Login's remember cookie are not fresh (`fresh_login_required` refuses
    them), and a remember-cookie login gets a new token too"."""
    app = build_app(env)
    c = app.test_client()
    if how == "fresh-false":
        c.get("/login/1?fresh=0")
    else:
        c.get("/login/1?remember=1")
        before = cookie(c)
        assert c.get_cookie("remember_token") is not None
        set_cookie(c, None)  # the browser closes
        assert me(c)["user"] == "1"  # restored from the remember cookie
        assert cookie(c) not in (None, before)
    info = me(c)
    assert info["user"] == "1" and info["fresh"] is False
    assert info["authenticated_at"] is None
    assert c.get("/ks-fresh").status_code == 401
    assert c.get("/fl-fresh").status_code == 401
    # and then the password prompt: both agree again
    old = cookie(c)
    assert c.get("/refresh").status_code == 200
    assert cookie(c) != old
    assert me(c)["fresh"] is True
    assert c.get("/ks-fresh").status_code == 200
    assert c.get("/fl-fresh").status_code == 200
    set_cookie(c, old, "session")
    # the pre-refresh cookie is dead; the remember cookie (if any) may log in again, not fresh
    if how == "fresh-false":
        assert me(c)["user"] is None


def test_remember_restore_on_a_revoked_session_is_not_fresh_even_if_the_old_was(env: Env) -> None:
    """lifecycle.md: "a remember-cookie restore [...] is not an authentication:
    a new link gets no `authenticated_at`"."""
    app = build_app(env)
    c = app.test_client()
    c.get("/login/1?remember=1")
    assert c.get("/ks-fresh").status_code == 200
    assert revoke(c)
    info = me(c)
    assert info["user"] == "1" and info["fresh"] is False
    assert info["authenticated_at"] is None
    assert c.get("/ks-fresh").status_code == 401
    assert c.get("/fl-fresh").status_code == 401


def test_confirm_login_counts_as_refresh_authentication(env: Env) -> None:
    """flask-login.md: "`confirm_login()` counts as `refresh_authentication()`"
    ("give the session a new token", lifecycle.md), keeping `created_at`."""
    app = build_app(env)
    c = app.test_client()
    c.get("/login/1?fresh=0")
    before = me(c)
    old = cookie(c)
    env.clock.advance(minutes=5)
    c.get("/confirm")
    after = me(c)
    assert cookie(c) != old
    assert after["fresh"] is True and after["authenticated_at"] == env.clock.now.isoformat()
    assert after["created_at"] == before["created_at"]
    assert c.get("/ks-fresh").status_code == 200
    assert c.get("/fl-fresh").status_code == 200
    set_cookie(c, old)
    assert me(c)["user"] is None


def test_freshness_expires_with_the_clock_and_a_not_fresh_relogin_keeps_it_old(env: Env) -> None:
    """lifecycle.md: "`login_user(user, fresh=False)` [...] the same user's keeps
    the one it had"; `fresh_login_required` "lets a request through only when
    `authenticated_at` is less than `max_age` ago and Flask-Login's `_fresh`
    flag [...] is not `False`"."""
    app = build_app(env)
    c = app.test_client()
    c.get("/login/1")
    t0 = me(c)["authenticated_at"]
    env.clock.advance(minutes=9)
    assert c.get("/ks-fresh").status_code == 200
    c.get("/login/1?fresh=0")
    info = me(c)
    assert info["authenticated_at"] == t0 and info["fresh"] is False
    assert c.get("/ks-fresh").status_code == 401
    c.get("/confirm")
    assert c.get("/ks-fresh").status_code == 200
    env.clock.advance(minutes=11)
    assert c.get("/ks-fresh").status_code == 401
    assert me(c)["fresh"] is True  # Flask-Login's own flag has no clock


def test_refresh_authentication_without_a_user_is_a_value_error(env: Env) -> None:
    """refresh_authentication(): ":raises ValueError: if the session belongs to no user"."""
    app = build_app(env)

    @app.get("/try-refresh")
    def try_refresh() -> str:
        try:
            refresh_authentication()
        except ValueError:
            return "refused"
        return "accepted"

    c = app.test_client()
    c.get("/cart/x")
    assert c.get("/try-refresh").data == b"refused"
    assert me(c)["user"] is None


def test_a_remember_cookie_of_a_deleted_user_leaves_the_visitor_anonymous(env: Env) -> None:
    """lifecycle.md: "a remember cookie of a user who no longer exists leaves
    the visitor anonymous, never an error"."""
    if env.backend == "memory":
        pytest.skip("the memory store's users are the test's dict")
    app = build_app(env)
    c = app.test_client()
    c.get("/login/3?remember=1")
    set_cookie(c, None)
    assert env.user_engine is not None and env.user_table is not None
    with env.user_engine.begin() as conn:
        if env.backend == "redis":
            with app.app_context():
                remove_all_sessions_for_user(3)
        conn.execute(env.user_table.delete().where(env.user_table.c.id == 3))
    info = me(c)
    assert info["user"] is None and info["ks_user"] is None


# --------------------------------------------------------------------------
# 2. Session protection, magic links, the testing helpers
# --------------------------------------------------------------------------

OTHER_UA = {"User-Agent": "Mozilla/5.0 (attacker)"}


def test_strong_protection_carries_nothing_of_the_user_into_a_later_login(env: Env) -> None:
    """flask-login.md: "strong session protection starts the session over, and
    no data of the signed-in session follows it"; lifecycle.md: "from where a
    later login could carry it into another account" (carry-over "*")."""
    app = build_app(env, protection="strong", config={"KITSESSION_CARRY_OVER_KEYS": "*"})
    victim = app.test_client()
    victim.get("/login/1")
    victim.get("/cart/secret-of-1")
    victim.get("/flash/secret-flash-of-1")
    stolen = cookie(victim)
    thief = app.test_client()
    set_cookie(thief, stolen)
    info = me(thief, headers=OTHER_UA)
    assert info["user"] is None and info["ks_user"] is None
    assert "cart" not in info["keys"] and "_flashes" not in info["keys"]
    thief.get("/login/2", headers=OTHER_UA)
    info = me(thief, headers=OTHER_UA)
    assert info["user"] == "2"
    assert "cart" not in info["keys"]
    assert thief.get("/flashes", headers=OTHER_UA).json == []


def test_basic_protection_makes_the_stolen_cookie_stale_for_both_decorators(env: Env) -> None:
    """security.md: "`fresh_login_required` refuses when [...] Flask-Login's
    `_fresh` is `False`" (basic session protection sets it on an identifier change)."""
    app = build_app(env, protection="basic")
    victim = app.test_client()
    victim.get("/login/1")
    assert victim.get("/ks-fresh").status_code == 200
    thief = app.test_client()
    set_cookie(thief, cookie(victim))
    assert me(thief, headers=OTHER_UA)["user"] == "1"
    assert thief.get("/ks-fresh", headers=OTHER_UA).status_code == 401
    assert thief.get("/fl-fresh", headers=OTHER_UA).status_code == 401


def test_refresh_authentication_confirms_the_browser_for_strong_protection(env: Env) -> None:
    """flask-login.md: "`refresh_authentication()` confirms the login for
    Flask-Login too (its `_fresh`, and the browser identifier its session
    protection compares)"."""
    app = build_app(env, protection="strong")
    c = app.test_client()
    c.get("/login/1?fresh=0")
    c.get("/refresh")
    info = me(c)
    assert info["user"] == "1" and info["fresh"] is True
    assert c.get("/fl-fresh").status_code == 200
    assert c.get("/ks-fresh").status_code == 200


def test_magic_link_from_another_users_session_hands_over_nothing_of_theirs(env: Env) -> None:
    """security.md: "`create_session()` + `set_session_cookie()` in a view hands
    the browser the new session and deletes the one it had"; flask-login.md:
    "`create_session(user.get_id())` (a magic link) also writes what
    `login_user()` would: `current_user` is that user, and the login is fresh
    for the browser of the request that made it"."""
    app = build_app(env, protection="strong", config={"KITSESSION_CARRY_OVER_KEYS": "*"})
    c = app.test_client()
    c.get("/login/2")
    c.get("/cart/of-user-2")
    c.get("/flash/for-user-2-only")
    before = cookie(c)
    assert len(stored_ids(app, 2)) == 1
    env.clock.advance(minutes=30)
    c.get("/magic/1")
    assert cookie(c) != before
    info = me(c)
    assert info["user"] == "1" and info["fresh"] is True and info["ks_user"] == "1"
    assert info["created_at"] == env.clock.now.isoformat()
    assert "cart" not in info["keys"]
    assert c.get("/flashes").json == []
    assert c.get("/ks-fresh").status_code == 200
    assert c.get("/fl-fresh").status_code == 200
    assert stored_ids(app, 2) == set()
    assert len(stored_ids(app, 1)) == 1
    set_cookie(c, before)
    assert me(c)["user"] is None


def test_magic_link_from_an_anonymous_session_leaves_one_stored_session(env: Env) -> None:
    """security.md: "One browser, one stored session." [...] "`create_session()`
    + `set_session_cookie()` in a view hands the browser the new session and
    deletes the one it had"."""
    app = build_app(env)
    c = app.test_client()
    c.get("/cart/x")
    anon = cookie(c)
    with app.app_context():
        before_all = {s.id for s in flask_kitsession.get_all_sessions()}
    assert len(before_all) == 1
    c.get("/magic/1")
    with app.app_context():
        after_all = {s.id for s in flask_kitsession.get_all_sessions()}
    assert len(after_all) == 1 and after_all != before_all
    set_cookie(c, anon)
    assert me(c)["ks_user"] is None


def test_testing_login_in_a_flask_login_app(env: Env) -> None:
    """testing.md: "When the app has a `LoginManager`, `login` writes what
    Flask-Login's `login_user` writes [...] So `current_user` is the user,
    `login_fresh()` is true (unless `fresh=False`), and a `"strong"` session
    protection does not log the client out"; "`fresh=False` [...]
    `fresh_login_required` (and Flask-Login's `fresh_login_required`) refuse it"."""
    app = build_app(env, protection="strong")
    c = app.test_client()
    with app.app_context():
        user = app.extensions["r10_load"]("1")
    kit_testing.login(c, user)
    info = me(c)
    assert info["user"] == "1" and info["fresh"] is True
    assert c.get("/ks-fresh").status_code == 200
    assert c.get("/fl-fresh").status_code == 200
    stale = app.test_client()
    kit_testing.login(stale, 1, fresh=False)
    info = me(stale)
    assert info["user"] == "1" and info["fresh"] is False
    assert stale.get("/ks-fresh").status_code == 401
    assert stale.get("/fl-fresh").status_code == 401
    assert len(stored_ids(app, 1)) == 2
    assert revoke(stale) is True
    assert me(stale)["user"] is None
    assert session_of(stale) is None
    assert len(stored_ids(app, 1)) == 1


def test_kitsession_client_class_in_a_flask_login_app(env: Env) -> None:
    """testing.md: "`client = app.test_client(user=user)` # logged in
    (fresh=False for a remembered login)"."""
    app = build_app(env, protection="strong")
    app.test_client_class = KitSessionClient
    c = t.cast(KitSessionClient, app.test_client(user=2, fresh=False))
    info = me(c)
    assert info["user"] == "2" and info["fresh"] is False
    assert c.get("/fl-fresh").status_code == 401
    assert c.get("/ks-fresh").status_code == 401
    assert c.server_session is not None and str(c.server_session.user_id) == "2"
    c.get("/logout")
    after_logout: object = c.server_session  # read again: the logout changed it
    assert after_logout is None
    assert me(c)["user"] is None


def test_testing_login_of_an_unknown_user_fails(env: Env) -> None:
    """testing.md: "On a SQL store, a user id that no user has raises
    `UnknownUserError`, as a real login would fail"."""
    if env.backend not in SQL_BACKENDS:
        pytest.skip("promised for SQL stores")
    app = build_app(env)
    with pytest.raises(UnknownUserError):
        kit_testing.login(app.test_client(), 99)
    assert stored_ids(app, 99) == set()


# --------------------------------------------------------------------------
# 3. Flashed messages, carried keys and CSRF tokens across users
# --------------------------------------------------------------------------

CARRY = [(), ("cart", "_flashes"), "*"]


@pytest.mark.parametrize("carry", CARRY, ids=["none", "list", "all"])
@pytest.mark.parametrize("path", ["logout", "login-other", "switch", "wns-login-other"])
def test_a_users_unshown_flashes_never_reach_the_next_visitor(
    env: Env, path: str, carry: Any
) -> None:
    """lifecycle.md: "When the browser leaves a user (a logout, a login as
    someone else), only the messages this request flashed follow it: the
    user's earlier ones, not yet shown, are not the next visitor's to read."
    (Also security.md: "Nothing crosses from one user to another", even with "*".)"""
    app = build_app(env, config={"KITSESSION_CARRY_OVER_KEYS": carry})
    c = app.test_client()
    c.get("/login/1")
    c.get("/cart/cart-of-1")
    c.get("/flash/private-to-1")
    url = {
        "logout": "/logout",
        "login-other": "/login/2",
        "switch": "/switch/2",
        "wns-login-other": "/wns-login/2",
    }[path]
    sep = "&" if "?" in url else "?"
    c.get(f"{url}{sep}before=mine-before&after=mine-after")
    info = me(c)
    assert info["user"] == (None if path == "logout" else "2")
    assert "cart" not in info["keys"]
    shown = t.cast(list[str], c.get("/flashes").json)
    assert "private-to-1" not in shown
    if path != "wns-login-other":
        assert shown == ["mine-before", "mine-after"]


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("carry", CARRY, ids=["none", "list", "all"])
def test_anonymous_flashes_follow_into_a_login(env: Env, carry: Any, where: str) -> None:
    """lifecycle.md: "Flashed messages are one key, `_flashes`, that `flash()`
    writes whole. [...] From an anonymous session into a login they all follow,
    as the other keys this request wrote do." A login view that flashes
    ("Welcome back") before or after `login_user()` writes the key; the
    anonymous visitor's earlier message (Flask-Login's own "Please log in to
    access this page.") must follow either way."""
    app = build_app(env, config={"KITSESSION_CARRY_OVER_KEYS": carry})
    c = app.test_client()
    c.get("/flash/earlier")
    c.get(f"/login/1?{where}=during")
    assert me(c)["user"] == "1"
    assert c.get("/flashes").json == ["earlier", "during"]


def test_a_failed_login_keeps_the_users_flashes_and_clocks(env: Env) -> None:
    """lifecycle.md: "A view that links nobody, a failed login, leaves the
    visitor's session as it was, with what the view wrote into it (its flashed
    "wrong password")"."""
    app = build_app(env)
    c = app.test_client()
    c.get("/login/1")
    c.get("/flash/earlier")
    before = me(c)
    tok = cookie(c)
    env.clock.advance(minutes=2)
    c.get("/wns-login/2?ok=0")
    after = me(c)
    assert cookie(c) == tok
    assert after["user"] == "1"
    assert after["authenticated_at"] == before["authenticated_at"]
    assert after["created_at"] == before["created_at"]
    assert c.get("/flashes").json == ["earlier", "wrong password"]


def test_a_plain_view_writing_a_user_key_carries_nothing_of_the_previous_user(env: Env) -> None:
    """security.md: "The key written names the user (user keys naming anyone
    else are dropped)" [...] "When the linked user changes, the session starts
    over" and "Nothing crosses from one user to another"."""
    app = build_app(env, config={"KITSESSION_CARRY_OVER_KEYS": "*"})
    c = app.test_client()
    c.get("/login/1")
    c.get("/cart/of-1")
    c.get("/flash/private-to-1")
    tok = cookie(c)
    c.get("/set/user_id/2")
    info = me(c)
    assert cookie(c) != tok
    assert info["ks_user"] == "2"
    assert info["user"] is None  # Flask-Login reads only _user_id, which named 1
    assert "_user_id" not in info["keys"] and "cart" not in info["keys"]
    assert c.get("/flashes").json == []


def _csrf_app(env: Env, **kw: Any) -> Flask:
    app = build_app(env, **kw)

    @app.get("/csrf-check")
    def csrf_check() -> str:
        from flask_wtf.csrf import validate_csrf
        from wtforms import ValidationError  # type: ignore[import-untyped]

        try:
            validate_csrf(request.args["token"])
        except ValidationError:
            return "refused"
        return "accepted"

    return app


def test_a_csrf_token_never_passes_to_another_user(env: Env) -> None:
    """security.md section 9: "The token never passes to another user (a login
    as someone else drops it [...]), and it ends with the session at logout"."""
    app = _csrf_app(env, config={"KITSESSION_CARRY_OVER_KEYS": "*"})
    c = app.test_client()
    anon_token = c.get("/csrf").data.decode()
    c.get("/login/1")
    assert c.get(f"/csrf-check?token={anon_token}").data == b"accepted"  # carried into 1's
    t1 = c.get("/csrf").data.decode()
    for path in ["/login/2", "/switch/2", "/magic/2", "/set/user_id/2"]:
        c.get("/logout")
        c.get("/login/1")
        t1 = c.get("/csrf").data.decode()
        assert c.get(f"/csrf-check?token={t1}").data == b"accepted"
        c.get(path)
        assert c.get(f"/csrf-check?token={t1}").data == b"refused", path
    c.get("/logout")
    c.get("/login/1")
    t1 = c.get("/csrf").data.decode()
    c.get("/logout")
    assert c.get(f"/csrf-check?token={t1}").data == b"refused"


def test_a_csrf_token_of_a_stolen_session_does_not_survive_strong_protection(env: Env) -> None:
    """flask-login.md/lifecycle.md: strong protection: "no data of a signed-in
    session follows it into an anonymous one (from where a later login could
    carry it into another account)"."""
    app = _csrf_app(env, protection="strong", config={"KITSESSION_CARRY_OVER_KEYS": "*"})
    victim = app.test_client()
    victim.get("/login/1")
    t1 = victim.get("/csrf").data.decode()
    thief = app.test_client()
    set_cookie(thief, cookie(victim))
    me(thief, headers=OTHER_UA)
    thief.get("/login/2", headers=OTHER_UA)
    assert thief.get(f"/csrf-check?token={t1}", headers=OTHER_UA).data == b"refused"


# --------------------------------------------------------------------------
# 4. Clocks across Flask-Login
# --------------------------------------------------------------------------

TIMEOUTS = {
    "KITSESSION_IDLE_TIMEOUT": timedelta(minutes=30),
    "KITSESSION_ABSOLUTE_TIMEOUT": timedelta(hours=1),
}


@pytest.mark.parametrize(
    "keepalive",
    [
        "/login/1",
        "/login/1?fresh=0",
        "/confirm",
        "/refresh",
        "/regenerate",
        "/wns-login/1",
        "/cart/x",
    ],
)
def test_no_flask_login_step_of_the_same_user_outlives_the_absolute_timeout(
    env: Env, keepalive: str
) -> None:
    """lifecycle.md: "A re-login of the same user, `regenerate()`,
    `refresh_authentication()` and carry-over keep it [...] So no sequence of
    requests keeps a session alive past the absolute timeout, short of the app
    making a new one with `create_session()`"."""
    app = build_app(env, config=TIMEOUTS)
    c = app.test_client()
    c.get("/login/1")
    created = me(c)["created_at"]
    for _ in range(3):
        env.clock.advance(minutes=19)
        assert c.get(keepalive).status_code == 200
        info = me(c)
        assert info["user"] == "1" and info["created_at"] == created
    env.clock.advance(minutes=4)  # 61 minutes after the login
    info = me(c)
    assert info["user"] is None and info["ks_user"] is None


def test_a_login_starts_its_own_absolute_clock_not_the_anonymous_sessions(env: Env) -> None:
    """security.md: "It counts from `created_at`: the creation of the first
    session of an uninterrupted link of the browser to the same user"."""
    app = build_app(env, config=TIMEOUTS)
    c = app.test_client()
    c.get("/cart/x")
    env.clock.advance(minutes=25)
    c.get("/cart/y")
    env.clock.advance(minutes=25)
    c.get("/login/1")
    assert me(c)["created_at"] == env.clock.now.isoformat()
    for _ in range(2):
        env.clock.advance(minutes=25)
        assert me(c)["user"] == "1"


def test_a_remember_cookie_after_the_absolute_timeout_is_a_new_link_not_fresh(env: Env) -> None:
    """flask-login.md: remember-cookie logins are "not fresh"; lifecycle.md:
    only a logout or "a login of another user [...] start a new one" (here the
    session is gone, so the restore is a new link)."""
    app = build_app(env, config=TIMEOUTS)
    c = app.test_client()
    c.get("/login/1?remember=1")
    for _ in range(4):
        env.clock.advance(minutes=16)
        me(c)
    info = me(c)
    assert info["user"] == "1"  # restored by the remember cookie
    assert info["fresh"] is False and info["authenticated_at"] is None
    assert info["created_at"] != None  # noqa: E711
    assert datetime.fromisoformat(info["created_at"]) > env.clock.now - timedelta(minutes=16)
    assert c.get("/ks-fresh").status_code == 401


def test_idle_timeout_across_flask_login_reads(env: Env) -> None:
    """security.md section 4: "a session left alone expires between the idle
    timeout minus the touch interval and the idle timeout after its last request"."""
    app = build_app(env, config=TIMEOUTS)
    c = app.test_client()
    c.get("/login/1")
    env.clock.advance(minutes=29)
    assert me(c)["user"] == "1"
    env.clock.advance(minutes=29)
    assert me(c)["user"] == "1"
    env.clock.advance(minutes=30, seconds=1)
    assert me(c)["user"] is None


# --------------------------------------------------------------------------
# 5. User ids: int, str (look-alikes), UUID
# --------------------------------------------------------------------------

LOOKALIKES = ["Alice", "ALICE", "alice ", " alice", "alicE"]


def _cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["kitsession", *args])


@pytest.mark.parametrize("backend", BACKENDS)
def test_string_ids_link_only_the_exact_user(
    backend: str, tmp_path: Path, databases: Databases
) -> None:
    """session-data.md: "Only the exact id links a user, on every database:
    MariaDB's collations find "user-1" for "USER-1" and "user-1 "";
    "Lookups by an id no user can have (`load_user`, `delete_all_for_user`,
    `iterate`) find nothing"; cli.md: "`revoke --user ID` signs a user out
    everywhere"."""
    # MariaDB cannot hold two ids its collation deems equal: there only "alice" exists.
    extra = [] if backend == "mariadb" else ["Alice", "alice "]
    env = make_env(backend, "str", tmp_path, databases, extra_users=extra)
    try:
        app = build_app(env)
        clients = {}
        for uid in ["alice", "bob", *extra]:
            clients[uid] = app.test_client()
            clients[uid].get(f"/login/{uid}")
            assert me(clients[uid])["user"] == uid
        with app.app_context():
            for uid in ["alice", *extra]:
                got = get_sessions_for_user(uid)
                assert [str(s.user_id) for s in got] == [uid]
            for ghost in LOOKALIKES:
                if ghost in extra:
                    continue
                assert get_sessions_for_user(ghost) == [], ghost
                assert remove_all_sessions_for_user(ghost) == 0, ghost
            assert len(get_sessions_for_user("alice")) == 1
        for ghost in LOOKALIKES:
            if ghost in extra:
                continue
            _cli(app, "revoke", "--user", ghost)
            assert me(clients["alice"])["user"] == "alice", (
                f"revoke --user {ghost!r} signed out 'alice'"
            )
        for uid in extra:
            result = _cli(app, "revoke", "--user", uid)
            assert result.exit_code == 0, result.output
            assert me(clients[uid])["user"] is None
            assert me(clients["alice"])["user"] == "alice", (
                f"revoke --user {uid!r} signed out 'alice'"
            )
        result = _cli(app, "revoke", "--user", "alice")
        assert result.exit_code == 0, result.output
        assert me(clients["alice"])["user"] is None
        assert me(clients["bob"])["user"] == "bob"
    finally:
        env.cleanup()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_lookalike_string_id_is_not_linked(
    backend: str, tmp_path: Path, databases: Databases
) -> None:
    """session-data.md: "Only the exact id links a user, on every database"
    (security.md: "or that no user has exactly, is refused with `UnknownUserError`")."""
    env = make_env(backend, "str", tmp_path, databases)
    try:
        app = build_app(env)

        @app.get("/link/<path:uid>")
        def link(uid: str) -> str:
            session["user_id"] = uid
            return "ok"

        app.config["PROPAGATE_EXCEPTIONS"] = False
        for ghost in LOOKALIKES:
            c = app.test_client()
            r = c.get(f"/link/{ghost}")
            info = me(c)
            assert info["ks_user"] != "alice", ghost
            assert r.status_code == 500 or info["ks_user"] is None, (ghost, r.status_code, info)
        with app.app_context():
            assert get_sessions_for_user("alice") == []
    finally:
        env.cleanup()


@pytest.mark.parametrize("backend", BACKENDS)
def test_integer_ids_lookups_with_lookalikes(
    backend: str, tmp_path: Path, databases: Databases
) -> None:
    """session-data.md: integer keys accept "`"42"`, `"+42"`, `"042"`" and
    refuse "`" 42"`, `"4_2"`"; "Lookups by an id no user can have [...] find nothing"."""
    env = make_env(backend, "int", tmp_path, databases)
    try:
        app = build_app(env)
        c = app.test_client()
        c.get("/login/1")
        other = app.test_client()
        other.get("/login/2")
        with app.app_context():
            for same in [1, "1", "+1", "01"]:
                assert len(get_sessions_for_user(same)) == 1, same
            for ghost in [" 1", "1 ", "1_0", "١", "abc", 2**70, "-0x1"]:
                assert get_sessions_for_user(ghost) == [], ghost
                assert remove_all_sessions_for_user(ghost) == 0, ghost
        for ghost in [" 1", "1 ", "١", "99"]:
            _cli(app, "revoke", "--user", ghost)
            assert me(c)["user"] == "1", ghost
        assert _cli(app, "revoke", "--user", "01").exit_code == 0
        assert me(c)["user"] is None and me(other)["user"] == "2"
    finally:
        env.cleanup()


@pytest.mark.parametrize("backend", BACKENDS)
def test_uuid_ids_across_flask_login(backend: str, tmp_path: Path, databases: Databases) -> None:
    """session-data.md: `Uuid` keys accept "a `UUID`, or any text `uuid.UUID()`
    reads (`hex`, upper case, braces, `urn:uuid:`)"; flask-login.md: the
    magic link `create_session(user.get_id())`."""
    env = make_env(backend, "uuid", tmp_path, databases)
    try:
        app = build_app(env)
        u1, u2 = UUIDS[0], UUIDS[1]
        a = app.test_client()
        a.get(f"/login/{u1}")
        b = app.test_client()
        b.get(f"/magic/{u2}")
        assert me(a)["user"] == str(u1) and me(b)["user"] == str(u2)
        with app.app_context():
            for form in [u1, str(u1), u1.hex, str(u1).upper(), f"{{{u1}}}", u1.urn]:
                got = get_sessions_for_user(form)
                assert len(got) == 1 and got[0].user_id == u1, form
            for ghost in ["not-a-uuid", str(u1)[:-1], 1]:
                assert get_sessions_for_user(ghost) == [], ghost
                assert remove_all_sessions_for_user(ghost) == 0, ghost
        assert _cli(app, "revoke", "--user", str(u1).upper()).exit_code == 0
        assert me(a)["user"] is None and me(b)["user"] == str(u2)
        kit_testing.login(a, str(u1))
        assert me(a)["user"] == str(u1) and me(a)["fresh"] is True
    finally:
        env.cleanup()


# --------------------------------------------------------------------------
# 6. Configuration errors at init_app
# --------------------------------------------------------------------------

BAD_CONFIG: list[tuple[str, Any]] = [
    ("KITSESSION_DATABASE_URL", 42),
    ("KITSESSION_DATABASE_URL", "not a url"),
    ("KITSESSION_DATABASE_URL", "postgres://postgres@127.0.0.1/test"),
    ("KITSESSION_DATABASE_URL", ""),
    ("KITSESSION_ENGINE_OPTIONS", "pool_size=5"),
    ("KITSESSION_ENGINE_OPTIONS", [("pool_size", 5)]),
    ("KITSESSION_ENGINE_OPTIONS", {1: 2}),
    ("KITSESSION_USER_MODEL", "no_such_module_r10:User"),
    ("KITSESSION_USER_MODEL", "os.path:nothing_here"),
    ("KITSESSION_USER_MODEL", 42),
    ("KITSESSION_USER_MODEL", "os:path"),
    ("KITSESSION_USER_FIELDS", "email"),
    ("KITSESSION_USER_FIELDS", [1, 2]),
    ("KITSESSION_USER_FIELDS", ["no_such_column"]),
    ("KITSESSION_USER_ID_COLUMN", 5),
    ("KITSESSION_USER_ID_COLUMN", "no_such_column"),
    ("KITSESSION_USER_ID_COLUMN", "email_r10_missing"),
    ("KITSESSION_IDLE_TIMEOUT", "1h"),
    ("KITSESSION_IDLE_TIMEOUT", -5),
    ("KITSESSION_IDLE_TIMEOUT", 0),
    ("KITSESSION_IDLE_TIMEOUT", timedelta(0)),
    ("KITSESSION_IDLE_TIMEOUT", timedelta(seconds=-1)),
    ("KITSESSION_IDLE_TIMEOUT", True),
    ("KITSESSION_IDLE_TIMEOUT", float("nan")),
    ("KITSESSION_IDLE_TIMEOUT", float("inf")),
    ("KITSESSION_IDLE_TIMEOUT", 10**20),
    ("KITSESSION_ABSOLUTE_TIMEOUT", "1 day"),
    ("KITSESSION_ABSOLUTE_TIMEOUT", -1),
    ("KITSESSION_ABSOLUTE_TIMEOUT", timedelta(0)),
    ("KITSESSION_ABSOLUTE_TIMEOUT", False),
    ("KITSESSION_ABSOLUTE_TIMEOUT", float("nan")),
    ("KITSESSION_TOUCH_INTERVAL", "60"),
    ("KITSESSION_TOUCH_INTERVAL", -1),
    ("KITSESSION_TOUCH_INTERVAL", timedelta(days=400)),
    ("KITSESSION_TOUCH_INTERVAL", None),
    ("KITSESSION_TOUCH_INTERVAL", float("nan")),
    ("KITSESSION_SIGN_COOKIE", "false"),
    ("KITSESSION_SIGN_COOKIE", 0),
    ("KITSESSION_SIGN_COOKIE", None),
    ("KITSESSION_TRACK_USER_AGENT", "no"),
    ("KITSESSION_TRACK_USER_AGENT", 1),
    ("KITSESSION_TRACK_IP", "False"),
    ("KITSESSION_TRACK_IP", None),
    ("KITSESSION_MAX_DATA_SIZE", -1),
    ("KITSESSION_MAX_DATA_SIZE", 0),
    ("KITSESSION_MAX_DATA_SIZE", "65536"),
    ("KITSESSION_MAX_DATA_SIZE", 1.5),
    ("KITSESSION_MAX_DATA_SIZE", True),
    ("KITSESSION_CARRY_OVER_KEYS", [1]),
    ("KITSESSION_CARRY_OVER_KEYS", [None]),
    ("KITSESSION_CARRY_OVER_KEYS", 5),
    ("KITSESSION_CARRY_OVER_KEYS", {"cart": 1}),
    ("KITSESSION_CARRY_OVER_KEYS", "cart"),
    ("KITSESSION_USER_ID_KEYS", "user_id"),
    ("KITSESSION_USER_ID_KEYS", []),
    ("KITSESSION_USER_ID_KEYS", [1]),
    ("KITSESSION_USER_ID_KEYS", None),
    ("KITSESSION_REAUTHENTICATE_VIEW", 5),
    ("KITSESSION_REAUTHENTICATE_VIEW", ["login"]),
    ("KITSESSION_REDIS_URL", 5),
    ("KITSESSION_REDIS_URL", "http://127.0.0.1:6379/0"),
    ("KITSESSION_REDIS_URL", ""),
    ("KITSESSION_REDIS_PREFIX", 5),
    ("KITSESSION_REDIS_PREFIX", b"review10:"),
    ("KITSESSION_REDIS_CLUSTER", "yes"),
    ("KITSESSION_REDIS_CLUSTER", 1),
    ("KITSESSION_REDIS_SENTINELS", 5),
    ("KITSESSION_REDIS_SENTINELS", [5]),
    ("KITSESSION_IDLE_TIMOUT", timedelta(minutes=5)),
    ("KITSESSION_CARRY_OVER_KEY", ["cart"]),
]


@pytest.mark.parametrize(("key", "value"), BAD_CONFIG, ids=[f"{k}={v!r}" for k, v in BAD_CONFIG])
def test_every_bad_config_value_is_refused_at_init_app_naming_the_key(
    key: str, value: Any, tmp_path: Path
) -> None:
    """configuration.md: "`init_app` checks them and names the key that is
    wrong (a `TypeError` or `ValueError`), so a typo fails at start, not on the
    first request: a `KITSESSION_*` key kitsession does not have [...], a switch
    that is not `True` or `False` [...], a URL, prefix or option of the wrong
    kind, a user model that does not import"; "Must be shorter than the idle
    timeout" (`KITSESSION_TOUCH_INTERVAL`)."""
    app = Flask(f"review10_cfg_{uuid.uuid4().hex[:6]}")
    app.config["SECRET_KEY"] = "review10"
    app.config["KITSESSION_DATABASE_URL"] = f"sqlite:///{tmp_path}/cfg.db"
    if key.startswith("KITSESSION_REDIS_") and key != "KITSESSION_REDIS_URL":
        app.config["KITSESSION_REDIS_URL"] = REDIS_URL
        app.config["KITSESSION_REDIS_PREFIX"] = f"review10:{uuid.uuid4().hex[:8]}:"
    app.config[key] = value
    # A string of several keys ("cart") could be read as its letters; refusing
    # it or reading it as the one key are both clear. Reading it as letters is not.
    if key == "KITSESSION_CARRY_OVER_KEYS" and value == "cart":
        try:
            KitSession(app)
        except (TypeError, ValueError) as exc:
            assert key in str(exc)
            return
        with app.app_context():
            carried = get_state(app).settings
        assert not carried.carries("c") and carried.carries("cart")
        return
    with pytest.raises((TypeError, ValueError)) as excinfo:
        KitSession(app)
    assert key in str(excinfo.value), f"{key}={value!r}: {excinfo.value!r}"


# --------------------------------------------------------------------------
# 7. Migrations in the app's own Alembic environment (docs/migrations.md)
# --------------------------------------------------------------------------

MODELS_V1 = """
import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "r10_note"
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(sa.String(100))
"""

MODELS_USER = """

class Account(Base):
    __tablename__ = "r10_account"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
"""


def _migration_url(backend: str, databases: Databases, tmp: Path, suffix: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp}/alembic_app.db"
    return databases.url(backend, suffix)


class AlembicProject:
    def __init__(self, root: Path, url: str) -> None:
        self.root = root
        self.url = url
        root.mkdir(parents=True, exist_ok=True)
        self.run("init", "migrations")
        ini = (root / "alembic.ini").read_text()
        ini = ini.replace(
            "sqlalchemy.url = driver://user:pass@localhost/dbname", f"sqlalchemy.url = {url}"
        )
        (root / "alembic.ini").write_text(ini)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join([str(self.root), str(Path(__file__).parents[1])])
        proc = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=self.root,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert proc.returncode == 0, f"alembic {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def set_target(self, line: str) -> None:
        env_py = self.root / "migrations" / "env.py"
        text = env_py.read_text()
        start, end = "# R10-TARGET\n", "# R10-END\n"
        if start not in text:
            text = text.replace("target_metadata = None\n", start + end)
        head, rest = text.split(start)
        tail = rest.split(end)[1]
        env_py.write_text(head + start + line + "\n" + end + tail)

    def tables(self) -> set[str]:
        eng = sa.create_engine(self.url)
        try:
            return set(sa.inspect(eng).get_table_names())
        finally:
            eng.dispose()


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_a_new_project_from_alembic_init_with_its_own_user_model(
    backend: str, tmp_path: Path, databases: Databases
) -> None:
    """migrations.md: "A new project has no revision yet for kitsession's to
    depend on, so its tables wait [...] The first steps are then: alembic
    revision --autogenerate -m users / alembic upgrade heads / alembic check
    "No new upgrade operations detected."" and "`alembic downgrade base`
    removes both"."""
    require(backend)
    url = _migration_url(backend, databases, tmp_path, "alembic_new")
    proj = AlembicProject(tmp_path / "proj", url)
    (proj.root / "r10models.py").write_text(MODELS_V1 + MODELS_USER)
    proj.set_target(
        "from flask_kitsession.migrate import include_kitsession\n"
        "from r10models import Base\n"
        "target_metadata = include_kitsession("
        'context, Base.metadata, user_model="r10models:Account")'
    )
    proj.run("revision", "--autogenerate", "-m", "users")
    mine = list((proj.root / "migrations" / "versions").glob("*.py"))
    assert len(mine) == 1
    text = mine[0].read_text()
    assert "r10_account" in text and "r10_note" in text
    assert "create_table('session'" not in text and 'create_table("session"' not in text
    proj.run("upgrade", "heads")
    assert {"r10_account", "r10_note", "session", "alembic_version"} <= proj.tables()
    check = proj.run("check")
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    eng = sa.create_engine(url)
    try:
        fks = sa.inspect(eng).get_foreign_keys("session")
        assert any(fk["referred_table"] == "r10_account" for fk in fks), fks
    finally:
        eng.dispose()
    proj.run("downgrade", "base")
    assert proj.tables() <= {"alembic_version"}


@pytest.mark.parametrize("backend", SQL_BACKENDS)
def test_an_existing_project_whose_user_table_comes_later_uses_after(
    backend: str, tmp_path: Path, databases: Databases
) -> None:
    """migrations.md: "When your user table comes in a later revision, name it,
    by its id or a branch label: include_kitsession(context, Base.metadata,
    user_model=..., after="3f2c1a9b7d10")"; "`alembic upgrade heads` runs
    yours first, and `alembic downgrade base` undoes it last"."""
    require(backend)
    url = _migration_url(backend, databases, tmp_path, "alembic_after")
    proj = AlembicProject(tmp_path / "proj", url)
    (proj.root / "r10models.py").write_text(MODELS_V1)
    proj.set_target("from r10models import Base\ntarget_metadata = Base.metadata")
    proj.run("revision", "--autogenerate", "-m", "notes", "--rev-id", "r10notes")
    proj.run("upgrade", "head")
    (proj.root / "r10models.py").write_text(MODELS_V1 + MODELS_USER)
    proj.run("revision", "--autogenerate", "-m", "users", "--rev-id", "r10users")
    proj.run("downgrade", "base")  # an empty database again
    assert proj.tables() <= {"alembic_version"}
    proj.set_target(
        "from flask_kitsession.migrate import include_kitsession\n"
        "from r10models import Base\n"
        "target_metadata = include_kitsession(context, Base.metadata, "
        'user_model="r10models:Account", after="r10users")'
    )
    proj.run("upgrade", "heads")
    assert {"r10_account", "r10_note", "session"} <= proj.tables()
    check = proj.run("check")
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    # a revision the app writes next stays the app's, after its own head
    (proj.root / "r10models.py").write_text(
        MODELS_V1 + MODELS_USER + "\n    name: Mapped[str | None] = mapped_column(sa.String(50))\n"
    )
    proj.run("revision", "--autogenerate", "-m", "names", "--rev-id", "r10names")
    new = (proj.root / "migrations" / "versions" / "r10names_names.py").read_text()
    assert "down_revision" in new and "r10users" in new
    proj.run("upgrade", "heads")
    proj.run("downgrade", "base")
    assert proj.tables() <= {"alembic_version"}


# --------------------------------------------------------------------------
# 8. A stateful model: browsers, users, Flask-Login, flashes, a clock
# --------------------------------------------------------------------------

from hypothesis import HealthCheck  # noqa: E402
from hypothesis import settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.stateful import invariant  # noqa: E402
from hypothesis.stateful import rule  # noqa: E402
from hypothesis.stateful import RuleBasedStateMachine  # noqa: E402
from hypothesis.stateful import run_state_machine_as_test  # noqa: E402

IDLE = timedelta(minutes=30, seconds=30)
ABSOLUTE = timedelta(minutes=121, seconds=30)
FRESH_FOR = timedelta(minutes=10)


@dataclass
class BrowserModel:
    user: int | None = None
    has_session: bool = False
    created: datetime | None = None
    last_seen: datetime | None = None
    fresh: bool = False
    auth_at: datetime | None = None
    flashes: list[str] = field(default_factory=list)
    remember: int | None = None


def make_machine(env: Env) -> type[RuleBasedStateMachine]:
    class FlaskLoginMachine(RuleBasedStateMachine):
        """The reference model of lifecycle.md and flask-login.md, for two
        browsers and two users, with Flask-Login logins, logouts, remember
        cookies, confirm_login/refresh_authentication, flashes and a clock."""

        def __init__(self) -> None:
            super().__init__()
            self.app = build_app(
                env,
                config={"KITSESSION_IDLE_TIMEOUT": IDLE, "KITSESSION_ABSOLUTE_TIMEOUT": ABSOLUTE},
            )

            @self.app.before_request
            def read_current_user() -> None:
                current_user.is_authenticated  # noqa: B018 - restores a remember cookie

            with self.app.app_context():
                for u in (1, 2):
                    remove_all_sessions_for_user(u)
            self.clients = [self.app.test_client(), self.app.test_client()]
            self.model = [BrowserModel(), BrowserModel()]
            self.counter = 0
            self.dead: list[tuple[str, int | None]] = []
            self.orphans: list[tuple[int, datetime]] = []  # sessions of closed browsers

        # -- the model's view of one request ---------------------------------
        def _begin(self, b: int) -> BrowserModel:
            m = self.model[b]
            now = env.clock.now
            if m.has_session:
                assert m.created is not None and m.last_seen is not None
                if now >= min(m.last_seen + IDLE, m.created + ABSOLUTE):
                    m.has_session, m.user, m.flashes = False, None, []
                    m.fresh, m.auth_at, m.created = False, None, None
            if m.user is None and m.remember is not None:
                # the restore, in a request of its own that writes nothing else:
                # not fresh, a new link; an anonymous session's flashes stay behind
                if m.has_session:
                    self._remember_dead(b)
                me(self.clients[b])
                m.user, m.fresh, m.auth_at = m.remember, False, None
                m.created, m.has_session, m.flashes = now, True, []
            if m.has_session:
                m.last_seen = now
            return m

        def _new_link(self, m: BrowserModel, user: int | None) -> None:
            m.user = user
            m.created = env.clock.now
            m.has_session = True
            m.last_seen = env.clock.now

        def _msg(self) -> str:
            self.counter += 1
            return f"m{self.counter}"

        def _remember_dead(self, b: int) -> None:
            tok = cookie(self.clients[b])
            if tok is not None:
                self.dead.append((tok, self.model[b].user))

        # -- rules -------------------------------------------------------------
        @rule(
            b=st.integers(0, 1),
            u=st.sampled_from([1, 2]),
            fresh=st.booleans(),
            remember=st.booleans(),
            with_flash=st.booleans(),
        )
        def login(self, b: int, u: int, fresh: bool, remember: bool, with_flash: bool) -> None:
            m = self._begin(b)
            self._remember_dead(b)
            msg = self._msg() if with_flash else None
            # the flash comes before login_user(): see
            # test_anonymous_flashes_follow_into_a_login[after] for the other order
            q = f"/login/{u}?fresh={int(fresh)}&remember={int(remember)}" + (
                f"&before={msg}" if msg else ""
            )
            assert self.clients[b].get(q).status_code == 200
            # lifecycle.md: "only what may cross follows it: the keys this
            # request wrote" ("_flashes" is written whole by flash()): the
            # earlier messages follow from an anonymous session or the same
            # user's when the login flashes too, never from another user's.
            # (Maintainers, after review 10: lifecycle.md now says the waiting
            # messages follow from an anonymous session or through a same-user
            # re-login whether or not the login flashes; the model follows it.)
            kept = m.flashes if m.user in (None, u) else []
            if m.user != u:
                self._new_link(m, u)
                m.auth_at = env.clock.now if fresh else None
            else:
                if fresh:
                    m.auth_at = env.clock.now
            m.flashes = kept
            m.fresh = fresh
            if msg:
                m.flashes = [*m.flashes, msg]
            if remember:
                m.remember = u

        @rule(b=st.integers(0, 1), with_flash=st.booleans())
        def logout(self, b: int, with_flash: bool) -> None:
            m = self._begin(b)
            self._remember_dead(b)
            msg = self._msg() if with_flash else None
            assert (
                self.clients[b].get("/logout" + (f"?after={msg}" if msg else "")).status_code == 200
            )
            m.user, m.fresh, m.auth_at, m.remember = None, False, None, None
            m.flashes = [msg] if msg else []
            if msg:
                self._new_link(m, None)
            else:
                m.has_session, m.created = False, None

        @rule(b=st.integers(0, 1))
        def flash_one(self, b: int) -> None:
            m = self._begin(b)
            msg = self._msg()
            assert self.clients[b].get(f"/flash/{msg}").status_code == 200
            if not m.has_session:
                self._new_link(m, None)
            m.flashes = [*m.flashes, msg]

        @rule(b=st.integers(0, 1))
        def show_flashes(self, b: int) -> None:
            m = self._begin(b)
            shown = self.clients[b].get("/flashes").json
            assert shown == m.flashes, (shown, m)
            m.flashes = []

        @rule(b=st.integers(0, 1), how=st.sampled_from(["/confirm", "/refresh"]))
        def reauthenticate(self, b: int, how: str) -> None:
            m = self._begin(b)
            if m.user is None:
                return
            self._remember_dead(b)
            assert self.clients[b].get(how).status_code == 200
            m.fresh, m.auth_at = True, env.clock.now

        @rule(b=st.integers(0, 1))
        def close_browser(self, b: int) -> None:
            set_cookie(self.clients[b], None)
            m = self.model[b]
            if m.has_session and m.user is not None:
                assert m.created is not None and m.last_seen is not None
                self.orphans.append((m.user, min(m.last_seen + IDLE, m.created + ABSOLUTE)))
            m.user, m.has_session, m.flashes = None, False, []
            m.fresh, m.auth_at, m.created, m.last_seen = False, None, None, None

        @rule(minutes=st.sampled_from([7, 19, 31]))
        def time_passes(self, minutes: int) -> None:
            env.clock.advance(minutes=minutes)

        @rule(b=st.integers(0, 1))
        def sensitive_pages(self, b: int) -> None:
            m = self._begin(b)
            ks = self.clients[b].get("/ks-fresh").status_code
            fl = self.clients[b].get("/fl-fresh").status_code
            ks_ok = (
                m.user is not None
                and m.fresh
                and m.auth_at is not None
                and env.clock.now - m.auth_at < FRESH_FOR
            )
            assert (ks == 200) == ks_ok, (ks, m, env.clock.now)
            assert (fl == 200) == (m.user is not None and m.fresh), (fl, m)

        @rule()
        def replay_a_dead_cookie(self) -> None:
            if not self.dead:
                return
            tok, _ = self.dead[-1]
            thief = self.app.test_client()
            set_cookie(thief, tok)
            info = me(thief)
            assert info["user"] is None and info["ks_user"] is None, info
            assert thief.get("/flashes").json == []

        @invariant()
        def browsers_agree_with_the_model(self) -> None:
            for b in (0, 1):
                m = self._begin(b)
                info = me(self.clients[b])
                expect = None if m.user is None else str(m.user)
                assert info["user"] == expect and info["ks_user"] == expect, (b, info, m)
                if m.user is not None:
                    assert info["fresh"] == m.fresh, (b, info, m)
                    assert info["authenticated_at"] == _iso(m.auth_at), (b, info, m)
                    assert info["created_at"] == _iso(m.created), (b, info, m)
            for u in (1, 2):
                linked = sum(1 for m in self.model if m.user == u)
                linked += sum(1 for v, end in self.orphans if v == u and env.clock.now < end)
                assert len(stored_ids(self.app, u)) == linked, (u, self.model)

        def teardown(self) -> None:
            with self.app.app_context():
                for u in (1, 2):
                    remove_all_sessions_for_user(u)
            eng = self.app.extensions.get("r10_engine")
            if eng is not None:
                eng.dispose()
                env.engines.remove(eng)

    return FlaskLoginMachine


def test_flask_login_lifecycle_against_a_reference_model(env: Env) -> None:
    """The invariants of security.md section 0 and lifecycle.md, in a Flask-Login
    app: who is signed in, freshness for both decorators, `created_at` and
    `authenticated_at`, flashed messages never crossing users, dead cookies
    anonymous, one stored session per browser."""
    examples = int(os.environ.get("REVIEW10_MODEL_EXAMPLES", "20"))
    machine = make_machine(env)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
