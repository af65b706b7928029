"""Signals: each one sent once the store has carried out its change, with the
app as sender, on every backend; nothing for a request that fails or that
only reads.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import create_session
from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import KitSession
from flask_kitsession import purge_expired
from flask_kitsession import refresh_authentication
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import remove_session
from flask_kitsession import signals
from flask_kitsession import with_new_session

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import LoginApp
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.clients import log_in
from .support.signals import SignalLog


def add_signal_views(app: Flask) -> None:
    """Views that call each helper that changes a session."""

    @app.get("/id")
    def session_id() -> t.Any:
        record = current_session.record
        return jsonify(id=None if record is None else record.id)

    @app.post("/regenerate")
    def regenerate_view() -> str:
        regenerate()
        return "ok"

    @app.post("/refresh")
    def refresh() -> str:
        refresh_authentication()
        return "ok"

    @app.post("/credentials")
    def credentials() -> str:
        return str(credentials_changed())

    @app.post("/clear")
    def clear() -> str:
        session.clear()
        if request.args.get("say"):
            session["said"] = "goodbye"
        return "ok"

    @app.post("/remove-current")
    def remove_current() -> str:
        removed = remove_session(current_session)
        if request.args.get("say"):
            session["said"] = "goodbye"
        return str(removed)

    @app.post("/remove/<session_id>")
    def remove(session_id: str) -> str:
        reason = request.args.get("reason")
        return str(remove_session(session_id, reason=reason))

    @app.post("/fail/login")
    @with_new_session
    def failed_login() -> t.Any:
        session["user_id"] = int(request.form["user_id"])
        return "the database of the app broke", 500

    @app.post("/fail/clear")
    def failed_logout() -> t.Any:
        session.clear()
        return "broke", 500


@pytest.fixture
def signal_app(app: Flask) -> Flask:
    add_signal_views(app)
    return app


def stored_id(client: FlaskClient) -> str | None:
    """The id of the client's stored session, if it has one."""
    data = client.get("/id").get_json()
    assert isinstance(data, dict)
    return t.cast("str | None", data["id"])


def id_of(client: FlaskClient) -> str:
    """The id of the client's stored session."""
    session_id = stored_id(client)
    assert session_id is not None
    return session_id


def test_first_write_creates_a_session(signal_app: Flask) -> None:
    client = signal_app.test_client()
    with SignalLog(signal_app) as log:
        client.post("/set", data={"theme": "dark"})
    created = log.one("created")
    assert log.names() == ["created"]
    assert created.sender is signal_app
    assert created.kwargs["replaced"] is None
    assert created.session_id == id_of(client) and created.user_id is None
    assert created.in_store


def test_login_creates_and_authenticates(signal_app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    client.post("/set", data={"cart": "3 apples"})
    anonymous = id_of(client)
    with SignalLog(signal_app) as log:
        log_in(client, user_id)
    assert log.names() == ["created", "authenticated"]
    created, authenticated = log.received
    assert created.kwargs["replaced"] == anonymous
    assert created.session_id == id_of(client) != anonymous
    assert created.user_id == user_id and created.in_store
    assert authenticated.kwargs["user_id"] == user_id
    assert authenticated.kwargs["fresh"] is True
    assert authenticated.session_id == created.session_id


def test_login_again_rotates_without_revoking(signal_app: Flask, backend: Backend) -> None:
    # The same user's session continues (its clocks too) under a new token.
    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    log_in(client, user_id)
    first = id_of(client)
    with SignalLog(signal_app) as log:
        log_in(client, user_id)
    assert log.names() == ["rotated", "authenticated"]
    assert log.one("rotated").kwargs["previous_id"] == first
    assert log.one("authenticated").kwargs["fresh"] is True


def test_login_as_another_user_ends_the_first_users_session(
    signal_app: Flask, backend: Backend
) -> None:
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = signal_app.test_client()
    log_in(client, ada)
    adas = id_of(client)
    with SignalLog(signal_app) as log:
        log_in(client, bob)
    assert log.names() == ["revoked", "created", "authenticated"]
    revoked = log.one("revoked")
    assert revoked.kwargs == {
        "user_id": ada,
        "session_id": adas,
        "count": 1,
        "reason": signals.LOGOUT,
    }
    assert revoked.in_store is False
    assert log.one("created").kwargs["replaced"] == adas
    assert log.one("authenticated").kwargs["user_id"] == bob


def test_logout(signal_app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    log_in(client, user_id)
    session_id = id_of(client)
    with SignalLog(signal_app) as log:
        client.post("/logout")
    assert log.names() == ["revoked"]
    revoked = log.one("revoked")
    assert revoked.kwargs == {
        "user_id": user_id,
        "session_id": session_id,
        "count": 1,
        "reason": "logout",
    }
    assert revoked.sender is signal_app and revoked.in_store is False


@pytest.mark.parametrize("say", [False, True], ids=["nothing-left", "a-message-left"])
def test_clearing_a_users_session_is_a_logout(
    signal_app: Flask, backend: Backend, say: bool
) -> None:
    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    log_in(client, user_id)
    session_id = id_of(client)
    with SignalLog(signal_app) as log:
        client.post("/clear?say=1" if say else "/clear")
    assert log.one("revoked").kwargs["reason"] == signals.LOGOUT
    assert log.one("revoked").kwargs["session_id"] == session_id
    if say:
        # What the logout left behind is a new anonymous session.
        assert log.names() == ["revoked", "created"]
        created = log.one("created")
        assert created.kwargs["replaced"] == session_id and created.user_id is None
        assert created.in_store
    else:
        assert log.names() == ["revoked"]


def test_an_anonymous_session_emptied_is_not_revoked(signal_app: Flask) -> None:
    client = signal_app.test_client()
    client.post("/set", data={"theme": "dark"})
    assert stored_id(client) is not None
    with SignalLog(signal_app) as log:
        client.post("/clear")
    assert stored_id(client) is None
    assert log.received == []


@pytest.mark.parametrize("say", [False, True], ids=["nothing-left", "a-message-left"])
def test_removing_the_current_session_is_told_once(
    signal_app: Flask, backend: Backend, say: bool
) -> None:
    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    log_in(client, user_id)
    session_id = id_of(client)
    with SignalLog(signal_app) as log:
        assert client.post("/remove-current?say=1" if say else "/remove-current").text == "True"
    assert log.of("revoked") == [log.received[0]]
    assert log.received[0].kwargs == {
        "user_id": user_id,
        "session_id": session_id,
        "count": 1,
        "reason": "logout",
    }
    assert log.names() == (["revoked", "created"] if say else ["revoked"])


def test_removing_another_session(signal_app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    phone, laptop = signal_app.test_client(), signal_app.test_client()
    log_in(phone, user_id)
    log_in(laptop, user_id)
    phones, laptops = id_of(phone), id_of(laptop)
    with SignalLog(signal_app) as log:
        assert laptop.post(f"/remove/{phones}").text == "True"
        # Gone already: nothing more to tell.
        assert laptop.post(f"/remove/{phones}").text == "False"
    assert log.names() == ["revoked"]
    assert log.one("revoked").kwargs == {
        "user_id": user_id,
        "session_id": phones,
        "count": 1,
        "reason": signals.ADMIN,
    }
    with SignalLog(signal_app) as log, signal_app.app_context():
        anonymous = create_session(data={"a": 1})
        log.clear()
        assert remove_session(anonymous, reason="gdpr-request")
        assert remove_session(laptops, reason="stolen-device")
    assert [r.kwargs for r in log.received] == [
        {"user_id": None, "session_id": anonymous.id, "count": 1, "reason": "gdpr-request"},
        {"user_id": user_id, "session_id": laptops, "count": 1, "reason": "stolen-device"},
    ]


def test_sign_out_all_other_devices(signal_app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    clients = [signal_app.test_client() for _ in range(3)]
    for client in clients:
        log_in(client, user_id)
    with SignalLog(signal_app) as log:
        assert clients[0].post("/sign-out-others").get_json() == {"count": 2}
        # Nobody else left: nothing revoked, nothing told.
        assert clients[0].post("/sign-out-others").get_json() == {"count": 0}
    assert log.names() == ["revoked"]
    assert log.one("revoked").kwargs == {
        "user_id": user_id,
        "session_id": None,
        "count": 2,
        "reason": signals.SIGN_OUT_OTHERS,
    }
    with SignalLog(signal_app) as log, signal_app.app_context():
        # An id from a command line names the user as the store does.
        assert remove_all_sessions_for_user(str(user_id), reason="account-closed") == 1
    assert log.one("revoked").kwargs["user_id"] == user_id
    assert log.one("revoked").kwargs["reason"] == "account-closed"


def test_credentials_changed(signal_app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    phone, laptop = signal_app.test_client(), signal_app.test_client()
    log_in(phone, user_id)
    log_in(laptop, user_id)
    before = id_of(laptop)
    with SignalLog(signal_app) as log:
        assert laptop.post("/credentials").text == "1"
    assert log.names() == ["revoked", "rotated"]
    assert log.one("revoked").kwargs == {
        "user_id": user_id,
        "session_id": None,
        "count": 1,
        "reason": signals.CREDENTIALS_CHANGED,
    }
    rotated = log.one("rotated")
    assert rotated.kwargs["previous_id"] == before
    assert rotated.session_id == id_of(laptop) != before
    assert rotated.in_store and rotated.user_id == user_id


def test_regenerate_rotates(signal_app: Flask, backend: Backend) -> None:
    client = signal_app.test_client()
    client.post("/set", data={"theme": "dark"})
    before = id_of(client)
    with SignalLog(signal_app) as log:
        client.post("/regenerate")
    assert log.names() == ["rotated"]
    rotated = log.one("rotated")
    assert rotated.kwargs["previous_id"] == before
    assert rotated.session_id == id_of(client) != before and rotated.in_store


def test_refresh_authentication_rotates_and_authenticates(
    signal_app: Flask, backend: Backend, clock: Clock
) -> None:
    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    log_in(client, user_id)
    before = id_of(client)
    clock.advance(minutes=30)
    with SignalLog(signal_app) as log:
        client.post("/refresh")
    assert log.names() == ["rotated", "authenticated"]
    assert log.one("rotated").kwargs["previous_id"] == before
    authenticated = log.one("authenticated")
    assert authenticated.kwargs == {"user_id": user_id, "fresh": True}
    assert authenticated.session_id == id_of(client) != before


def test_create_session_outside_a_request(signal_app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    with SignalLog(signal_app) as log, signal_app.app_context():
        created = create_session(user_id)
        create_session(data={"theme": "dark"})
    assert log.names() == ["created", "authenticated", "created"]
    assert log.received[0].sender is signal_app
    assert log.received[0].session_id == created.id and log.received[0].in_store
    assert log.received[1].kwargs == {"user_id": user_id, "fresh": True}
    assert log.received[2].user_id is None


def test_a_failed_request_tells_nothing(signal_app: Flask, backend: Backend) -> None:
    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    with SignalLog(signal_app) as log:
        response = client.post("/fail/login", data={"user_id": str(user_id)})
        assert response.status_code == 500
        log_in(client, user_id)
        log.clear()
        assert client.post("/fail/clear").status_code == 500
    assert log.received == []
    assert stored_id(client) is not None


def test_reads_and_touches_tell_nothing(signal_app: Flask, backend: Backend, clock: Clock) -> None:
    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    log_in(client, user_id)
    with SignalLog(signal_app) as log, backend.operations() as operations:
        client.get("/me")
        clock.advance(minutes=10)  # past the touch interval: the expiry slides
        client.get("/me")
    assert backend.writes(operations), operations
    assert log.received == []


def test_a_session_revoked_meanwhile_tells_nothing(signal_app: Flask, backend: Backend) -> None:
    @signal_app.post("/revoked-meanwhile")
    def revoked_meanwhile() -> str:
        # Another device signs this one out while the request runs.
        backend.store.delete(current_session.id)
        session["theme"] = "dark"
        return "ok"

    user_id = backend.add_user("ada@example.com")
    client = signal_app.test_client()
    log_in(client, user_id)
    with SignalLog(signal_app) as log:
        client.post("/revoked-meanwhile")
    assert log.received == []


def test_receivers_of_another_app_hear_nothing(signal_app: Flask, backend: Backend) -> None:
    other = Flask("other")
    other.config["SECRET_KEY"] = SECRET_KEY
    KitSession(other, store=backend.store)
    add_views(other)
    with SignalLog(signal_app) as log, SignalLog(other) as others:
        signal_app.test_client().post("/set", data={"a": "1"})
    assert log.names() == ["created"] and others.received == []


def test_expired_sessions_are_told_per_batch(
    signal_app: Flask, backend: Backend, clock: Clock
) -> None:
    with signal_app.app_context():
        for n in range(5):
            create_session(data={"n": n})
    clock.advance(days=40)
    with signal_app.app_context():
        live = create_session(data={"n": "live"})
    with SignalLog(signal_app) as log:
        result = signal_app.test_cli_runner().invoke(
            args=["kitsession", "cleanup", "--batch-size", "2"]
        )
    assert result.exit_code == 0, result.output
    if not backend.store.needs_purge:
        # Redis expires sessions by itself: nobody deletes them, nothing is told.
        assert log.received == []
        return
    counts = [r.kwargs["count"] for r in log.received]
    assert counts == [2, 2, 1]
    for received in log.received:
        assert received.sender is signal_app
        assert received.kwargs["reason"] == signals.EXPIRED
        assert received.kwargs["user_id"] is None and received.kwargs["session_id"] is None
    with SignalLog(signal_app) as log, signal_app.app_context():
        assert purge_expired() == 0
        assert log.received == []
        clock.advance(days=40)
        batches: list[int] = []
        assert purge_expired(progress=batches.append) == 1
    assert batches[0] == 1
    assert log.one("revoked").kwargs["count"] == 1
    assert live.id is not None


def test_admin_revocations_from_the_command_line(signal_app: Flask, backend: Backend) -> None:
    ada = backend.add_user("ada@example.com")
    clients = [signal_app.test_client() for _ in range(3)]
    for client in clients:
        log_in(client, ada)
    first = id_of(clients[0])
    runner = signal_app.test_cli_runner()
    with SignalLog(signal_app) as log:
        result = runner.invoke(args=["kitsession", "revoke", "--session", first[:12]])
        assert result.exit_code == 0, result.output
        result = runner.invoke(args=["kitsession", "revoke", "--user", str(ada)])
        assert result.exit_code == 0, result.output
    assert [r.kwargs for r in log.received] == [
        {"user_id": ada, "session_id": first, "count": 1, "reason": signals.ADMIN},
        {"user_id": ada, "session_id": None, "count": 2, "reason": signals.ADMIN},
    ]


def test_a_reason_must_be_a_word(signal_app: Flask) -> None:
    with signal_app.app_context():
        for reason in ("", 42):
            with pytest.raises(TypeError, match="reason must be a non-empty string"):
                remove_session("0" * 64, reason=reason)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="reason must be a non-empty string"):
                remove_all_sessions_for_user(1, reason=reason)  # type: ignore[arg-type]


def test_the_reasons_are_documented() -> None:
    assert signals.REVOKE_REASONS == (
        "logout",
        "sign-out-others",
        "credentials-changed",
        "expired",
        "admin",
    )


# -- Flask-Login ------------------------------------------------------------------


def test_flask_login_logins_and_logouts(login_app: LoginApp) -> None:
    from flask_login import confirm_login

    app = login_app.app
    login_app.add_user("u-1", "ada@example.com")
    add_signal_views(app)

    @app.post("/confirm")
    def confirm() -> str:
        confirm_login()
        return "ok"

    client = app.test_client()
    with SignalLog(app) as log:
        client.post("/login/u-1")
    assert log.names() == ["created", "authenticated"]
    assert log.one("authenticated").kwargs == {"user_id": "u-1", "fresh": True}
    session_id = log.one("created").session_id

    with SignalLog(app) as log:
        client.post("/confirm")
    assert log.names() == ["rotated", "authenticated"]
    assert log.one("rotated").kwargs["previous_id"] == session_id
    assert log.one("authenticated").kwargs["fresh"] is True
    session_id = log.one("rotated").session_id

    with SignalLog(app) as log:
        client.post("/logout")
    assert log.names() == ["revoked"]
    assert log.one("revoked").kwargs == {
        "user_id": "u-1",
        "session_id": session_id,
        "count": 1,
        "reason": "logout",
    }


def test_flask_login_remember_cookie_is_not_fresh(login_app: LoginApp) -> None:
    app = login_app.app
    login_app.add_user("u-1", "ada@example.com")
    client = app.test_client()
    client.post("/login/u-1?remember=1")
    # The browser closed: its session cookie is gone, the remember cookie stays.
    client.delete_cookie("session")
    with SignalLog(app) as log:
        assert client.get("/profile").status_code == 200
    assert log.names() == ["created", "authenticated"]
    assert log.one("authenticated").kwargs == {"user_id": "u-1", "fresh": False}
    assert log.one("created").kwargs["replaced"] is None

    with SignalLog(app) as log:
        client.post("/logout")
    assert log.names() == ["revoked"]
    assert log.one("revoked").kwargs["reason"] == signals.LOGOUT
    assert client.get_cookie("remember_token") is None
