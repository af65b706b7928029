"""flask.session on the server: cookies, reads, writes, touches and expiry."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from benchmarks.queries import QueryRecorder
from flask import Flask
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import KitSession

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.backends import SQLBackend
from .support.clients import log_in
from .support.clients import session_cookie


def token_of(cookie: str) -> str:
    return cookie.rsplit(".", 1)[0]


def test_anonymous_visitor_gets_no_row_and_no_cookie(client: FlaskClient, backend: Backend) -> None:
    with backend.operations() as operations:
        response = client.get("/plain")
        client.get("/get")
        client.get("/me")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    assert session_cookie(client) is None
    assert operations == []
    assert backend.rows() == []


def test_writing_stores_the_session_and_sets_a_signed_token_cookie(
    client: FlaskClient, backend: Backend
) -> None:
    response = client.post("/set", data={"color": "blue"})
    cookie = session_cookie(client)
    assert cookie is not None
    token, signature = cookie.rsplit(".", 1)
    assert len(token) == 43 and signature
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "Path=/" in set_cookie
    assert response.headers["Vary"] == "Cookie"

    [row] = backend.rows()
    assert row["id"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(row)
    assert client.get("/get").json == {"color": "blue"}


def test_session_data_is_shared_across_requests_and_changes_are_saved(
    client: FlaskClient,
) -> None:
    client.post("/set", data={"a": "1"})
    client.post("/set", data={"b": "2"})
    assert client.get("/get").json == {"a": "1", "b": "2"}


def test_unmodified_request_costs_one_read_and_no_write(
    client: FlaskClient, backend: Backend, clock: Clock
) -> None:
    user_id = backend.add_user("ada@example.com")
    log_in(client, user_id)
    clock.advance(seconds=30)
    with backend.operations() as operations:
        response = client.get("/me")
    assert response.json == {"user_id": user_id, "email": "ada@example.com"}
    assert len(backend.reads(operations)) == 1, operations
    assert backend.writes(operations) == []
    assert "Set-Cookie" not in response.headers


def test_touch_interval_slides_expiry_with_one_small_write(
    client: FlaskClient, backend: Backend, clock: Clock, app: Flask
) -> None:
    client.post("/set", data={"a": "1"})
    [before] = backend.rows()
    clock.advance(seconds=61)
    with backend.operations() as operations:
        client.get("/get")
    writes = backend.writes(operations)
    assert len(writes) == 1 and writes[0].startswith("UPDATE"), operations
    assert "data" not in writes[0].split("WHERE")[0].lower()
    [after] = backend.rows()
    assert after["expires_at"] > before["expires_at"]
    assert after["last_seen_at"] > before["last_seen_at"]
    # Within the new interval nothing is written again.
    clock.advance(seconds=30)
    with backend.operations() as operations:
        client.get("/get")
    assert backend.writes(operations) == []


def test_idle_timeout_is_enforced_on_the_server(
    app: Flask, client: FlaskClient, backend: Backend, clock: Clock
) -> None:
    client.post("/set", data={"a": "1"})
    cookie = session_cookie(client)
    idle = app.permanent_session_lifetime
    clock.advance(seconds=idle.total_seconds() + 1)
    response = client.get("/get")
    assert response.json == {}
    # A read leaves the stale cookie alone (it names nothing now), and a
    # client that keeps it gets nothing, every time.
    assert "Set-Cookie" not in response.headers
    client.set_cookie("session", cookie)  # type: ignore[arg-type]
    assert client.get("/get").json == {}
    assert backend.rows() == [] or all(row["expires_at"] <= clock.now for row in backend.rows())


def test_absolute_timeout_ends_a_session_in_constant_use(backend: Backend, clock: Clock) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=1),
        KITSESSION_IDLE_TIMEOUT=timedelta(minutes=20),
    )
    KitSession(app, store=backend.store, clock=clock)

    @app.route("/count", methods=["POST"])
    def count() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    client = app.test_client()
    for expected in range(1, 7):
        assert client.post("/count").text == str(expected)
        clock.advance(minutes=10)
    # 60 minutes after creation: expired although it was used every 10 minutes.
    assert client.post("/count").text == "1"


def test_user_is_loaded_with_the_session_in_one_statement(
    client: FlaskClient, backend: Backend, clock: Clock
) -> None:
    user_id = backend.add_user("grace@example.com")
    log_in(client, user_id)
    with backend.operations() as operations:
        response = client.get("/me")
    assert response.json == {"user_id": user_id, "email": "grace@example.com"}
    [read] = backend.reads(operations)
    if isinstance(backend, SQLBackend):
        assert "JOIN" in read


def test_authenticated_read_is_one_statement_in_one_round_trip(
    fast_read_backend: SQLBackend, clock: Clock
) -> None:
    """No BEGIN before the read, no ROLLBACK after it: just the SELECT."""
    sql_backend = fast_read_backend
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=sql_backend.store, clock=clock)
    add_views(app)
    client = app.test_client()
    user_id = sql_backend.add_user("ada@example.com")
    log_in(client, user_id)
    clock.advance(seconds=10)
    with QueryRecorder(sql_backend.engine) as recorder:
        response = client.get("/me")
    assert response.json == {"user_id": user_id, "email": "ada@example.com"}
    [statement] = recorder.statements
    assert statement.startswith("SELECT") and "JOIN" in statement
    assert recorder.round_trips == 1


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "",
        "x" * 4000,
        "a.b.c.d",
        "ünïcødé.sïg",
        "A" * 43 + ".forged-signature",
        "\x00\x01\x02",
    ],
)
def test_bad_cookies_give_a_fresh_anonymous_session(
    client: FlaskClient, backend: Backend, cookie: str
) -> None:
    client.set_cookie("session", cookie)
    with backend.operations() as operations:
        response = client.get("/get")
    assert response.status_code == 200
    assert response.json == {}
    # A cookie that is not a signed token never reaches the store.
    assert operations == []


def test_tampered_cookie_is_refused(client: FlaskClient, backend: Backend) -> None:
    client.post("/set", data={"secret": "mine"})
    cookie = session_cookie(client)
    assert cookie is not None
    token, signature = cookie.rsplit(".", 1)
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for forged in (f"{flipped}.{signature}", f"{token}.{signature[:-2]}", token):
        client.set_cookie("session", forged)
        response = client.get("/get")
        assert response.status_code == 200
        assert response.json == {}
    assert len(backend.rows()) == 1


def test_unknown_token_with_valid_signature_is_anonymous(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    client.post("/set", data={"a": "1"})
    backend.store.delete(backend.rows()[0]["id"])
    response = client.get("/get")
    assert response.json == {}
    # Left alone: a read that crosses another request's new token of the
    # same browser must not expire the new cookie.
    assert "Set-Cookie" not in response.headers


def test_clearing_the_session_deletes_it(client: FlaskClient, backend: Backend, app: Flask) -> None:
    @app.post("/clear")
    def clear() -> str:
        session.clear()
        return "cleared"

    client.post("/set", data={"a": "1"})
    response = client.post("/clear")
    assert backend.rows() == []
    assert "session=;" in response.headers["Set-Cookie"]


def test_revoked_session_is_not_resurrected_by_an_in_flight_save(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    user_id = backend.add_user("eve@example.com")

    @app.post("/slow-write")
    def slow_write() -> str:
        # Another device signs this one out while the request runs...
        backend.store.delete_all_for_user(user_id)
        # ...and the request then changes the session.
        session["late"] = "write"
        return "done"

    log_in(client, user_id)
    response = client.post("/slow-write")
    assert response.status_code == 200
    assert backend.rows() == []
    assert client.get("/me").json == {"user_id": None, "email": None}


def test_revoked_session_is_not_resurrected_by_a_touch(
    app: Flask, client: FlaskClient, backend: Backend, clock: Clock
) -> None:
    user_id = backend.add_user("eve@example.com")

    @app.get("/slow-read")
    def slow_read() -> str:
        backend.store.delete_all_for_user(user_id)
        return str(session.get("user_id"))

    log_in(client, user_id)
    clock.advance(minutes=5)  # past the touch interval
    client.get("/slow-read")
    assert backend.rows() == []


def test_secret_key_rotation_keeps_sessions_and_removal_ends_them(
    app: Flask, client: FlaskClient
) -> None:
    client.post("/set", data={"a": "1"})
    old_cookie = session_cookie(client)
    app.config["SECRET_KEY"] = "the new key"
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET_KEY]
    assert client.get("/get").json == {"a": "1"}
    # A client still holding a cookie signed only with the old key...
    stale = app.test_client()
    stale.set_cookie("session", old_cookie or "")
    app.config["SECRET_KEY_FALLBACKS"] = []
    # ...is out once the key is removed; one that came by meanwhile is not.
    assert stale.get("/get").json == {}
    assert client.get("/get").json == {"a": "1"}


def test_cookies_signed_with_an_old_key_are_signed_again(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    client.post("/set", data={"a": "1"})
    old_cookie = session_cookie(client)
    app.config["SECRET_KEY"] = "the new key"
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET_KEY]
    with backend.operations() as operations:
        response = client.get("/get")  # an unchanged session, within the touch interval
    assert response.json == {"a": "1"}
    # One touch confirms the session is still stored before its cookie is
    # signed again (a cookie renamed meanwhile is never re-sent).
    assert len(backend.writes(operations)) == 1
    new_cookie = session_cookie(client)
    assert new_cookie is not None and new_cookie != old_cookie
    assert new_cookie.rsplit(".", 1)[0] == (old_cookie or "").rsplit(".", 1)[0]  # same token
    # Signed again once: the next request, on the new key, sets nothing.
    assert "Set-Cookie" not in client.get("/get").headers
    # The old key can go now: this visitor stays signed in.
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/get").json == {"a": "1"}


def test_new_cookies_are_signed_with_the_newest_key(app: Flask, client: FlaskClient) -> None:
    app.config["SECRET_KEY"] = "the new key"
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET_KEY]
    client.post("/set", data={"a": "1"})
    app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get("/get").json == {"a": "1"}


def test_permanent_session_cookie_expires_with_the_stored_session(
    app: Flask, client: FlaskClient, backend: Backend, clock: Clock
) -> None:
    @app.post("/remember")
    def remember() -> str:
        session.permanent = True
        session["theme"] = "dark"
        return "ok"

    response = client.post("/remember")
    assert "Expires=" in response.headers["Set-Cookie"]
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is not None
    [row] = backend.rows()
    assert abs(cookie.expires.timestamp() - row["expires_at"].timestamp()) < 1
    # When the expiry slides, the cookie follows.
    clock.advance(minutes=2)
    response = client.get("/get")
    assert "Expires=" in response.headers["Set-Cookie"]


def test_browser_session_cookie_has_no_expiry(client: FlaskClient) -> None:
    response = client.post("/set", data={"a": "1"})
    assert "Expires" not in response.headers["Set-Cookie"]


def test_flask_cookie_settings_are_honoured(backend: Backend, clock: Clock) -> None:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_DOMAIN="example.org",
    )
    KitSession(app, store=backend.store, clock=clock)

    @app.post("/app/set")
    def set_value() -> str:
        session["a"] = 1
        return "ok"

    response = app.test_client().post("/app/set", base_url="https://example.org")
    header = response.headers["Set-Cookie"]
    assert header.startswith("sid=")
    for part in ("Secure", "SameSite=Strict", "Path=/app", "Domain=example.org", "HttpOnly"):
        assert part in header


def test_unsigned_cookies_when_signing_is_off(backend: Backend, clock: Clock) -> None:
    app = Flask(__name__)
    app.config["KITSESSION_SIGN_COOKIE"] = False
    KitSession(app, store=backend.store, clock=clock)

    @app.post("/set")
    def set_value() -> str:
        session["a"] = 1
        return "ok"

    @app.get("/get")
    def get_value() -> str:
        return str(session.get("a"))

    client = app.test_client()
    client.post("/set")
    cookie = session_cookie(client)
    assert cookie is not None and len(cookie) == 43 and "." not in cookie
    assert client.get("/get").text == "1"


def test_without_a_secret_key_writing_explains_the_problem(backend: Backend) -> None:
    app = Flask(__name__)
    with pytest.warns(UserWarning, match="SECRET_KEY is not set"):
        KitSession(app, store=backend.store)

    @app.post("/set")
    def set_value() -> str:
        session["a"] = 1
        return "ok"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(RuntimeError, match="secret key"):
        app.test_client().post("/set")


def test_static_files_do_not_load_the_session(
    tmp_path: Path, backend: Backend, clock: Clock
) -> None:
    (tmp_path / "style.css").write_text("body {}")
    app = Flask(__name__, static_folder=str(tmp_path), static_url_path="/static")
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)
    client = app.test_client()
    client.post("/set", data={"a": "1"})
    with backend.operations() as operations, client.get("/static/style.css") as response:
        assert response.status_code == 200
    assert operations == []
    assert "Set-Cookie" not in response.headers
    assert client.get("/get").json == {"a": "1"}
