"""Review 9: flask-kitsession combined with ordinary Flask features, as a black box.

Every test names the sentence of the README or of ``docs/`` that it checks, and
runs on every backend the docs name (the memory store, SQLite in a temporary
file, PostgreSQL, MariaDB and Redis) unless it says otherwise. Each backend
lives in its own ``review9_*`` database or ``review9:`` Redis prefix, removed
at the end of the module. A server that is not there is skipped.

Run: ``python -m pytest -p no:cacheprovider tests/test_review9_attacks.py -q``
"""

from __future__ import annotations

import base64
import http.client
import pickle
import threading
import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import abort
from flask import after_this_request
from flask import Blueprint
from flask import flash
from flask import Flask
from flask import get_flashed_messages
from flask import jsonify
from flask import redirect
from flask import request
from flask import Response
from flask import session
from flask import stream_with_context
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_login import login_user
from flask_login import LoginManager
from flask_login import logout_user
from flask_login import UserMixin
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from flask_wtf.csrf import generate_csrf
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant
from hypothesis.stateful import rule
from hypothesis.stateful import RuleBasedStateMachine
from werkzeug.http import parse_date
from werkzeug.serving import make_server
from werkzeug.test import TestResponse
from wtforms import StringField  # type: ignore[import-untyped]

from flask_kitsession import current_session
from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import migrate
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import ServerSession
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session
from flask_kitsession.models import user_table
from flask_kitsession.testing import session_of

PG_ROOT = "postgresql+psycopg://postgres@127.0.0.1:5432/"
MY_ROOT = "mysql+pymysql://root@127.0.0.1:3306/"
REDIS_URL = "redis://127.0.0.1:6379/0"
DB_NAME = f"review9_{uuid.uuid4().hex[:8]}"
SECRET = "review9-secret"
BACKENDS = ["memory", "sqlite", "postgresql", "mariadb", "redis"]
#: What ``call`` in the real-server test returns: status, body, Set-Cookie, token.
Reply = tuple[int, bytes, str | None, str | None]


class User(UserMixin):  # type: ignore[misc]
    def __init__(self, id: int) -> None:
        self.id = id


# --------------------------------------------------------------------------
# Backends: one database (or Redis prefix) per backend for the module, and
# a factory of apps, each starting with an empty store.


class Backend:
    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        self.apps: list[Flask] = []
        self.redis_prefixes: list[str] = []
        self.url: str | None = None
        self.users_url: str | None = None
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp}/review9.sqlite3"
        elif kind == "postgresql":
            engine = sa.create_engine(PG_ROOT + "test", isolation_level="AUTOCOMMIT")
            try:
                with engine.connect() as db:
                    db.execute(sa.text(f'CREATE DATABASE "{DB_NAME}"'))
            except sa.exc.OperationalError as e:
                pytest.skip(f"PostgreSQL is not there: {e}")
            finally:
                engine.dispose()
            self.url = PG_ROOT + DB_NAME
        elif kind == "mariadb":
            engine = sa.create_engine(MY_ROOT)
            try:
                with engine.connect() as db:
                    db.execute(sa.text(f"CREATE DATABASE `{DB_NAME}`"))
            except sa.exc.OperationalError as e:
                pytest.skip(f"MariaDB is not there: {e}")
            finally:
                engine.dispose()
            self.url = MY_ROOT + DB_NAME
        elif kind == "redis":
            import redis

            try:
                redis.Redis.from_url(REDIS_URL).ping()
            except redis.RedisError as e:
                pytest.skip(f"Redis is not there: {e}")
            self.users_url = f"sqlite:///{tmp}/review9_users.sqlite3"
        self.migrated = False

    def make_app(self, **config: t.Any) -> Flask:
        app = Flask(f"review9_{uuid.uuid4().hex[:6]}")
        app.config.update(SECRET_KEY=SECRET, **config)
        if self.kind == "memory":
            users = {1: User(1), 2: User(2)}
            ks = KitSession(app, store=MemoryStore(user_loader=users.get, user_id_type=int))
        elif self.kind == "redis":
            prefix = f"review9:{uuid.uuid4().hex[:10]}:"
            self.redis_prefixes.append(prefix)
            app.config.update(
                KITSESSION_REDIS_URL=REDIS_URL,
                KITSESSION_REDIS_PREFIX=prefix,
                KITSESSION_DATABASE_URL=self.users_url,
            )
            ks = KitSession(app)
            if not self.migrated:
                self._add_users(t.cast(str, self.users_url), create=True)
        else:
            app.config["KITSESSION_DATABASE_URL"] = self.url
            ks = KitSession(app)
            if not self.migrated:
                migrate.upgrade(app)
                self._add_users(t.cast(str, self.url))
            engine = app.extensions["kitsession"].store.engine
            with engine.begin() as db:  # every app starts with an empty store
                db.execute(
                    sa.text(
                        'DELETE FROM "session"'
                        if self.kind != "mariadb"
                        else "DELETE FROM `session`"
                    )
                )
        self.migrated = True
        app.extensions["review9_kitsession"] = ks
        self.apps.append(app)
        return app

    def _add_users(self, url: str, create: bool = False) -> None:
        engine = sa.create_engine(url)
        try:
            if create:
                user_table.create(engine, checkfirst=True)
            with engine.begin() as db:
                for i in (1, 2):
                    if (
                        db.execute(sa.select(user_table.c.id).where(user_table.c.id == i)).first()
                        is None
                    ):
                        db.execute(
                            user_table.insert(),
                            {"id": i, "email": f"user{i}@example.com", "password_hash": "x"},
                        )
        finally:
            engine.dispose()

    def close(self) -> None:
        for app in self.apps:
            store = app.extensions["kitsession"].store
            engine = getattr(store, "engine", None)
            if engine is not None:
                engine.dispose()
            for name in ("redis", "client", "_redis", "_client"):
                client = getattr(store, name, None)
                if client is not None and hasattr(client, "close"):
                    client.close()
        if self.kind == "postgresql":
            engine = sa.create_engine(PG_ROOT + "test", isolation_level="AUTOCOMMIT")
            with engine.connect() as db:
                db.execute(sa.text(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)'))
            engine.dispose()
        elif self.kind == "mariadb":
            engine = sa.create_engine(MY_ROOT)
            with engine.connect() as db:
                db.execute(sa.text(f"DROP DATABASE IF EXISTS `{DB_NAME}`"))
            engine.dispose()
        elif self.kind == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for prefix in self.redis_prefixes:
                keys = list(client.scan_iter(match=prefix + "*", count=1000))
                if keys:
                    client.delete(*keys)
            client.close()


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> t.Iterator[Backend]:
    b = Backend(request.param, tmp_path_factory.mktemp(f"review9_{request.param}"))
    yield b
    b.close()


def set_cookies(response: TestResponse) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def cookie_value(client: FlaskClient, name: str = "session") -> str | None:
    cookie = client.get_cookie(name)
    return cookie.value if cookie is not None else None


def json_of(response: TestResponse) -> t.Any:
    """The JSON body of a response (dynamic: whatever the view returned)."""
    return response.json


def dump_view(app: Flask) -> None:
    @app.get("/dump")
    def dump() -> bytes:
        return base64.b64encode(pickle.dumps((dict(session), current_session.user_id)))


def dumped(client: FlaskClient, cookie: str | None = None) -> t.Any:
    """The session ``client`` has, or (with ``cookie``) the one a browser
    holding only that cookie has (a new client: the test client's cookie
    jar would replace the header)."""
    headers: dict[str, str] | None = None
    if cookie is not None:
        client = client.application.test_client()
        headers = {"Cookie": f"session={cookie}"}
    rv = client.get("/dump", headers=headers)
    assert rv.status_code == 200
    return pickle.loads(base64.b64decode(rv.data))


# --------------------------------------------------------------------------
# 1. Flashed messages across login and logout


def flash_app(backend: Backend) -> Flask:
    app = backend.make_app()
    dump_view(app)

    @app.get("/login/<int:uid>")
    @with_new_session
    def login(uid: int) -> str:
        if request.args.get("flash"):
            flash(f"welcome, user {uid}")
        session["user_id"] = uid
        return "ok"

    @app.get("/private")
    def private() -> str:
        flash(f"private note for user {current_session.user_id}: your balance is 1234")
        return "ok"

    @app.get("/logout")
    @with_delete_session
    def logout() -> str:
        flash("signed out")
        return "ok"

    @app.get("/messages")
    def messages() -> Response:
        return jsonify(get_flashed_messages())

    return app


def test_a_logout_that_flashes_carries_nothing_of_the_signed_in_session(backend: Backend) -> None:
    """docs/security.md, section 0: "Nothing of a signed-in session follows it
    into an anonymous one"; docs/lifecycle.md: "What the request wrote, but
    for the user keys, and what it writes afterwards go into a new, anonymous
    session ... a view may flash "Signed out" before or after logout_user()".

    A message flashed for the signed-in user and not shown yet must not be
    shown to whoever uses the browser after the logout."""
    app = flash_app(backend)
    client = app.test_client()
    client.get("/login/1")
    client.get("/private")  # a message for user 1, not displayed yet
    client.get("/logout")
    assert dumped(client)[1] is None
    messages = json_of(client.get("/messages"))
    assert "signed out" in messages
    assert not [m for m in messages if "user 1" in m], messages


def test_a_login_as_another_user_that_flashes_carries_nothing_of_the_first(
    backend: Backend,
) -> None:
    """docs/security.md, section 0: "Nothing crosses from one user to another.
    When the session starts over, only what the request itself wrote follows
    it ... never a user key naming someone else"; docs/lifecycle.md: "Nothing
    crosses from one user to another"."""
    app = flash_app(backend)
    client = app.test_client()
    client.get("/login/1")
    client.get("/private")  # a message for user 1, not displayed yet
    client.get("/login/2?flash=1")  # user 2 signs in on the same browser
    assert dumped(client)[1] == 2
    messages = json_of(client.get("/messages"))
    assert "welcome, user 2" in messages
    assert not [m for m in messages if "user 1" in m], messages


def test_flask_login_logout_user_after_a_flash_carries_nothing_of_the_user(
    backend: Backend,
) -> None:
    """docs/flask-login.md: "logout_user() deletes the stored session and
    expires its cookie; what the request writes afterwards (a flash, another
    login_user) goes into a new session"; docs/security.md, section 0:
    "Nothing of a signed-in session follows it into an anonymous one". Here
    the flash comes first, as docs/lifecycle.md allows ("before or after")."""
    app = backend.make_app()
    login_manager = LoginManager(app)

    @login_manager.user_loader
    def load_user(uid: str) -> User | None:
        return User(int(uid)) if int(uid) in (1, 2) else None

    with app.app_context():
        app.extensions["review9_kitsession"].init_login_manager(login_manager)

    @app.get("/login/<int:uid>")
    def login(uid: int) -> str:
        login_user(User(uid))
        flash(f"private note for user {uid}")
        return "ok"

    @app.get("/logout")
    def logout() -> str:
        flash("signed out")
        logout_user()
        return "ok"

    @app.get("/who")
    def who() -> Response:
        uid = current_user.get_id() if current_user.is_authenticated else None
        return jsonify(uid, get_flashed_messages())

    client = app.test_client()
    client.get("/login/1")
    client.get("/logout")
    uid, messages = json_of(client.get("/who"))
    assert uid is None
    assert "signed out" in messages
    assert "private note for user 1" not in messages


# --------------------------------------------------------------------------
# 2. Request shapes


def test_a_write_inside_a_streamed_response_is_stored_or_refused(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/session-data.md: "a value is either stored and read back exactly
    by the next request ... or refused where it is set, with SessionDataError";
    docs/security.md, section 6: "A value is stored and read back exactly ...
    or refused where the app sets it".

    A view streams with Flask's ``stream_with_context`` (so that ``session``
    is usable in the generator) and writes the session while streaming. The
    write is accepted without an error, yet the next request does not see it.

    (Maintainers, after review 9: the docs now say a change made while the
    response streams comes after the save and is not stored, as with Flask's
    own session, and that a warning is logged; this test checks that.)"""
    app = backend.make_app()
    dump_view(app)

    @app.get("/stream")
    def stream() -> Response:
        session["before"] = 1

        def body() -> t.Iterator[str]:
            yield "a"
            session["while_streaming"] = 2
            yield "b"

        return Response(stream_with_context(body()))

    client = app.test_client()
    raised: Exception | None = None
    try:
        rv = client.get("/stream")
        assert rv.data == b"ab"
    except Exception as e:  # refused where it is set: acceptable
        raised = e
    data, _ = dumped(client)
    assert raised is None
    assert data.get("before") == 1
    assert "while_streaming" not in data
    assert "the change is not stored" in caplog.text, "the lost write was not logged"


def test_request_shapes_keep_or_drop_exactly_what_the_docs_say(backend: Backend) -> None:
    """docs/security.md, section 6: "A request that ends in a 5xx (an
    exception, the app's own 500 page, a 503) keeps none of its session
    changes; a 4xx keeps them"; README: "nothing is written while nothing
    changes"; HEAD runs the view as GET does, OPTIONS runs none."""
    app = backend.make_app(PROPAGATE_EXCEPTIONS=False)
    dump_view(app)
    bp = Blueprint("bp", __name__)

    @bp.get("/bp/raise")
    def bp_raise() -> t.NoReturn:
        session["from_bp"] = True
        raise ValueError("boom")

    @bp.errorhandler(ValueError)
    def bp_handler(e: ValueError) -> tuple[str, int]:
        session["from_bp_handler"] = True
        return "blueprint error page", 500

    @bp.get("/bp/recover")
    def bp_recover() -> t.NoReturn:
        session["bp_recovered"] = True
        raise KeyError("handled")

    @bp.errorhandler(KeyError)
    def bp_recovered(e: KeyError) -> tuple[str, int]:
        return "handled", 200

    app.register_blueprint(bp)

    @app.get("/w")
    def w() -> str:
        session["n"] = session.get("n", 0) + 1
        return "ok"

    @app.get("/abort/<int:code>")
    def abort_with(code: int) -> t.NoReturn:
        session[f"abort{code}"] = True
        abort(code)

    @app.get("/after-this-request")
    def atr() -> str:
        @after_this_request
        def late(response: Response) -> Response:
            session["late"] = True
            return response

        return "ok"

    @app.get("/redirect")
    def redir() -> ResponseReturnValue:
        session["redirected"] = True
        return redirect("/dump")

    @app.before_request
    def before() -> None:
        if request.path == "/before-fails":
            session["before_fails"] = True
            raise RuntimeError("before_request")

    @app.get("/before-fails")
    def before_fails() -> str:
        return "never"

    @app.after_request
    def after(response: Response) -> Response:
        if request.path == "/after-fails":
            raise RuntimeError("after_request")
        return response

    @app.get("/after-fails")
    def after_fails() -> str:
        session["after_fails"] = True
        return "ok"

    client = app.test_client()
    client.get("/w")
    assert client.head("/w").status_code == 200
    assert dumped(client)[0]["n"] == 2
    rv = client.options("/w")
    assert rv.status_code == 200 and set_cookies(rv) == []
    assert client.get("/abort/400").status_code == 400
    assert client.get("/abort/404").status_code == 404
    assert client.get("/abort/500").status_code == 500
    assert client.get("/abort/503").status_code == 503
    assert client.get("/bp/raise").status_code == 500
    assert client.get("/bp/recover").status_code == 200
    assert client.get("/after-this-request").status_code == 200
    assert client.get("/redirect").status_code == 302
    assert client.get("/before-fails").status_code == 500
    assert client.get("/after-fails").status_code == 500
    data, _ = dumped(client)
    assert data == {
        "n": 2,
        "abort400": True,
        "abort404": True,
        "bp_recovered": True,
        "late": True,
        "redirected": True,
    }


def test_a_logout_that_ends_in_a_5xx_deletes_nothing(backend: Backend) -> None:
    """docs/lifecycle.md: "@with_delete_session ... the stored session is
    deleted and the cookie expired (when the request fails with a 5xx,
    nothing is deleted)"."""
    app = backend.make_app(PROPAGATE_EXCEPTIONS=False)
    dump_view(app)

    @app.get("/login")
    @with_new_session
    def login() -> str:
        session["user_id"] = 1
        return "ok"

    @app.get("/logout-fails")
    @with_delete_session
    def logout_fails() -> t.NoReturn:
        flash("bye")
        abort(503)

    client = app.test_client()
    client.get("/login")
    token = cookie_value(client)
    rv = client.get("/logout-fails")
    assert rv.status_code == 503
    assert not any(c.startswith("session=") for c in set_cookies(rv))
    assert cookie_value(client) == token
    assert dumped(client) == ({"user_id": 1}, 1)


def test_async_views_and_test_request_context(backend: Backend) -> None:
    """docs/api.rst: "Helpers ... In a request, or in an app context";
    docs/security.md, section 1: "Whatever a client sends as its session
    cookie, it gets ... a fresh anonymous session"; an ``async def`` view is
    a Flask view like any other."""
    app = backend.make_app()
    dump_view(app)

    @app.get("/async")
    async def async_write() -> str:
        session["async"] = [1, (2, 3)]
        return "ok"

    client = app.test_client()
    assert client.get("/async").status_code == 200
    assert dumped(client)[0] == {"async": [1, (2, 3)]}
    token = t.cast(str, cookie_value(client))
    before = t.cast(ServerSession, session_of(client))
    with app.test_request_context(headers={"Cookie": f"session={token}"}):
        assert dict(session) == {"async": [1, (2, 3)]}
        session["never_saved"] = True  # no response: Flask saves nothing
    with app.test_request_context(headers={"Cookie": "session=\u00ff" + "x" * 500}):
        assert dict(session) == {}
    with app.test_request_context(headers={"Cookie": f"session={token[:-3]}abc"}):
        assert dict(session) == {}
    after = t.cast(ServerSession, session_of(client))
    assert dict(after) == dict(before) and after.updated_at == before.updated_at


# --------------------------------------------------------------------------
# 3. Flask's session settings


def test_cookie_settings_are_used_to_set_and_to_expire_the_cookie(backend: Backend) -> None:
    """docs/configuration.md: "SESSION_COOKIE_NAME, _DOMAIN, _PATH, _SECURE,
    _HTTPONLY, _SAMESITE, _PARTITIONED: The cookie, as for Flask's own
    session." An expiring cookie must carry the same Domain and Path, or the
    browser keeps the old one."""
    app = backend.make_app(
        SESSION_COOKIE_NAME="__Secure-sid",
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_HTTPONLY=False,
        SESSION_COOKIE_SAMESITE="None",
        SESSION_COOKIE_PARTITIONED=True,
    )

    @app.get("/app/write")
    def write() -> str:
        session["a"] = 1
        return "ok"

    @app.get("/app/login")
    @with_new_session
    def login() -> str:
        session["user_id"] = 1
        return "ok"

    @app.get("/app/logout")
    @with_delete_session
    def logout() -> str:
        return "ok"

    @app.get("/app/clear")
    def clear() -> str:
        session.clear()
        return "ok"

    client = app.test_client()
    base = "https://www.example.com"
    for path in ["/app/write", "/app/login", "/app/logout", "/app/write", "/app/clear"]:
        rv = client.get(path, base_url=base)
        (cookie,) = set_cookies(rv)
        attrs = [a.strip() for a in cookie.split(";")]
        assert attrs[0].startswith("__Secure-sid="), cookie
        for expected in [
            "Domain=example.com",
            "Path=/app",
            "Secure",
            "SameSite=None",
            "Partitioned",
        ]:
            assert expected in attrs, (path, cookie)
        assert "HttpOnly" not in attrs
        if path in ("/app/logout", "/app/clear"):
            assert "Max-Age=0" in attrs


def test_permanent_toggle_refresh_setting_and_lifetimes(backend: Backend) -> None:
    """docs/configuration.md: "PERMANENT_SESSION_LIFETIME: The default idle
    timeout. A permanent session's cookie expires with the stored session;
    others are browser-session cookies"; docs/lifecycle.md: the idle timeout
    slides "never past the absolute one"; flask-conformance.md: "Responses of
    a permanent session still carry Vary: Cookie"."""
    app = backend.make_app(
        PERMANENT_SESSION_LIFETIME=3600,  # Flask accepts seconds as well
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(minutes=30),
    )
    dump_view(app)

    @app.get("/permanent/<int:on>")
    def permanent(on: int) -> str:
        session.permanent = bool(on)
        session["touched"] = on
        return "ok"

    @app.get("/read")
    def read() -> str:
        return str(session.get("touched"))

    client = app.test_client()
    rv = client.get("/permanent/1")
    (cookie,) = set_cookies(rv)
    expires = [a.split("=", 1)[1] for a in cookie.split("; ") if a.startswith("Expires=")]
    assert expires, cookie
    stored = t.cast(ServerSession, session_of(client))
    assert (
        abs(
            (
                t.cast(datetime, parse_date(expires[0])) - t.cast(datetime, stored.expires_at)
            ).total_seconds()
        )
        <= 1
    )
    assert (t.cast(datetime, stored.expires_at) - t.cast(datetime, stored.created_at)) <= timedelta(
        minutes=30, seconds=1
    )
    rv = client.get("/read")
    assert rv.headers.get("Vary") == "Cookie"
    assert set_cookies(rv) == []  # within the touch interval
    rv = client.get("/permanent/0")
    (cookie,) = set_cookies(rv)
    assert "Expires=" not in cookie
    assert dumped(client)[0] == {"_permanent": False, "touched": 0}


def test_secret_key_rotation_re_signs_and_keeps_the_cookie_kind(backend: Backend) -> None:
    """docs/configuration.md: "old keys in the fallbacks keep sessions valid
    while you rotate, and a cookie signed with one is signed again with the
    current key"; docs/security.md, section 5: "in the same response"."""
    app = backend.make_app()
    dump_view(app)

    @app.get("/write/<int:permanent>")
    def write(permanent: int) -> str:
        session.permanent = bool(permanent)
        session["data"] = "kept"
        return "ok"

    for permanent in (0, 1):
        client = app.test_client()
        app.config.update(SECRET_KEY=SECRET, SECRET_KEY_FALLBACKS=[])
        client.get(f"/write/{permanent}")
        old = t.cast(str, cookie_value(client))
        app.config.update(SECRET_KEY="review9-new-key", SECRET_KEY_FALLBACKS=[SECRET])
        rv = client.get("/dump")
        (cookie,) = set_cookies(rv)
        assert ("Expires=" in cookie) == bool(permanent)
        new = t.cast(str, cookie_value(client))
        assert new != old and new.split(".")[0] == old.split(".")[0]
        assert pickle.loads(base64.b64decode(rv.data))[0]["data"] == "kept"
        assert set_cookies(client.get("/dump")) == []  # signed once
        app.config.update(SECRET_KEY_FALLBACKS=[])
        assert dumped(client)[0]["data"] == "kept"
        assert dumped(client, old) == ({}, None)
        app.config.update(SECRET_KEY=SECRET)


def test_reads_write_nothing_and_vary_on_cookie(backend: Backend) -> None:
    """README: "nothing is written while nothing changes"; docs/lifecycle.md:
    "A request that writes nothing leaves that cookie alone"; Flask's
    session adds "Vary: Cookie" when the session was accessed, and only then
    (docs/flask-conformance.md: "when the cookie is set and with which
    attributes, Vary: Cookie")."""
    app = backend.make_app()

    @app.get("/static-like")
    def static_like() -> str:
        return "no session here"

    @app.get("/read")
    def read() -> str:
        return str(session.get("cart"))

    @app.get("/pop-missing")
    def pop_missing() -> str:
        session.pop("missing", None)
        return "ok"

    @app.get("/setdefault-existing")
    def setdefault_existing() -> str:
        session.setdefault("cart", ["other"])
        return "ok"

    @app.get("/contains")
    def contains() -> str:
        return str("cart" in session)

    @app.get("/write")
    def write() -> str:
        session["cart"] = ["apples"]
        return "ok"

    client = app.test_client()
    # A visitor without a cookie: reads store nothing, set no cookie.
    for path in ["/static-like", "/read", "/pop-missing", "/contains"]:
        rv = client.get(path)
        assert rv.status_code == 200 and set_cookies(rv) == [], path
    assert client.get("/static-like").headers.get("Vary") is None
    assert client.get("/read").headers.get("Vary") == "Cookie"
    client.get("/write")
    stored = t.cast(ServerSession, session_of(client))
    for path in ["/static-like", "/read", "/pop-missing", "/setdefault-existing", "/contains"]:
        rv = client.get(path)
        assert rv.status_code == 200 and set_cookies(rv) == [], path
    assert client.get("/static-like").headers.get("Vary") is None
    assert client.get("/contains").headers.get("Vary") == "Cookie"
    after = t.cast(ServerSession, session_of(client))
    assert dict(after) == {"cart": ["apples"]}
    assert after.updated_at == stored.updated_at and after.last_seen_at == stored.last_seen_at


def test_nested_values_changed_in_place_follow_flasks_rule(backend: Backend) -> None:
    """docs/configuration.md: "As with Flask's session, set session.modified =
    True after changing a mutable value in place"; docs/security.md, section
    6: what only the save can see is refused there and "nothing is written"."""
    app = backend.make_app(PROPAGATE_EXCEPTIONS=False)
    dump_view(app)

    @app.get("/init")
    def init() -> str:
        session["cart"] = {"items": [1]}
        return "ok"

    @app.get("/append/<int:mark>")
    def append(mark: int) -> str:
        session["cart"]["items"].append(2)
        if mark:
            session.modified = True
        return "ok"

    @app.get("/append-bad")
    def append_bad() -> str:
        session["cart"]["items"].append({1, 2})  # a set: not storable
        session.modified = True
        return "ok"

    client = app.test_client()
    client.get("/init")
    client.get("/append/0")
    assert dumped(client)[0] == {"cart": {"items": [1]}}
    client.get("/append/1")
    assert dumped(client)[0] == {"cart": {"items": [1, 2]}}
    assert client.get("/append-bad").status_code == 500
    assert dumped(client)[0] == {"cart": {"items": [1, 2]}}


# --------------------------------------------------------------------------
# 4. Flask-WTF and Flask-Login


def test_csrf_token_across_logins_with_a_form_built_before_the_login(backend: Backend) -> None:
    """docs/security.md, section 9: "A JSON client's token, from before the
    login or from the login's response, works after it"; "The token never
    passes to another user (a login as someone else drops it, and the
    login's response then hands out a new one)". The login view builds its
    FlaskForm (which asks Flask-WTF for a token) before it links the user."""
    app = backend.make_app(WTF_CSRF_TIME_LIMIT=None)
    CSRFProtect(app)

    class LoginForm(FlaskForm):  # type: ignore[misc]
        uid = StringField()

    @app.get("/token")
    def token() -> str:
        return t.cast(str, generate_csrf())

    @app.post("/login")
    @with_new_session
    def login() -> ResponseReturnValue:
        form = LoginForm()
        if not form.validate_on_submit():
            return jsonify(form.errors), 400
        session["user_id"] = int(form.uid.data)
        return jsonify(csrf_token=generate_csrf())

    @app.post("/act")
    def act() -> str:
        return str(current_session.user_id)

    client = app.test_client()
    before = client.get("/token").data.decode()
    rv = client.post("/login", data={"uid": "1", "csrf_token": before})
    assert rv.status_code == 200
    from_login = json_of(rv)["csrf_token"]
    assert client.post("/act", headers={"X-CSRFToken": before}).data == b"1"
    assert client.post("/act", headers={"X-CSRFToken": from_login}).data == b"1"
    rv = client.post("/login", data={"uid": "2", "csrf_token": from_login})
    assert rv.status_code == 200
    for_2 = json_of(rv)["csrf_token"]
    assert client.post("/act", headers={"X-CSRFToken": for_2}).data == b"2"
    assert client.post("/act", headers={"X-CSRFToken": before}).status_code == 400
    assert client.post("/act", headers={"X-CSRFToken": from_login}).status_code == 400


def test_remember_me_restore_gets_a_new_token_and_logout_ends_it(backend: Backend) -> None:
    """docs/flask-login.md: "a remember-cookie login gets a new token too";
    "logout_user() deletes the stored session and expires its cookie"."""
    app = backend.make_app()
    dump_view(app)
    login_manager = LoginManager(app)

    @login_manager.user_loader
    def load_user(uid: str) -> User | None:
        return User(int(uid)) if int(uid) in (1, 2) else None

    with app.app_context():
        app.extensions["review9_kitsession"].init_login_manager(login_manager)

    @app.get("/login")
    def login() -> str:
        login_user(User(1), remember=True)
        session["cart"] = ["x"]
        return "ok"

    @app.get("/logout")
    def logout() -> str:
        logout_user()
        return "ok"

    @app.get("/who")
    def who() -> Response:
        return jsonify(
            current_user.get_id() if current_user.is_authenticated else None,
            current_session.user_id,
        )

    client = app.test_client()
    client.get("/login")
    first = cookie_value(client)
    client.delete_cookie("session")  # the browser was closed
    assert client.get("/who").json == ["1", 1]
    restored = cookie_value(client)
    assert restored is not None and restored != first
    assert dumped(client, first) == ({}, None)
    assert dumped(client)[1] == 1
    client.get("/logout")
    assert dumped(client, restored) == ({}, None)


# --------------------------------------------------------------------------
# 5. Concurrency on a real server


def test_a_write_in_flight_across_logout_sign_out_others_or_regenerate(
    backend: Backend,
) -> None:
    """docs/security.md, section 0: "A revoked session never comes back, not
    even through a request in flight across the revocation"; "a request that
    crosses a login or a regenerate() of the same browser ... never signs it
    out"; section 2: "'Sign out everywhere' sticks under load"."""
    app = backend.make_app()
    gate = threading.Event()
    entered = threading.Event()

    @app.post("/login")
    @with_new_session
    def login() -> str:
        session["user_id"] = 1
        return "ok"

    @app.post("/slow-write")
    def slow_write() -> str:
        session["x"] = session.get("x", 0) + 1
        entered.set()
        gate.wait(20)
        return "ok"

    @app.post("/logout")
    @with_delete_session
    def logout() -> str:
        return "ok"

    @app.post("/sign-out-others")
    def others() -> str:
        return str(remove_all_sessions_for_user(current_session.user_id, current_session))

    @app.post("/regenerate")
    def regen() -> str:
        regenerate()
        return "ok"

    @app.get("/who")
    def who() -> Response:
        return jsonify(current_session.user_id, dict(session))

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def call(method: str, path: str, cookie: str | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", server.server_port, timeout=30)
        try:
            conn.request(method, path, headers={"Cookie": f"session={cookie}"} if cookie else {})
            resp = conn.getresponse()
            body = resp.read()
            set_cookie = resp.getheader("Set-Cookie")
            token = set_cookie.split(";")[0].split("=", 1)[1] if set_cookie else None
            return resp.status, body, set_cookie, token
        finally:
            conn.close()

    try:
        for action in ["logout", "sign-out-others", "regenerate"]:
            gate.clear()
            entered.clear()
            laptop = call("POST", "/login")[3]
            phone = call("POST", "/login")[3]
            result: dict[str, Reply] = {}
            t = threading.Thread(
                target=lambda result=result, laptop=laptop: result.setdefault(
                    "slow", call("POST", "/slow-write", laptop)
                )
            )
            t.start()
            assert entered.wait(10)
            acting = phone if action == "sign-out-others" else laptop
            status, _, _, new_token = call("POST", f"/{action}", acting)
            assert status == 200
            gate.set()
            t.join(30)
            slow_status, _, slow_cookie, _ = result["slow"]
            assert slow_status == 200
            assert slow_cookie is None, (action, slow_cookie)  # neither revived nor signed out
            assert call("GET", "/who", laptop)[1] == b"[null,{}]\n", action
            if action == "regenerate":
                assert call("GET", "/who", new_token)[1] == b'[1,{"user_id":1}]\n'
            if action != "logout":
                assert call("GET", "/who", phone)[1] == b'[1,{"user_id":1}]\n'
            call("POST", "/sign-out-others", phone)
            call("POST", "/logout", phone)
    finally:
        gate.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


# --------------------------------------------------------------------------
# 6. Several apps in one process sharing one store


def test_two_apps_sharing_one_memory_store_keep_their_keys_and_signals() -> None:
    """docs/signals.md: "The sender is always the app, so connect_via(app)
    hears only that app (one store may serve several)"; docs/security.md,
    section 1: a cookie "the app cannot verify ... is anonymous". (Memory
    store only: the store object is what is shared.)"""
    from flask_kitsession import signals

    store = MemoryStore()
    apps: list[Flask] = []
    for key in ("key-a", "key-b"):
        app = Flask(f"review9_{key}")
        app.config["SECRET_KEY"] = key
        KitSession(app, store=store)
        dump_view(app)

        @app.get("/write")
        def write() -> str:
            session["app"] = request.host
            return "ok"

        apps.append(app)
    heard: dict[int, list[t.Any]] = {0: [], 1: []}
    a, b = apps

    def receiver_a(sender: Flask, **kw: t.Any) -> None:
        heard[0].append(kw["session"].id)

    def receiver_b(sender: Flask, **kw: t.Any) -> None:
        heard[1].append(kw["session"].id)

    with (
        signals.session_created.connected_to(receiver_a, a),
        signals.session_created.connected_to(receiver_b, b),
    ):
        client_a = a.test_client()
        client_a.get("/write")
        token = cookie_value(client_a)
        client_b = b.test_client()
        assert dumped(client_b, token) == ({}, None)
        rv = client_b.get("/dump", headers={"Cookie": f"session={token}"})
        assert set_cookies(rv) == []
    assert len(heard[0]) == 1 and heard[1] == []
    assert dumped(client_a)[0] == {"app": "localhost"}


# --------------------------------------------------------------------------
# 7. A stateful model of one browser's session (hypothesis)

KEYS = st.sampled_from(["cart", "n", " t", "_flashes", "csrf_token", "", "a.b", "\x00k"])
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.binary(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
BAD_COOKIES = st.one_of(
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=';,"\\'),
        max_size=120,
    ),
    st.builds(
        lambda t: t + "." + t,
        st.text(
            alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_",
            min_size=43,
            max_size=43,
        ),
    ),
)


def session_model_app(backend: Backend) -> Flask:
    app = backend.make_app(PROPAGATE_EXCEPTIONS=False)
    dump_view(app)

    @app.post("/op")
    def op() -> str:
        name, key, value = pickle.loads(request.get_data())
        if name == "set":
            session[key] = value
        elif name == "pop":
            session.pop(key, None)
        elif name == "setdefault":
            session.setdefault(key, value)
        elif name == "clear":
            session.clear()
        elif name == "permanent":
            session.permanent = value
        elif name == "append":  # in place, with or without modified
            if isinstance(session.get(key), list):
                session[key].append(1)
                if value:
                    session.modified = True
        elif name == "read":
            session.get(key)
        return "ok"

    return app


def test_a_browser_session_follows_a_model(backend: Backend) -> None:
    """docs/session-data.md: "a value is either stored and read back exactly
    by the next request ... or refused where it is set"; docs/configuration.md
    "set session.modified = True after changing a mutable value in place";
    README: "nothing is written while nothing changes" and "a bad cookie gives
    a fresh anonymous session, never an error"."""

    class BrowserSession(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.app = session_model_app(backend)
            self.client = self.app.test_client()
            self.model: dict[str, t.Any] = {}

        def op(self, name: str, key: str | None = None, value: t.Any = None) -> TestResponse:
            rv = self.client.post("/op", data=pickle.dumps((name, key, value)))
            assert rv.status_code == 200, (name, key, rv.status_code)
            return rv

        @rule(key=KEYS, value=VALUES)
        def set(self, key: str, value: t.Any) -> None:
            self.op("set", key, value)
            self.model[key] = value

        @rule(key=KEYS)
        def pop(self, key: str) -> None:
            self.op("pop", key)
            self.model.pop(key, None)

        @rule(key=KEYS, value=VALUES)
        def setdefault(self, key: str, value: t.Any) -> None:
            self.op("setdefault", key, value)
            self.model.setdefault(key, value)

        @rule()
        def clear(self) -> None:
            self.op("clear")
            self.model.clear()

        @rule(value=st.booleans())
        def permanent(self, value: bool) -> None:
            rv = self.op("permanent", None, value)
            self.model["_permanent"] = value
            cookie = [c for c in set_cookies(rv) if c.startswith("session=")]
            assert cookie and (("Expires=" in cookie[0]) == value)

        @rule(key=KEYS, modified=st.booleans())
        def append(self, key: str, modified: bool) -> None:
            before = session_of(self.client)
            self.op("append", key, modified)
            if isinstance(self.model.get(key), list) and modified:
                self.model[key] = [*self.model[key], 1]
            elif before is not None:
                after = t.cast(ServerSession, session_of(self.client))
                assert after.updated_at == before.updated_at  # nothing changed: nothing written

        @rule(key=KEYS)
        def read(self, key: str) -> None:
            before = session_of(self.client)
            rv = self.op("read", key)
            assert set_cookies(rv) == []
            after = session_of(self.client)
            if before is not None:
                assert after is not None and after.updated_at == before.updated_at

        @rule(cookie=BAD_COOKIES)
        def bad_cookie(self, cookie: str) -> None:
            other = self.app.test_client()
            rv = other.get("/dump", headers={"Cookie": f"session={cookie}"})
            assert rv.status_code == 200
            assert pickle.loads(base64.b64decode(rv.data)) == ({}, None)
            assert set_cookies(rv) == []

        @invariant()
        def stored_data_is_the_model(self) -> None:
            data, uid = dumped(self.client)
            assert uid is None
            assert data == self.model
            assert {k: type(v) for k, v in data.items()} == {
                k: type(v) for k, v in self.model.items()
            }

    BrowserSession.TestCase.settings = settings(
        max_examples=50,
        stateful_step_count=15,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    BrowserSession.TestCase().runTest()
