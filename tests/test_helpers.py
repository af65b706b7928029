"""The helper functions, in requests and outside them."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask import jsonify
from flask import make_response
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import create_session
from flask_kitsession import current_session
from flask_kitsession import get_all_sessions
from flask_kitsession import get_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import remove_session
from flask_kitsession import remove_session_cookie
from flask_kitsession import set_session
from flask_kitsession import set_session_cookie

from .support.apps import Clock
from .support.backends import Backend
from .support.backends import SQLBackend
from .support.clients import log_in
from .support.clients import me
from .support.clients import session_cookie


def test_create_and_get_a_session_outside_a_request(app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    with app.app_context():
        created = create_session(user_id=user_id, data={"theme": "dark"})
        assert created.user_id == user_id
        found = get_session(created.id)
    assert found is not None
    assert dict(found) == {"theme": "dark", "user_id": user_id}
    assert found.user is not None and found.user.email == "ada@example.com"
    assert found.created_at == created.created_at


def test_create_session_refuses_two_different_users(app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    with app.app_context(), pytest.raises(ValueError, match="names user"):
        create_session(user_id=user_id, data={"user_id": user_id + 1})


def test_get_session_with_an_unknown_or_malformed_id(app: Flask) -> None:
    with app.app_context():
        assert get_session("0" * 64) is None
        assert get_session("not an id") is None
        assert get_session("'; DROP TABLE session; --") is None


def test_get_session_ignores_expired_sessions(app: Flask, clock: Clock) -> None:
    with app.app_context():
        created = create_session(data={"a": 1})
        clock.advance(days=40)
        assert get_session(created.id) is None


def test_get_all_sessions_reads_in_batches(app: Flask, backend: Backend) -> None:
    with app.app_context():
        ids = {create_session(data={"n": n}).id for n in range(7)}
        with backend.operations() as operations:
            found = list(get_all_sessions(batch_size=3))
    assert {s.id for s in found} == ids
    if isinstance(backend, SQLBackend):
        # 7 sessions in pages of 3: three SELECTs, none of them for the whole table.
        reads = backend.reads(operations)
        assert len(reads) == 3 and all("LIMIT" in op for op in reads), operations
    elif backend.name == "redis":
        # SCAN finds the keys (as many calls as the shared key space takes);
        # they are read 3 at a time, one round trip per page.
        pages = [op.split(":")[0] for op in operations if "PIPELINE" in op]
        assert pages == ["SELECT PIPELINE of 3"] * 2 + ["SELECT PIPELINE of 1"]
        assert all(op.startswith(("SELECT SCAN", "SELECT PIPELINE")) for op in operations)


def test_get_sessions_for_user_lists_that_users_devices(
    app: Flask, backend: Backend, clock: Clock
) -> None:
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    with app.app_context():
        first = create_session(user_id=ada)
        clock.advance(minutes=1)
        second = create_session(user_id=ada)
        create_session(user_id=bob)
        create_session(data={"anonymous": True})
        sessions = get_sessions_for_user(ada)
    assert [s.id for s in sessions] == [second.id, first.id]
    assert all(s.user is not None and s.user.email == "ada@example.com" for s in sessions)


def test_set_session_replaces_the_data(app: Flask) -> None:
    with app.app_context():
        created = create_session(data={"a": 1})
        assert set_session(created, {"b": 2}) is True
        found = get_session(created.id)
        assert found is not None and dict(found) == {"b": 2}


def test_set_session_does_not_recreate_a_removed_session(app: Flask) -> None:
    with app.app_context():
        created = create_session(data={"a": 1})
        assert remove_session(created) is True
        assert set_session(created, {"b": 2}) is False
        assert get_session(created.id) is None


def test_remove_session_by_id(app: Flask) -> None:
    with app.app_context():
        created = create_session(data={"a": 1})
        assert remove_session(created.id) is True
        assert remove_session(created.id) is False


def test_remove_all_sessions_for_user_keeps_the_current_one_and_other_users(
    app: Flask, backend: Backend
) -> None:
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    phone, laptop, tablet = (app.test_client() for _ in range(3))
    for device in (phone, laptop, tablet):
        log_in(device, ada)
    bobs = app.test_client()
    log_in(bobs, bob)

    with backend.operations() as operations:
        response = laptop.post("/sign-out-others")
    assert response.json == {"count": 2}
    deletes = [op for op in operations if op.startswith("DELETE")]
    assert len(deletes) == 1, operations

    assert me(laptop)["user_id"] == ada
    assert me(phone)["user_id"] is None
    assert me(tablet)["user_id"] is None
    assert me(bobs)["user_id"] == bob


def test_nobody_has_other_devices(app: Flask, client: FlaskClient, backend: Backend) -> None:
    """A signed-out device's "sign out other devices" signs out nobody (the
    README's view, posted without a login), and nobody's device list is
    empty, never the anonymous visitors' sessions.
    """
    others = [app.test_client() for _ in range(2)]
    for other in others:
        other.post("/set", data={"cart": "a visitor's cart"})
    ada = backend.add_user("ada@example.com")
    log_in(others[0], ada)
    response = client.post("/sign-out-others")
    assert response.status_code == 200 and response.json == {"count": 0}
    with app.app_context():
        assert get_sessions_for_user(None) == []
        assert len(get_sessions_for_user(ada)) == 1
    assert me(others[0])["user_id"] == ada


def test_remove_all_sessions_outside_a_request(app: Flask, backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    with app.app_context():
        for _ in range(3):
            create_session(user_id=ada)
        assert remove_all_sessions_for_user(ada) == 3
        assert get_sessions_for_user(ada) == []


def test_removing_the_current_session_expires_its_cookie(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    @app.post("/forget-me")
    def forget_me() -> t.Any:
        remove_session(current_session)
        return "gone"

    client.post("/set", data={"a": "1"})
    response = client.post("/forget-me")
    assert "session=;" in response.headers["Set-Cookie"]
    assert backend.rows() == []


def test_regenerate_changes_the_token_and_keeps_the_data(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    @app.post("/elevate")
    def elevate() -> t.Any:
        session["role"] = "admin"
        regenerate()
        return "ok"

    client.post("/set", data={"a": "1"})
    old_cookie = session_cookie(client)
    [old_row] = backend.rows()
    client.post("/elevate")
    new_cookie = session_cookie(client)
    assert new_cookie != old_cookie
    [new_row] = backend.rows()
    assert new_row["id"] != old_row["id"]
    assert new_row["created_at"] == old_row["created_at"]
    assert client.get("/get").json == {"a": "1", "role": "admin"}
    # The old cookie no longer works.
    client.set_cookie("session", old_cookie)  # type: ignore[arg-type]
    assert client.get("/get").json == {}


def test_regenerate_without_changes(app: Flask, client: FlaskClient, backend: Backend) -> None:
    @app.post("/rotate")
    def rotate() -> t.Any:
        regenerate()
        return "ok"

    client.post("/set", data={"a": "1"})
    old_cookie = session_cookie(client)
    client.post("/rotate")
    assert session_cookie(client) != old_cookie
    assert client.get("/get").json == {"a": "1"}
    assert len(backend.rows()) == 1


def test_session_cookie_helpers(app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("magic@example.com")

    @app.get("/magic-link")
    def magic_link() -> t.Any:
        created = create_session(user_id=user_id)
        return set_session_cookie(make_response("signed in"), created)

    @app.get("/forget-cookie")
    def forget_cookie() -> t.Any:
        return remove_session_cookie(make_response("bye"))

    client = app.test_client()
    client.get("/magic-link")
    assert me(client)["email"] == "magic@example.com"
    client.get("/forget-cookie")
    assert session_cookie(client) is None


def test_set_session_cookie_needs_a_known_token(app: Flask, backend: Backend) -> None:
    with app.test_request_context():
        created = create_session(data={"a": 1})
        found = get_session(created.id)
        assert found is not None
        with pytest.raises(ValueError, match="token is unknown"):
            set_session_cookie(make_response("x"), found)


def test_session_attributes(app: Flask, client: FlaskClient, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")

    @app.get("/about")
    def about() -> t.Any:
        return jsonify(
            id=current_session.id,
            user_id=current_session.user_id,
            created=current_session.created_at.isoformat(),  # type: ignore[union-attr]
            agent=current_session.user_agent,
            ip=current_session.ip_address,
            authenticated=current_session.is_authenticated,
        )

    client.post("/login", data={"user_id": str(user_id)}, headers={"User-Agent": "TestAgent/1.0"})
    info = client.get("/about").json
    assert info is not None
    assert len(info["id"]) == 64
    assert info["agent"] == "TestAgent/1.0"
    assert info["ip"] == "127.0.0.1"
    assert info["authenticated"] is True


def test_helpers_need_init_app() -> None:
    app = Flask(__name__)
    with app.app_context(), pytest.raises(RuntimeError, match="init_app"):
        get_session("0" * 64)
