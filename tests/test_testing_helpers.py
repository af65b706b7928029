"""flask_kitsession.testing: logging test clients in, on every backend and
with Flask-Login, as an app's own tests would use it.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest
from flask import Flask

from flask_kitsession import fresh_login_required
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import signals
from flask_kitsession import UnknownUserError
from flask_kitsession.testing import KitSessionClient
from flask_kitsession.testing import login
from flask_kitsession.testing import revoke
from flask_kitsession.testing import session_of

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import LoginApp
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.backends import SQLBackend
from .support.clients import me
from .support.signals import SignalLog


def add_fresh_view(app: Flask) -> None:
    @app.get("/password")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def password() -> str:
        return "change it here"


def test_login_a_client(app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    with SignalLog(app) as log:
        session = login(client, user_id, data={"theme": "dark"})
    assert me(client) == {"user_id": user_id, "email": "ada@example.com"}
    assert client.get("/get").get_json() == {"theme": "dark", "user_id": user_id}
    assert session.user_id == user_id and not session.new
    # A real login: the app's receivers hear of it.
    assert log.names() == ["created", "authenticated"]
    # Made as the client's own request would be: it is one of the user's devices.
    with app.app_context():
        (device,) = get_sessions_for_user(user_id)
    assert device.id == session.id
    assert device.ip_address == "127.0.0.1"
    assert device.user_agent is not None and device.user_agent.startswith("Werkzeug/")


def test_session_of_a_client(app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    assert session_of(client) is None
    client.post("/set", data={"theme": "dark"})
    anonymous = session_of(client)
    assert anonymous is not None and anonymous.user_id is None
    assert dict(anonymous) == {"theme": "dark"}

    client.post("/login", data={"user_id": str(user_id)})
    logged_in = session_of(client)
    assert logged_in is not None and logged_in.id != anonymous.id
    assert logged_in.user_id == user_id
    assert logged_in.user is not None and logged_in.user.email == "ada@example.com"

    client.post("/logout")
    assert session_of(client) is None


def test_session_of_a_tampered_cookie(app: Flask) -> None:
    client = app.test_client()
    client.post("/set", data={"theme": "dark"})
    cookie = client.get_cookie("session")
    assert cookie is not None
    # Another first character (one token in 64 starts with "x" already).
    tampered = ("y" if cookie.value.startswith("x") else "x") + cookie.value[1:]
    client.set_cookie("session", tampered)
    assert session_of(client) is None
    client.set_cookie("session", "")
    assert session_of(client) is None


def test_revoke_a_client(app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    phone, laptop = app.test_client(), app.test_client()
    phones = login(phone, user_id)
    login(laptop, user_id)
    with SignalLog(app) as log:
        assert revoke(phone)
        assert not revoke(phone)
    assert log.one("revoked").kwargs == {
        "user_id": user_id,
        "session_id": phones.id,
        "count": 1,
        "reason": signals.ADMIN,
    }
    assert me(phone)["user_id"] is None
    assert session_of(phone) is None
    assert me(laptop)["user_id"] == user_id
    with SignalLog(app) as log:
        assert revoke(laptop, reason="stolen-device")
    assert log.one("revoked").kwargs["reason"] == "stolen-device"


def test_a_login_that_is_not_fresh(app: Flask, backend: Backend, clock: Clock) -> None:
    add_fresh_view(app)
    user_id = backend.add_user("ada@example.com")
    remembered, fresh = app.test_client(), app.test_client()
    login(remembered, user_id, fresh=False)
    login(fresh, user_id)
    assert remembered.get("/password").status_code == 401
    assert fresh.get("/password").status_code == 200
    clock.advance(minutes=11)
    assert fresh.get("/password").status_code == 401


def test_a_permanent_login(app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    session = login(client, user_id, permanent=True)
    assert session.permanent
    stored = session_of(client)
    assert stored is not None and stored.permanent


def test_the_client_class(app: Flask, backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    app.test_client_class = KitSessionClient
    client = t.cast(KitSessionClient, app.test_client(user=ada))
    assert me(client)["user_id"] == ada
    assert client.server_session is not None and client.server_session.user_id == ada
    anonymous = t.cast(KitSessionClient, app.test_client())
    assert anonymous.server_session is None
    anonymous.login(bob)
    assert me(anonymous)["email"] == "bob@example.com"
    assert client.revoke()
    assert me(client)["user_id"] is None


def test_an_unknown_user(sql_backend: SQLBackend) -> None:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    KitSession(app, store=sql_backend.store)
    add_views(app)
    client = app.test_client()
    with pytest.raises(UnknownUserError):
        login(client, 404)
    assert session_of(client) is None
    assert sql_backend.rows() == []


def test_with_a_cookie_domain_and_path(app: Flask, backend: Backend) -> None:
    app.config.update(
        SERVER_NAME="www.example.com",
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/",
    )
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, user_id)
    assert me(client)["user_id"] == user_id
    session = session_of(client)
    assert session is not None and session.user_id == user_id


# -- Flask-Login --------------------------------------------------------------------


def test_flask_login_app(login_app: LoginApp) -> None:
    login_app.add_user("u-1", "ada@example.com")
    app = login_app.app
    client = app.test_client()
    session = login(client, "u-1")
    assert client.get("/profile").text == "ada <ada@example.com>"
    assert session["_user_id"] == "u-1" and session["_fresh"] is True
    stored = session_of(client)
    assert stored is not None and stored.user_id == "u-1"
    assert revoke(client)
    assert client.get("/profile").status_code == 401


def test_flask_login_user_object_and_freshness(login_app: LoginApp) -> None:
    from flask_login import fresh_login_required as flask_login_fresh_required

    login_app.add_user("u-1", "ada@example.com")
    app = login_app.app

    @app.get("/settings")
    @flask_login_fresh_required
    def settings() -> str:
        return "fresh enough"

    with app.app_context():
        user = login_app.db.session.get(login_app.user_model, "u-1")
    fresh, remembered = app.test_client(), app.test_client()
    login(fresh, user)
    login(remembered, user, fresh=False)
    assert fresh.get("/settings").text == "fresh enough"
    assert remembered.get("/settings").status_code == 401


@pytest.mark.parametrize("protection", ["basic", "strong"])
def test_flask_login_session_protection_is_satisfied(login_app: LoginApp, protection: str) -> None:
    """Flask-Login checks that the session comes from the browser that logged
    in; a login made here identifies the test client as that browser.
    """
    from flask_login import current_user
    from flask_login import login_fresh

    login_app.add_user("u-1", "ada@example.com")
    app = login_app.app
    app.config["SESSION_PROTECTION"] = protection

    @app.get("/fresh")
    def fresh() -> str:
        # Loading the user runs Flask-Login's check.
        return f"signed in: {current_user.is_authenticated}, fresh: {login_fresh()}"

    client = app.test_client()
    login(client, "u-1")
    assert client.get("/profile").status_code == 200
    assert client.get("/fresh").text == "signed in: True, fresh: True"
    # Another browser with the same cookie is not the one that logged in:
    # the check that passed above is a real one.
    other_browser = {"HTTP_USER_AGENT": "Mozilla/5.0 (another browser)"}
    response = client.get("/fresh", environ_overrides=other_browser)
    if protection == "basic":
        assert response.text == "signed in: True, fresh: False"
    else:
        assert response.text == "signed in: False, fresh: False"
        assert client.get("/profile").status_code == 401


def test_flask_login_client_class(login_app: LoginApp) -> None:
    login_app.add_user("u-1", "ada@example.com")
    app = login_app.app
    app.test_client_class = KitSessionClient
    client = app.test_client(user="u-1")
    assert client.get("/profile").status_code == 200
