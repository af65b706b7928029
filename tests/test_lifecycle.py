"""Session life-cycle features: credentials changes, fresh logins, carry-over,
device tracking.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest
from flask import Flask
from flask import jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import fresh_login_required
from flask_kitsession import KitSession
from flask_kitsession import refresh_authentication

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.clients import log_in
from .support.clients import me
from .support.clients import session_cookie


def make_app(backend: Backend, clock: Clock, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, **config)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)

    @app.post("/change-password")
    def change_password() -> t.Any:
        return jsonify(revoked=credentials_changed())

    @app.get("/billing")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def billing() -> str:
        return "billing"

    @app.post("/confirm-password")
    def confirm_password() -> str:
        refresh_authentication()
        return "confirmed"

    @app.get("/login-again")
    def login_again() -> str:
        return "please log in again"

    @app.get("/whoami")
    def whoami() -> t.Any:
        at = current_session.authenticated_at
        return jsonify(authenticated_at=at.isoformat() if at else None)

    return app


def test_credentials_changed_signs_out_the_others_and_renews_this_token(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock)
    user_id = backend.add_user("ada@example.com")
    here, phone, laptop = (app.test_client() for _ in range(3))
    for device in (here, phone, laptop):
        log_in(device, user_id)
    here.post("/set", data={"draft": "kept"})
    before = session_cookie(here)
    assert here.post("/change-password").json == {"revoked": 2}
    assert session_cookie(here) not in (None, before)
    assert me(here)["user_id"] == user_id
    assert here.get("/get").json == {"user_id": user_id, "draft": "kept"}
    assert me(phone)["user_id"] is None and me(laptop)["user_id"] is None
    # The cookie from before the change is worthless too.
    here.set_cookie("session", before or "")
    assert me(here)["user_id"] is None


def test_fresh_login_required(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    assert client.get("/billing").status_code == 401
    log_in(client, user_id)
    assert client.get("/billing").text == "billing"
    clock.advance(minutes=11)
    assert client.get("/billing").status_code == 401
    client.post("/confirm-password")
    assert client.get("/billing").text == "billing"


def test_fresh_login_redirects_to_the_configured_view(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock, KITSESSION_REAUTHENTICATE_VIEW="login_again")
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    log_in(client, user_id)
    clock.advance(hours=1)
    response = client.get("/billing?plan=pro")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login-again?next=/billing?plan%3Dpro"


def test_authenticated_at_is_the_login_time(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    client.post("/set", data={"a": "1"})
    assert client.get("/whoami").json == {"authenticated_at": None}
    log_in(client, user_id)
    logged_in_at = clock.now.isoformat()
    clock.advance(minutes=5)
    client.post("/set", data={"b": "2"})  # a later write keeps the login time
    assert client.get("/whoami").json == {"authenticated_at": logged_in_at}
    client.post("/confirm-password")
    assert client.get("/whoami").json == {"authenticated_at": clock.now.isoformat()}


def test_refresh_authentication_needs_a_user(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ValueError, match="belongs to no user"):
        app.test_client().post("/confirm-password")


def test_carry_over_back_into_the_same_account(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS=["cart"])
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    log_in(client, user_id)
    client.post("/set", data={"cart": "2 pears", "other": "x"})
    log_in(client, user_id)  # the same user logs in again
    assert client.get("/get").json == {"cart": "2 pears", "user_id": user_id}


def test_carry_over_all_keys(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")
    user_id = backend.add_user("ada@example.com")
    other_id = backend.add_user("bob@example.com")
    client = app.test_client()
    client.post("/set", data={"cart": "2 pears", "theme": "dark"})
    log_in(client, user_id)
    assert client.get("/get").json == {"cart": "2 pears", "theme": "dark", "user_id": user_id}
    log_in(client, other_id)
    assert client.get("/get").json == {"user_id": other_id}


def test_a_huge_user_agent_is_cut_not_refused(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)
    client = app.test_client()
    agent = "Mozilla/5.0 " + "x" * 5000
    response = client.post("/set", data={"a": "1"}, headers={"User-Agent": agent})
    assert response.status_code == 200
    [row] = backend.rows()
    assert row["user_agent"] == agent[:512]


def test_tracking_can_be_turned_off(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock, KITSESSION_TRACK_USER_AGENT=False, KITSESSION_TRACK_IP=False)
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    client.post("/login", data={"user_id": str(user_id)}, headers={"User-Agent": "Agent/1"})
    clock.advance(minutes=5)
    client.get("/get")  # a touch
    [row] = backend.rows()
    assert row["user_agent"] is None and row["ip_address"] is None


def test_client_address_behind_a_proxy(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    client = app.test_client()
    client.post("/set", data={"a": "1"}, headers={"X-Forwarded-For": "203.0.113.9"})
    [row] = backend.rows()
    assert row["ip_address"] == "203.0.113.9"
