"""One regression test for each lifecycle defect an independent review found
(issue 12), each seen failing before the lifecycle had one owner.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest
from flask import flash
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import create_session
from flask_kitsession import current_session
from flask_kitsession import fresh_login_required
from flask_kitsession import KitSession
from flask_kitsession import KitSessionInterface
from flask_kitsession import MemoryStore
from flask_kitsession import SessionDataError
from flask_kitsession import set_session_cookie
from flask_kitsession import with_new_session

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import LoginApp
from .support.apps import make_login_app
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.clients import log_in
from .support.clients import me
from .support.clients import session_cookie


def get_json(client: FlaskClient, path: str) -> dict[str, t.Any]:
    data = client.get(path).json
    assert isinstance(data, dict)
    return data


def make_app(backend: Backend, clock: Clock, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, **config)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)

    @app.get("/fresh")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def fresh() -> str:
        return "fresh"

    @app.get("/times")
    def times() -> t.Any:
        created, authenticated = current_session.created_at, current_session.authenticated_at
        return jsonify(
            created_at=created.isoformat() if created else None,
            authenticated_at=authenticated.isoformat() if authenticated else None,
        )

    @app.post("/failed-login")
    @with_new_session
    def failed_login() -> str:
        flash("Wrong password")
        return "no"

    return app


# 1. Remember-me logins are rotated and are not fresh.


def test_a_remember_cookie_login_gets_a_new_token_and_is_not_fresh(
    login_app: LoginApp,
) -> None:
    app = login_app.app

    @app.get("/fresh-page")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def fresh_page() -> str:
        return "fresh"

    login_app.add_user("u-1", "ada@example.com")
    victim = app.test_client()
    victim.post("/login/u-1?remember=1")
    remember = victim.get_cookie("remember_token")
    assert remember is not None

    # An attacker plants an anonymous session cookie of their own in the
    # victim's browser; the victim's session ended, the remember cookie stays.
    attacker = app.test_client()
    attacker.post("/set", data={"planted": "1"})
    planted = session_cookie(attacker)
    assert planted is not None
    browser = app.test_client()
    browser.set_cookie("session", planted)
    browser.set_cookie("remember_token", remember.value)
    assert browser.get("/profile").status_code == 200  # restored from the remember cookie
    assert session_cookie(browser) not in (None, planted)
    # The attacker's copy of the planted cookie is not logged in.
    assert attacker.get("/profile").status_code == 401
    # A login restored from a remember cookie is not fresh.
    assert browser.get("/fresh-page").status_code == 401


def test_login_user_with_fresh_false_is_not_fresh(login_app: LoginApp) -> None:
    from flask_login import login_user

    app = login_app.app

    @app.post("/login-stale/<user_id>")
    def login_stale(user_id: str) -> str:
        login_user(login_app.db.session.get(login_app.user_model, user_id), fresh=False)
        return "in"

    @app.get("/fresh-page")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def fresh_page() -> str:
        return "fresh"

    login_app.add_user("u-1", "ada@example.com")
    client = app.test_client()
    client.post("/login-stale/u-1")
    assert client.get("/profile").status_code == 200
    assert client.get("/fresh-page").status_code == 401
    fresh = app.test_client()
    fresh.post("/login/u-1")
    assert fresh.get("/fresh-page").text == "fresh"


# 2. Linking a user outside the decorators changes the token.


@pytest.mark.parametrize("key", ["user_id", "id", "userId", "_user_id"])
def test_a_plain_view_linking_a_user_changes_the_token(
    backend: Backend, clock: Clock, key: str
) -> None:
    app = make_app(backend, clock)

    @app.post("/link")
    def link() -> str:
        session[key] = request.form["user_id"]
        return "linked"

    user_id = backend.add_user("ada@example.com")
    victim = app.test_client()
    victim.post("/set", data={"a": "1"})
    planted = session_cookie(victim)
    victim.post("/link", data={"user_id": str(user_id)})
    assert session_cookie(victim) not in (None, planted)
    assert me(victim)["user_id"] == user_id
    attacker = app.test_client()
    attacker.set_cookie("session", planted or "")
    assert me(attacker)["user_id"] is None


# 3. logout_user() then login_user() in one request.


def test_logout_then_login_in_one_request(login_app: LoginApp) -> None:
    from flask_login import login_user
    from flask_login import logout_user

    app = login_app.app

    @app.post("/switch/<user_id>")
    def switch(user_id: str) -> str:
        logout_user()
        flash("Signed out")
        login_user(login_app.db.session.get(login_app.user_model, user_id))
        return "switched"

    login_app.add_user("u-1", "ada@example.com")
    login_app.add_user("u-2", "bob@example.com")
    client = app.test_client()
    client.post("/login/u-1")
    before = session_cookie(client)
    response = client.post("/switch/u-2")
    assert response.status_code == 200
    assert session_cookie(client) not in (None, before)
    assert client.get("/profile").text == "bob <bob@example.com>"
    old = app.test_client()
    old.set_cookie("session", before or "")
    assert old.get("/profile").status_code == 401


# 4. Carry-over "*": a failed login keeps the clocks; another user's login stores.


def test_a_failed_login_with_carry_over_all_keeps_the_clocks(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*", KITSESSION_ABSOLUTE_TIMEOUT=3600)
    user_id = backend.add_user("ada@example.com")
    client = app.test_client()
    log_in(client, user_id)
    times = client.get("/times").json
    clock.advance(minutes=30)
    assert client.post("/failed-login").text == "no"
    assert client.get("/times").json == times
    assert client.get("/fresh").status_code == 401
    clock.advance(minutes=31)
    client.post("/failed-login")
    assert me(client)["user_id"] is None  # the absolute timeout still ends it


def test_logging_in_another_user_with_carry_over_all(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    log_in(client, ada)
    client.post("/set", data={"ada's": "secret"})
    log_in(client, bob)
    assert me(client)["user_id"] == bob
    assert client.get("/get").json == {"user_id": bob}


# 5. Flask conformance.


def test_the_save_does_not_reset_modified(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)
    with app.test_client() as client:
        client.post("/set", data={"a": "1"})
        assert session.modified


def test_a_cookie_the_app_cannot_verify_is_kept_by_reads(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)
    client = app.test_client()
    client.post("/set", data={"a": "1"})
    cookie = session_cookie(client)
    app.secret_key = "a key another worker was started with"
    response = client.get("/get")
    assert response.json == {}
    assert "Set-Cookie" not in response.headers
    app.secret_key = SECRET_KEY
    assert client.get("/get").json == {"a": "1"}
    assert session_cookie(client) == cookie


# 6. An interface subclass assigned after init_app is the one the helpers use.


def test_a_subclassed_interface_serves_the_helpers(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)

    class SaltedInterface(KitSessionInterface):
        salt = "my-own-salt"

    original = app.session_interface
    assert isinstance(original, KitSessionInterface)
    app.session_interface = SaltedInterface(original.store, original.settings, clock=clock)
    user_id = backend.add_user("ada@example.com")

    @app.post("/magic-link")
    def magic_link() -> t.Any:
        new = create_session(user_id)
        return set_session_cookie(jsonify(ok=True), new)

    client = app.test_client()
    client.post("/magic-link")
    assert me(client)["user_id"] == user_id


# 7. Per-app settings stay per app when a store is shared.


def test_a_shared_store_keeps_each_apps_data_size_limit() -> None:
    store = MemoryStore()
    small = Flask("small")
    small.config.update(SECRET_KEY=SECRET_KEY, KITSESSION_MAX_DATA_SIZE=100)
    big = Flask("big")
    big.config.update(SECRET_KEY=SECRET_KEY, KITSESSION_MAX_DATA_SIZE=10_000)
    KitSession(small, store=store)
    KitSession(big, store=store)
    for app in (small, big):
        app.config["PROPAGATE_EXCEPTIONS"] = True

        @app.post("/set")
        def set_value() -> str:
            session["text"] = request.form["text"]
            return "ok"

    assert big.test_client().post("/set", data={"text": "x" * 1000}).text == "ok"
    with pytest.raises(SessionDataError):
        small.test_client().post("/set", data={"text": "x" * 1000})


def test_login_user_of_another_user_with_carry_over_all(empty_database_url: str) -> None:
    login_app = make_login_app(empty_database_url, config={"KITSESSION_CARRY_OVER_KEYS": "*"})
    with login_app.app.app_context():
        login_app.db.create_all()
    try:
        login_app.add_user("u-1", "ada@example.com")
        login_app.add_user("u-2", "bob@example.com")
        client = login_app.app.test_client()
        client.post("/set", data={"cart": "2 pears"})
        client.post("/login/u-1")
        assert get_json(client, "/get")["cart"] == "2 pears"
        client.post("/set", data={"ada's": "secret"})
        client.post("/login/u-2")
        assert client.get("/profile").text == "bob <bob@example.com>"
        data = get_json(client, "/get")
        assert data["_user_id"] == "u-2"
        assert "ada's" not in data and "cart" not in data
    finally:
        with login_app.app.app_context():
            login_app.db.drop_all()
            login_app.db.engine.dispose()
