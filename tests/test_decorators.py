"""with_new_session (logins) and with_delete_session (logouts)."""

from __future__ import annotations

import typing as t

import pytest
from flask import abort
from flask import Flask
from flask import jsonify
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import KitSession
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session

from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.clients import log_in
from .support.clients import me
from .support.clients import session_cookie


def test_login_gives_a_new_token_and_removes_the_previous_session(
    client: FlaskClient, backend: Backend
) -> None:
    user_id = backend.add_user("ada@example.com")
    client.post("/set", data={"visited": "yes"})
    before = session_cookie(client)
    [anonymous] = backend.rows()

    log_in(client, user_id)
    after = session_cookie(client)
    assert after is not None and after != before
    [row] = backend.rows()
    assert row["id"] != anonymous["id"]
    assert row["user_id"] == user_id
    assert row["authenticated_at"] is not None
    assert client.get("/me").json == {"user_id": user_id, "email": "ada@example.com"}


def test_planted_session_id_is_worthless_after_login(app: Flask, backend: Backend) -> None:
    """Session fixation: an attacker plants their cookie in the victim's browser."""
    user_id = backend.add_user("victim@example.com")
    attacker = app.test_client()
    attacker.post("/set", data={"planted": "1"})
    planted = session_cookie(attacker)
    assert planted is not None

    victim = app.test_client()
    victim.set_cookie("session", planted)
    log_in(victim, user_id)
    assert session_cookie(victim) != planted
    # The attacker's cookie names no session any more, let alone the victim's.
    assert attacker.get("/me").json == {"user_id": None, "email": None}


def test_failed_login_keeps_the_visitors_session(client: FlaskClient, backend: Backend) -> None:
    client.post("/set", data={"cart": "3 apples"})
    before = session_cookie(client)
    with backend.operations() as operations:
        response = client.post("/login", data={})  # the view stores nothing
    assert response.json == {"ok": False}
    assert "Set-Cookie" not in response.headers
    assert session_cookie(client) == before
    assert backend.writes(operations) == []
    assert client.get("/get").json == {"cart": "3 apples"}


def test_login_view_that_raises_keeps_the_visitors_session(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    @app.post("/bad-login")
    @with_new_session
    def bad_login() -> t.Any:
        session["user_id"] = 1
        abort(401)

    client.post("/set", data={"cart": "3 apples"})
    before = session_cookie(client)
    assert client.post("/bad-login").status_code == 401
    assert session_cookie(client) == before
    assert client.get("/get").json == {"cart": "3 apples"}


def test_login_without_a_previous_session(client: FlaskClient, backend: Backend) -> None:
    user_id = backend.add_user("new@example.com")
    log_in(client, user_id)
    assert len(backend.rows()) == 1
    assert me(client)["email"] == "new@example.com"


def test_a_login_view_sees_the_visitors_session_until_it_links_a_user(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    user_id = backend.add_user("ada@example.com")

    @app.post("/inspect-login")
    @with_new_session
    def inspect_login() -> t.Any:
        seen = dict(session)
        user_before = session.user  # type: ignore[attr-defined]
        session["user_id"] = user_id
        return jsonify(
            seen=seen,
            user_before=user_before,
            after=dict(session),
            user_after=session.user.email,  # type: ignore[attr-defined]
        )

    client.post("/set", data={"secret": "from before"})
    response = client.post("/inspect-login")
    assert response.json == {
        "seen": {"secret": "from before"},
        "user_before": None,
        "after": {"user_id": user_id},
        "user_after": "ada@example.com",
    }
    assert client.get("/get").json == {"user_id": user_id}


def test_carry_over_keys_follow_an_anonymous_visitor_into_their_account(
    backend: Backend, clock: Clock
) -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, KITSESSION_CARRY_OVER_KEYS=["cart"])
    KitSession(app, store=backend.store, clock=clock)
    from .support.apps import add_views

    add_views(app)
    user_id = backend.add_user("shopper@example.com")
    other_id = backend.add_user("other@example.com")
    client = app.test_client()
    client.post("/set", data={"cart": "3 apples", "tracking": "x"})
    log_in(client, user_id)
    assert client.get("/get").json == {"cart": "3 apples", "user_id": user_id}

    # Nothing crosses from one user to the next.
    client.post("/set", data={"cart": "user one's cart"})
    log_in(client, other_id)
    assert client.get("/get").json == {"user_id": other_id}


def test_logout_deletes_the_session_and_expires_the_cookie(
    client: FlaskClient, backend: Backend
) -> None:
    user_id = backend.add_user("ada@example.com")
    log_in(client, user_id)
    cookie = session_cookie(client)
    response = client.post("/logout")
    assert response.json == {"bye": user_id}  # the view still saw the session
    assert "session=;" in response.headers["Set-Cookie"]
    assert backend.rows() == []
    assert session_cookie(client) is None
    # Replaying the old cookie gets nothing.
    client.set_cookie("session", cookie)  # type: ignore[arg-type]
    assert client.get("/me").json == {"user_id": None, "email": None}


def test_logout_of_an_anonymous_visitor_is_harmless(client: FlaskClient, backend: Backend) -> None:
    response = client.post("/logout")
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_logout_view_that_raises_deletes_nothing(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    @app.post("/guarded-logout")
    @with_delete_session
    def guarded_logout() -> t.Any:
        abort(400)  # a failed CSRF check, say

    client.post("/set", data={"a": "1"})
    assert client.post("/guarded-logout").status_code == 400
    assert len(backend.rows()) == 1
    assert client.get("/get").json == {"a": "1"}


def test_decorators_say_when_kitsession_is_missing() -> None:
    app = Flask(__name__)
    app.secret_key = SECRET_KEY
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.post("/login")
    @with_new_session
    def login() -> str:
        return "no"

    with pytest.raises(RuntimeError, match="init_app"):
        app.test_client().post("/login")


def test_async_views(app: Flask, client: FlaskClient, backend: Backend) -> None:
    pytest.importorskip("asgiref")
    user_id = backend.add_user("async@example.com")

    @app.post("/async-login")
    @with_new_session
    async def async_login() -> str:
        session["user_id"] = user_id
        return "in"

    @app.post("/async-logout")
    @with_delete_session
    async def async_logout() -> str:
        return "out"

    client.post("/async-login")
    assert me(client)["email"] == "async@example.com"
    client.post("/async-logout")
    assert backend.rows() == []


def test_decorators_say_when_the_secret_key_is_missing(backend: Backend) -> None:
    app = Flask(__name__)
    with pytest.warns(UserWarning, match="SECRET_KEY is not set"):
        KitSession(app, store=backend.store)
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.post("/login")
    @with_new_session
    def login() -> str:
        return "no"

    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        app.test_client().post("/login")
