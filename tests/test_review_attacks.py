"""An independent review's attacks on the promises of README.md and
docs/security.md (and the how-to pages they link to).

Every test asserts a documented promise. Each promise the review found broken
was marked ``xfail(strict=True)`` until the library was fixed; they are all
plain tests now.
"""

from __future__ import annotations

import json
import logging
import threading
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import tzinfo

import pytest
from flask import abort
from flask import flash
from flask import Flask
from flask import get_flashed_messages
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import create_session
from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import fresh_login_required
from flask_kitsession import get_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import refresh_authentication
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import remove_session
from flask_kitsession import SessionDataError
from flask_kitsession import set_session
from flask_kitsession import set_session_cookie
from flask_kitsession import UnknownUserError
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import LoginApp
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.clients import session_cookie

pytestmark = pytest.mark.reliability

USER_KEYS = ["user_id", "_user_id", "userId", "id"]


# -- helpers -------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def add_review_views(app: Flask) -> None:
    """Views an ordinary app composes from kitsession's and Flask's features."""

    @app.get("/info")
    def info() -> t.Any:
        s = current_session
        return jsonify(
            user_id=s.user_id,
            keys=sorted(s.keys()),
            data={k: repr(v) for k, v in s.items()},
            created_at=iso(s.created_at),
            authenticated_at=iso(s.authenticated_at),
            expires_at=iso(s.expires_at),
        )

    @app.post("/plain-link/<key>")
    def plain_link(key: str) -> t.Any:
        for name, value in request.form.items():
            if name != "uid":
                session[name] = value
        session[key] = int(request.form["uid"])
        return "linked"

    @app.post("/update-link")
    def update_link() -> t.Any:
        session.update({"user_id": int(request.form["uid"])})
        return "linked"

    @app.post("/setdefault-link")
    def setdefault_link() -> t.Any:
        session.setdefault("user_id", int(request.form["uid"]))
        return "linked"

    @app.post("/ior-link")
    def ior_link() -> t.Any:
        s = t.cast(dict[str, t.Any], session)
        s |= {"user_id": int(request.form["uid"])}
        session["touched"] = "yes"
        return "linked"

    @app.post("/unlink/<how>")
    def unlink(how: str) -> t.Any:
        if how == "pop":
            session.pop("user_id")
        elif how == "del":
            del session["user_id"]
        elif how == "clear":
            session.clear()
        elif how == "popitem":
            while session:
                session.popitem()
        elif how == "none":
            session["user_id"] = None
        for name, value in request.form.items():
            session[name] = value
        return "unlinked"

    @app.post("/logout-then-login")
    def logout_then_login() -> t.Any:
        remove_session(current_session)
        session["user_id"] = int(request.form["uid"])
        return "switched"

    @app.post("/login-new-then-flash")
    @with_new_session
    def login_and_flash() -> t.Any:
        flash("welcome")
        session["user_id"] = int(request.form["uid"])
        return "in"

    @app.post("/failed-login")
    @with_new_session
    def failed_login() -> t.Any:
        flash("wrong password")
        return "no", 401

    @app.post("/raising-login")
    @with_new_session
    def raising_login() -> t.Any:
        session["user_id"] = int(request.form["uid"])
        raise RuntimeError("boom after linking")

    @app.post("/login-500")
    @with_new_session
    def login_500() -> t.Any:
        session["user_id"] = int(request.form["uid"])
        return "failed", 500

    @app.post("/login-400")
    @with_new_session
    def login_400() -> t.Any:
        session["user_id"] = int(request.form["uid"])
        return "bad", 400

    @app.post("/plain-500")
    def plain_500() -> t.Any:
        session["spoiled"] = "yes"
        return "failed", 500

    @app.post("/plain-503")
    def plain_503() -> t.Any:
        session["spoiled"] = "yes"
        abort(503)

    @app.post("/regenerate")
    def do_regenerate() -> t.Any:
        regenerate()
        return "rotated"

    @app.post("/refresh")
    def do_refresh() -> t.Any:
        refresh_authentication()
        return "refreshed"

    @app.post("/credentials-changed")
    def do_credentials_changed() -> t.Any:
        return str(credentials_changed())

    @app.get("/fresh")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def fresh() -> t.Any:
        return "fresh"

    @app.post("/flash")
    def do_flash() -> t.Any:
        flash(request.form.get("message", "hello"))
        return "flashed"

    @app.get("/flashes")
    def flashes() -> t.Any:
        return jsonify(get_flashed_messages())

    @app.post("/logout-and-flash")
    def logout_and_flash() -> t.Any:
        remove_session(current_session)
        flash("bye")
        return "out"

    @app.post("/permanent")
    def make_permanent() -> t.Any:
        session.permanent = True
        session["permanent"] = "yes"
        return "ok"


def make_app(backend: Backend, clock: Clock, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
    app.config.update(config)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)
    add_review_views(app)
    return app


def info(client: FlaskClient) -> dict[str, t.Any]:
    response = client.get("/info")
    assert response.status_code == 200, response.data
    data = response.get_json()
    assert isinstance(data, dict)
    return data


def replay(app: Flask, cookie: str | None) -> FlaskClient:
    """A new browser that sends ``cookie`` (an old one, a stolen one)."""
    client = app.test_client()
    if cookie is not None:
        client.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"), cookie)
    return client


def anonymous_start(client: FlaskClient, **data: str) -> str:
    """Give the client a stored anonymous session holding ``data``; return its cookie."""
    response = client.post("/set", data=data or {"visit": "1"})
    assert response.status_code == 200
    cookie = session_cookie(client)
    assert cookie is not None
    return cookie


def login(client: FlaskClient, user_id: t.Any) -> str:
    response = client.post("/login", data={"user_id": str(user_id)})
    assert response.status_code == 200, response.data
    cookie = session_cookie(client)
    assert cookie is not None
    return cookie


def stored_user_sessions(backend: Backend, user_id: t.Any) -> list[dict[str, t.Any]]:
    return [row for row in backend.rows() if row["user_id"] == user_id]


@pytest.fixture
def rapp(backend: Backend, clock: Clock) -> Flask:
    return make_app(backend, clock)


# -- 0. lifecycle: the token changes whenever the linked user changes ------------


@pytest.mark.parametrize("key", USER_KEYS)
def test_plain_view_linking_changes_the_token_and_kills_the_old_cookie(
    backend: Backend, rapp: Flask, key: str
) -> None:
    """'The token changes whenever the linked user changes (none -> A) ... by
    any path ... The old cookie is dead from then on.'"""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    planted = anonymous_start(client, planted="by attacker")
    assert client.post(f"/plain-link/{key}", data={"uid": str(uid)}).status_code == 200
    new = session_cookie(client)
    assert new is not None and new != planted
    assert info(client)["user_id"] == uid
    assert info(replay(rapp, planted))["user_id"] is None


@pytest.mark.parametrize("path", ["/update-link", "/setdefault-link"])
def test_linking_through_update_or_setdefault_changes_the_token(
    backend: Backend, rapp: Flask, path: str
) -> None:
    """'writing ... one of KITSESSION_USER_ID_KEYS ... by any path'; update()
    and setdefault() are documented ways of setting values."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    planted = anonymous_start(client)
    assert client.post(path, data={"uid": str(uid)}).status_code == 200
    assert session_cookie(client) != planted
    assert info(client)["user_id"] == uid
    assert info(replay(rapp, planted))["user_id"] is None


def test_linking_through_in_place_or_operator_never_links_under_the_planted_token(
    backend: Backend, rapp: Flask
) -> None:
    """'by any path': ``session |= {"user_id": ...}`` is ordinary Python. Either
    the user is linked under a new token, or not at all; never under the
    token the visitor had before."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    planted = anonymous_start(client)
    response = client.post("/ior-link", data={"uid": str(uid)})
    assert response.status_code in (200, 500)
    victim = info(client)
    attacker = info(replay(rapp, planted))
    assert attacker["user_id"] is None
    if victim["user_id"] == uid:
        assert session_cookie(client) != planted


@pytest.mark.parametrize("how", ["pop", "del", "clear", "popitem", "none"])
def test_unlinking_a_user_changes_the_token_and_carries_nothing_over(
    backend: Backend, clock: Clock, how: str
) -> None:
    """'A -> none, by any path ... session.clear()': the token changes, the old
    cookie is dead, and 'Nothing of a signed-in session follows it into an
    anonymous one' even with KITSESSION_CARRY_OVER_KEYS = "*"."""
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    client.post("/set", data={"secret": "of user a"})
    signed_in = session_cookie(client)
    assert (
        client.post(f"/unlink/{how}", data={"after": "written by the request"}).status_code == 200
    )
    new = session_cookie(client)
    now = info(client)
    assert now["user_id"] is None
    assert "secret" not in now["keys"]
    assert new != signed_in
    assert info(replay(app, signed_in))["user_id"] is None
    assert stored_user_sessions(backend, uid) == []


def test_switching_users_in_a_plain_view(backend: Backend, clock: Clock) -> None:
    """A -> B by a plain write: new token, old cookie dead, nothing of A in B's
    session even with carry-over "*"; one stored session for the browser."""
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")
    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = app.test_client()
    login(client, a)
    client.post("/set", data={"secret": "of a"})
    old = session_cookie(client)
    assert client.post("/plain-link/user_id", data={"uid": str(b)}).status_code == 200
    assert session_cookie(client) != old
    now = info(client)
    assert now["user_id"] == b
    assert "secret" not in now["keys"]
    assert info(replay(app, old))["user_id"] is None
    assert len(backend.rows()) == 1


def test_logout_then_login_in_one_request(backend: Backend, clock: Clock) -> None:
    """'end ... what the request writes afterwards (a flash, another login) goes
    into a new session' and nothing crosses from one user to another."""
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")
    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = app.test_client()
    login(client, a)
    client.post("/set", data={"secret": "of a"})
    old = session_cookie(client)
    assert client.post("/logout-then-login", data={"uid": str(b)}).status_code == 200
    now = info(client)
    assert now["user_id"] == b
    assert "secret" not in now["keys"]
    assert session_cookie(client) != old
    assert info(replay(app, old))["user_id"] is None
    assert len(backend.rows()) == 1


def test_relogin_of_the_same_user_changes_the_token_and_refreshes(
    backend: Backend, rapp: Flask, clock: Clock
) -> None:
    """'A login of the user already linked starts over too'; 'whenever the
    session becomes freshly authenticated (a login, a re-login of the same
    user ...)'. The absolute clock is kept ('A re-login of that user ... keep[s] it')."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    first = login(client, uid)
    before = info(client)
    clock.advance(minutes=30)
    second = login(client, uid)
    after = info(client)
    assert second != first
    assert info(replay(rapp, first))["user_id"] is None
    assert after["authenticated_at"] == clock.now.isoformat()
    assert after["created_at"] == before["created_at"]
    assert len(backend.rows()) == 1


def test_carry_over_none_keeps_only_what_the_request_wrote(backend: Backend, rapp: Flask) -> None:
    """'only what the request itself wrote follows it, plus the keys of
    KITSESSION_CARRY_OVER_KEYS' (default: none)."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    anonymous_start(client, cart="3 apples")
    assert client.post("/login-new-then-flash", data={"uid": str(uid)}).status_code == 200
    now = info(client)
    assert now["user_id"] == uid
    assert "cart" not in now["keys"]
    assert client.get("/flashes").get_json() == ["welcome"]


def test_carry_over_list_follows_anonymous_into_account_only(
    backend: Backend, clock: Clock
) -> None:
    """A listed key follows an anonymous visitor into their account, and never
    from one user to another."""
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS=["cart"])
    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = app.test_client()
    anonymous_start(client, cart="3 apples", other="dropped")
    login(client, a)
    now = info(client)
    assert now["data"].get("cart") == repr("3 apples")
    assert "other" not in now["keys"]
    client.post("/set", data={"cart": "a's cart"})
    login(client, b)
    assert "cart" not in info(client)["keys"]


def test_failed_login_changes_nothing_but_what_it_wrote(
    backend: Backend, rapp: Flask, clock: Clock
) -> None:
    """'A @with_new_session view that links nobody leaves the visitor's session
    (its token, user and clocks) as it was, plus what the view wrote'."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    cookie = login(client, uid)
    before = info(client)
    clock.advance(minutes=2)
    assert client.post("/failed-login").status_code == 401
    after = info(client)
    assert session_cookie(client) == cookie
    assert after["user_id"] == uid
    assert after["authenticated_at"] == before["authenticated_at"]
    assert after["created_at"] == before["created_at"]
    assert client.get("/flashes").get_json() == ["wrong password"]


def test_a_login_view_that_raises_leaves_the_session(backend: Backend, clock: Clock) -> None:
    """'A view that raises leaves the session as it was before the view', and
    'A request that ends in a 5xx ... keeps none of its session changes'
    (production form: PROPAGATE_EXCEPTIONS off)."""
    app = make_app(backend, clock, TESTING=False)
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    cookie = anonymous_start(client, cart="kept")
    assert client.post("/raising-login", data={"uid": str(uid)}).status_code == 500
    assert client.post("/login-500", data={"uid": str(uid)}).status_code == 500
    assert client.post("/plain-500").status_code == 500
    assert client.post("/plain-503").status_code == 503
    assert session_cookie(client) == cookie
    now = info(client)
    assert now["user_id"] is None
    assert now["data"] == {"cart": repr("kept")}
    assert stored_user_sessions(backend, uid) == []


def test_a_4xx_keeps_its_session_changes(backend: Backend, rapp: Flask) -> None:
    """'a 4xx keeps them'."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    planted = anonymous_start(client)
    assert client.post("/login-400", data={"uid": str(uid)}).status_code == 400
    assert info(client)["user_id"] == uid
    assert session_cookie(client) != planted


def test_one_browser_one_stored_session_through_everything(backend: Backend, rapp: Flask) -> None:
    """'A request that ends with a user linked leaves exactly one stored
    session for that browser, the one its cookie names.'"""
    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = rapp.test_client()
    anonymous_start(client)
    steps: list[tuple[str, dict[str, str]]] = [
        ("/login", {"user_id": str(a)}),
        ("/login", {"user_id": str(a)}),
        ("/regenerate", {}),
        ("/refresh", {}),
        ("/plain-link/user_id", {"uid": str(b)}),
        ("/logout-then-login", {"uid": str(a)}),
        ("/login-new-then-flash", {"uid": str(b)}),
        ("/credentials-changed", {}),
    ]
    for path, form in steps:
        response = client.post(path, data=form)
        assert response.status_code == 200, (path, response.data)
        rows = backend.rows()
        assert len(rows) == 1, path
        assert info(client)["user_id"] is not None


# -- freshness -------------------------------------------------------------------


def test_fresh_login_required_follows_the_login_clock(
    backend: Backend, rapp: Flask, clock: Clock
) -> None:
    """'fresh_login_required refuses when authenticated_at is older than
    max_age'; refresh_authentication() makes it fresh and gives a new token."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    assert client.get("/fresh").status_code == 401
    login(client, uid)
    assert client.get("/fresh").status_code == 200
    clock.advance(minutes=11)
    assert client.get("/fresh").status_code == 401
    before = session_cookie(client)
    assert client.post("/refresh").status_code == 200
    assert session_cookie(client) != before
    assert info(replay(rapp, before))["user_id"] is None
    assert client.get("/fresh").status_code == 200


@pytest.mark.parametrize("path", ["/regenerate", "/credentials-changed", "/set"])
def test_rotation_and_writes_do_not_make_a_login_fresh(
    backend: Backend, rapp: Flask, clock: Clock, path: str
) -> None:
    """'Freshness comes only from real authentication': regenerate(),
    credentials_changed() and plain writes are not authentication."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, uid)
    clock.advance(minutes=11)
    assert client.post(path, data={"x": "1"}).status_code == 200
    assert client.get("/fresh").status_code == 401


def test_rewriting_the_same_user_id_in_a_plain_view_is_not_authentication(
    backend: Backend, rapp: Flask, clock: Clock
) -> None:
    """authenticated_at becomes now for 'a plain view linking a *new* user';
    writing the id that is already linked links nobody new."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, uid)
    clock.advance(minutes=11)
    assert client.post("/plain-link/user_id", data={"uid": str(uid)}).status_code == 200
    assert info(client)["user_id"] == uid
    assert client.get("/fresh").status_code == 401


def test_plain_view_linking_a_new_user_is_fresh(backend: Backend, rapp: Flask) -> None:
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    client.post("/plain-link/userId", data={"uid": str(uid)})
    assert client.get("/fresh").status_code == 200


def test_stale_login_goes_to_the_reauthenticate_view_with_next(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock, KITSESSION_REAUTHENTICATE_VIEW="reauth")

    @app.get("/reauth")
    def reauth() -> str:
        return "password please"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    clock.advance(minutes=11)
    response = client.get("/fresh?x=1")
    assert response.status_code in (302, 303)
    assert response.location.startswith("/reauth")
    assert "next=" in response.location


# -- timeouts with a moving clock --------------------------------------------------


def test_idle_timeout_on_the_server_and_a_dead_cookie_is_not_revived(
    backend: Backend, clock: Clock
) -> None:
    """'A session expires at its last use plus the idle timeout'; 'A write made
    with [a replayed ended cookie] starts a new session under a new token; the
    old session is neither revived nor extended.'"""
    app = make_app(backend, clock, KITSESSION_IDLE_TIMEOUT=timedelta(minutes=30))
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    cookie = login(client, uid)
    for _ in range(3):
        clock.advance(minutes=29)
        assert info(client)["user_id"] == uid
    clock.advance(minutes=31)
    assert info(replay(app, cookie))["user_id"] is None
    attacker = replay(app, cookie)
    assert attacker.post("/set", data={"x": "1"}).status_code == 200
    assert session_cookie(attacker) != cookie
    assert info(replay(app, cookie))["user_id"] is None
    assert stored_user_sessions(backend, uid) == [] or all(
        row["expires_at"] <= clock.now for row in stored_user_sessions(backend, uid)
    )


def test_absolute_timeout_in_constant_use_and_relogin_keeps_it(
    backend: Backend, clock: Clock
) -> None:
    """'The absolute timeout is never exceeded ... A re-login of that user,
    regenerate(), refresh_authentication() and carry-over keep it'."""
    app = make_app(
        backend,
        clock,
        KITSESSION_IDLE_TIMEOUT=timedelta(minutes=30),
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=2),
    )
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    start = clock.now
    for path in ["/set", "/regenerate", "/refresh", "/login", "/set", "/regenerate"]:
        clock.advance(minutes=19)
        assert client.post(path, data={"user_id": str(uid), "x": "1"}).status_code == 200
        now = info(client)
        assert now["user_id"] == uid, path
        assert datetime.fromisoformat(now["expires_at"]) <= start + timedelta(hours=2)
    clock.now = start + timedelta(hours=2, seconds=1)
    assert info(client)["user_id"] is None
    # A new login after the limit starts a new link, with its own two hours.
    login(client, uid)
    clock.advance(minutes=20)
    assert info(client)["user_id"] == uid


def test_absolute_timeout_counts_from_the_login_not_from_the_anonymous_visit(
    backend: Backend, clock: Clock
) -> None:
    """'It counts from created_at: the creation of the first session of an
    uninterrupted link of the browser to the same user.' An anonymous visit
    is no link to the user."""
    app = make_app(
        backend,
        clock,
        KITSESSION_IDLE_TIMEOUT=timedelta(minutes=30),
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=2),
        KITSESSION_CARRY_OVER_KEYS="*",
    )
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    anonymous_start(client, cart="1")
    for _ in range(5):
        clock.advance(minutes=20)
        client.post("/set", data={"cart": "more"})
    login(client, uid)
    logged_in_at = clock.now
    clock.advance(minutes=20)
    assert info(client)["user_id"] == uid
    assert info(client)["created_at"] == logged_in_at.isoformat()


def test_switching_users_starts_a_new_absolute_clock(backend: Backend, clock: Clock) -> None:
    """'only a logout or a link to another user starts a new one'."""
    app = make_app(
        backend,
        clock,
        KITSESSION_IDLE_TIMEOUT=timedelta(minutes=30),
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=2),
    )
    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = app.test_client()
    login(client, a)
    clock.advance(minutes=100)
    login(client, b)
    assert info(client)["created_at"] == clock.now.isoformat()
    clock.advance(minutes=25)
    assert info(client)["user_id"] == b


def test_a_save_in_flight_never_outlives_the_absolute_timeout(
    backend: Backend, clock: Clock
) -> None:
    """'A save in flight cannot carry a session past its absolute timeout.'"""
    app = make_app(
        backend,
        clock,
        KITSESSION_IDLE_TIMEOUT=timedelta(minutes=30),
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=2),
    )

    @app.post("/slow-write")
    def slow_write() -> str:
        _ = session.get("x")
        clock.advance(minutes=125)
        session["x"] = "written late"
        return "ok"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    cookie = login(client, uid)
    clock.advance(minutes=1)
    client.post("/slow-write")
    assert info(client)["user_id"] is None
    assert info(replay(app, cookie))["user_id"] is None


def test_permanent_cookie_expires_with_the_stored_session(backend: Backend, clock: Clock) -> None:
    """'A permanent session's cookie expires with the stored session; others
    are browser-session cookies.'"""
    app = make_app(backend, clock, KITSESSION_IDLE_TIMEOUT=timedelta(minutes=30))
    client = app.test_client()
    response = client.post("/set", data={"x": "1"})
    assert "Expires=" not in response.headers["Set-Cookie"]
    response = client.post("/permanent")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is not None
    stored = datetime.fromisoformat(info(client)["expires_at"])
    assert abs((cookie.expires - stored).total_seconds()) <= 1


# -- revocation racing in-flight requests -----------------------------------------------


IN_FLIGHT_ACTIONS = ["write", "flash", "regenerate", "refresh", "touch", "permanent"]


@pytest.mark.parametrize("action", IN_FLIGHT_ACTIONS)
def test_a_revocation_during_a_request_is_never_undone(
    backend: Backend, clock: Clock, action: str
) -> None:
    """'A revoked session never comes back, not even through a request in flight
    across the revocation': the revocation happens (from another worker, on
    the store) after the request read its session and before it saves."""
    app = make_app(backend, clock)
    uid = backend.add_user("a@example.com")

    @app.post("/in-flight")
    def in_flight() -> str:
        assert current_session.user_id == uid
        backend.store.delete_all_for_user(uid)  # another device: "sign out everywhere"
        if action == "write":
            session["x"] = "late write"
        elif action == "flash":
            flash("late flash")
        elif action == "regenerate":
            regenerate()
        elif action == "refresh":
            refresh_authentication()
        elif action == "permanent":
            session.permanent = True
        return "done"

    client = app.test_client()
    login(client, uid)
    client.post("/set", data={"mine": "1"})
    cookie = session_cookie(client)
    if action == "touch":
        clock.advance(minutes=5)
    response = client.post("/in-flight")
    assert response.status_code == 200
    assert info(client)["user_id"] is None
    assert info(replay(app, cookie))["user_id"] is None
    assert stored_user_sessions(backend, uid) == []


def test_credentials_changed_of_a_revoked_session_does_not_bring_it_back(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock)
    uid = backend.add_user("a@example.com")

    @app.post("/in-flight-password")
    def in_flight_password() -> str:
        backend.store.delete_all_for_user(uid)
        credentials_changed()
        return "done"

    client = app.test_client()
    cookie = login(client, uid)
    client.post("/in-flight-password")
    assert info(client)["user_id"] is None
    assert info(replay(app, cookie))["user_id"] is None
    assert stored_user_sessions(backend, uid) == []


def test_revocation_across_threads_never_resurrects(backend: Backend, clock: Clock) -> None:
    """The same with real threads: device 1 is held between reading and saving
    while device 2 signs out everywhere else."""
    app = make_app(backend, clock)
    uid = backend.add_user("a@example.com")
    read = threading.Event()
    revoked = threading.Event()

    @app.post("/held")
    def held() -> str:
        _ = session.get("x")
        read.set()
        assert revoked.wait(10)
        session["x"] = "late"
        return "ok"

    device1, device2 = app.test_client(), app.test_client()
    cookie1 = login(device1, uid)
    login(device2, uid)
    results: list[int] = []
    thread = threading.Thread(target=lambda: results.append(device1.post("/held").status_code))
    thread.start()
    assert read.wait(10)
    assert device2.post("/sign-out-others").get_json() == {"count": 1}
    revoked.set()
    thread.join(10)
    assert results == [200]
    assert info(device1)["user_id"] is None
    assert info(replay(app, cookie1))["user_id"] is None
    assert info(device2)["user_id"] == uid
    assert len(stored_user_sessions(backend, uid)) == 1


def test_a_user_the_loader_no_longer_finds_counts_as_gone(backend: Backend, rapp: Flask) -> None:
    """SQL: 'Deleting a user deletes their sessions'; Redis/memory: 'A session
    whose user the loader no longer finds counts as gone'."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    cookie = login(client, uid)
    if hasattr(backend, "users"):
        del backend.users[uid]  # no store call: only the user is gone
    else:
        backend.delete_user(uid)
    assert info(replay(rapp, cookie))["user_id"] is None
    attacker = replay(rapp, cookie)
    attacker.post("/set", data={"x": "1"})
    assert info(attacker)["user_id"] is None


# -- Flask-Login ---------------------------------------------------------------------


def add_login_views(login_app: LoginApp) -> None:
    from flask_login import confirm_login
    from flask_login import current_user
    from flask_login import fresh_login_required as flask_login_fresh_required
    from flask_login import login_user
    from flask_login import logout_user

    app, db, member = login_app.app, login_app.db, login_app.user_model
    add_review_views(app)

    @app.post("/login-not-fresh/<user_id>")
    def login_not_fresh(user_id: str) -> str:
        login_user(db.session.get(member, user_id), fresh=False)
        return "in"

    @app.post("/logout-login/<user_id>")
    def logout_login(user_id: str) -> str:
        logout_user()
        login_user(db.session.get(member, user_id))
        return "switched"

    @app.post("/logout-flash")
    def logout_flash() -> str:
        logout_user()
        flash("bye")
        return "out"

    @app.post("/confirm")
    def confirm() -> str:
        confirm_login()
        return "confirmed"

    @app.get("/flask-login-fresh")
    @flask_login_fresh_required
    def flask_login_fresh() -> str:
        return "fresh"

    @app.post("/plain-link-text")
    def plain_link_text() -> str:
        session["_user_id"] = request.form["uid"]
        return "linked"

    @app.get("/whoami")
    def whoami() -> t.Any:
        return jsonify(
            user=current_user.get_id() if current_user.is_authenticated else None,
            session_user=current_session.user_id,
        )


@pytest.fixture
def lapp(login_app: LoginApp) -> LoginApp:
    add_login_views(login_app)
    login_app.add_user("u1", "one@example.com")
    login_app.add_user("u2", "two@example.com")
    return login_app


def test_login_user_changes_the_token(lapp: LoginApp) -> None:
    client = lapp.app.test_client()
    planted = anonymous_start(client, cart="1")
    assert client.post("/login/u1").status_code == 200
    assert session_cookie(client) != planted
    assert info(client)["user_id"] == "u1"
    assert info(replay(lapp.app, planted))["user_id"] is None
    assert "cart" not in info(client)["keys"]


def test_login_user_switch_carries_nothing_of_the_first_user(login_app: LoginApp) -> None:
    lapp = login_app
    lapp.app.config["KITSESSION_CARRY_OVER_KEYS"] = "*"
    add_login_views(lapp)
    lapp.add_user("u1", "one@example.com")
    lapp.add_user("u2", "two@example.com")
    client = lapp.app.test_client()
    client.post("/login/u1")
    client.post("/set", data={"secret": "of u1"})
    old = session_cookie(client)
    assert client.post("/login/u2").status_code == 200
    now = info(client)
    assert now["user_id"] == "u2"
    assert "secret" not in now["keys"]
    assert info(replay(lapp.app, old))["user_id"] is None


def test_logout_user_then_login_user_in_one_request(lapp: LoginApp) -> None:
    client = lapp.app.test_client()
    client.post("/login/u1")
    client.post("/set", data={"secret": "of u1"})
    old = session_cookie(client)
    assert client.post("/logout-login/u2").status_code == 200
    now = info(client)
    assert now["user_id"] == "u2"
    assert "secret" not in now["keys"]
    assert session_cookie(client) != old
    assert info(replay(lapp.app, old))["user_id"] is None
    assert client.get("/whoami").get_json() == {"user": "u2", "session_user": "u2"}


def test_logout_user_kills_the_cookie_and_a_flash_survives_alone(lapp: LoginApp) -> None:
    """'logout_user() deletes the stored session and expires its cookie'; 'what
    the request writes afterwards (a flash ...) goes into a new session'."""
    client = lapp.app.test_client()
    client.post("/login/u1")
    client.post("/set", data={"secret": "of u1"})
    old = session_cookie(client)
    assert client.post("/logout-flash").status_code == 200
    assert info(replay(lapp.app, old))["user_id"] is None
    assert client.get("/flashes").get_json() == ["bye"]
    now = info(client)
    assert now["user_id"] is None
    assert "secret" not in now["keys"]
    assert client.get("/profile").status_code == 401


def test_remember_cookie_restore_gets_a_new_token_and_is_not_fresh(
    lapp: LoginApp, clock: Clock
) -> None:
    """'A login that Flask-Login marks not fresh (a remember-cookie restore)
    sets [authenticated_at] to None for a new link'; the token changes."""
    app = lapp.app
    client = app.test_client()
    client.post("/login/u1?remember=1")
    remember = client.get_cookie("remember_token")
    assert remember is not None
    # A browser restarted: the session cookie is gone, or an old one remains.
    fresh_browser = app.test_client()
    planted = anonymous_start(fresh_browser)
    fresh_browser.set_cookie("remember_token", remember.value)
    assert fresh_browser.get("/profile").status_code == 200
    assert session_cookie(fresh_browser) != planted
    now = info(fresh_browser)
    assert now["user_id"] == "u1"
    assert now["authenticated_at"] is None
    assert fresh_browser.get("/fresh").status_code == 401
    assert fresh_browser.get("/flask-login-fresh").status_code == 401
    assert info(replay(app, planted))["user_id"] is None


def test_login_user_fresh_false_is_not_fresh(lapp: LoginApp) -> None:
    client = lapp.app.test_client()
    client.post("/login-not-fresh/u1")
    assert info(client)["authenticated_at"] is None
    assert client.get("/fresh").status_code == 401


def test_login_user_fresh_false_of_the_same_user_keeps_the_clock(
    lapp: LoginApp, clock: Clock
) -> None:
    """'... and leaves it as it was for the same user.'"""
    client = lapp.app.test_client()
    client.post("/login/u1")
    at = info(client)["authenticated_at"]
    clock.advance(minutes=1)
    client.post("/login-not-fresh/u1")
    assert info(client)["authenticated_at"] == at


def test_confirm_login_makes_fresh_and_changes_the_token(lapp: LoginApp, clock: Clock) -> None:
    client = lapp.app.test_client()
    client.post("/login-not-fresh/u1")
    before = session_cookie(client)
    client.post("/confirm")
    assert session_cookie(client) != before
    assert info(client)["authenticated_at"] == clock.now.isoformat()
    assert client.get("/fresh").status_code == 200
    assert info(replay(lapp.app, before))["user_id"] is None


def test_a_stolen_cookie_used_from_another_browser_is_not_fresh(
    lapp: LoginApp,
) -> None:
    """'fresh_login_required refuses when ... Flask-Login's _fresh is False.'
    With Flask-Login's default session protection ("basic"), a request whose
    browser does not match the login's is marked not fresh; kitsession's
    fresh_login_required must refuse it too, on that very request."""
    app = lapp.app
    victim = app.test_client()
    victim.post("/login/u1", headers={"User-Agent": "Victim/1.0"})
    assert victim.get("/fresh", headers={"User-Agent": "Victim/1.0"}).status_code == 200
    # First kitsession's decorator, on the thief's very first request.
    thief = replay(app, session_cookie(victim))
    assert thief.get("/fresh", headers={"User-Agent": "Thief/6.6"}).status_code == 401
    thief2 = replay(app, session_cookie(victim))
    assert thief2.get("/flask-login-fresh", headers={"User-Agent": "Thief/6.6"}).status_code == 401


def test_strong_session_protection_logout_changes_the_token(lapp: LoginApp) -> None:
    """Flask-Login's "strong" protection removes the user keys (A -> none by
    'removing one of KITSESSION_USER_ID_KEYS ... by any path'): the token
    changes and nothing of the signed-in session follows."""
    app = lapp.app
    app.login_manager.session_protection = "strong"  # type: ignore[attr-defined]
    victim = app.test_client()
    victim.post("/login/u1", headers={"User-Agent": "Victim/1.0"})
    victim.post("/set", data={"secret": "of u1"}, headers={"User-Agent": "Victim/1.0"})
    stolen = session_cookie(victim)
    thief = replay(app, stolen)
    assert thief.get("/whoami", headers={"User-Agent": "Thief/6.6"}).get_json()["user"] is None
    thief_now = info(thief)
    assert thief_now["user_id"] is None
    assert "secret" not in thief_now["keys"]
    assert session_cookie(thief) != stolen
    # The victim's own session is not revived under the stolen token.
    assert info(replay(app, stolen))["user_id"] is None


# -- keys, foreign cookies, hostile cookies -------------------------------------------


def set_cookie_headers(response: t.Any, name: str = "session") -> list[str]:
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]


def is_deletion(header: str) -> bool:
    return "Max-Age=0" in header or "Expires=Thu, 01 Jan 1970" in header


def test_rotating_keys_resigns_and_removing_a_key_kills_only_its_cookies(
    backend: Backend, clock: Clock
) -> None:
    old_app = make_app(backend, clock, SECRET_KEY="old key " * 4)
    uid = backend.add_user("a@example.com")
    client = old_app.test_client()
    old_cookie = login(client, uid)
    token = old_cookie.split(".")[0]
    rotated = make_app(
        backend, clock, SECRET_KEY="new key " * 4, SECRET_KEY_FALLBACKS=["old key " * 4]
    )
    browser = replay(rotated, old_cookie)
    response = browser.get("/info")
    assert response.get_json()["user_id"] == uid
    headers = set_cookie_headers(response)
    assert len(headers) == 1 and not is_deletion(headers[0])
    new_cookie = session_cookie(browser)
    assert new_cookie != old_cookie and new_cookie is not None
    assert new_cookie.split(".")[0] == token
    removed = make_app(backend, clock, SECRET_KEY="new key " * 4)
    assert info(replay(removed, new_cookie))["user_id"] == uid
    # Signed only with a removed key: anonymous, and a read leaves the cookie alone.
    response = replay(removed, old_cookie).get("/info")
    assert response.get_json()["user_id"] is None
    assert set_cookie_headers(response) == []


def test_a_cookie_of_another_app_is_kept_by_reads_and_replaced_by_writes(
    backend: Backend, clock: Clock
) -> None:
    """'A cookie the app cannot verify is never deleted by a request that does
    not write the session (... two apps sharing a cookie name).'"""
    app_a = make_app(backend, clock, SECRET_KEY="app a " * 6)
    app_b = make_app(backend, clock, SECRET_KEY="app b " * 6)
    uid = backend.add_user("a@example.com")
    client_a = app_a.test_client()
    cookie = login(client_a, uid)
    on_b = replay(app_b, cookie)
    for path in ["/info", "/me", "/get", "/plain", "/fresh", "/flashes"]:
        response = on_b.get(path)
        assert response.status_code in (200, 401), path
        assert set_cookie_headers(response) == [], path
    assert session_cookie(on_b) == cookie
    assert info(replay(app_a, cookie))["user_id"] == uid
    response = on_b.post("/set", data={"x": "1"})
    assert session_cookie(on_b) != cookie
    assert info(replay(app_a, cookie))["user_id"] == uid


def test_a_signed_cookie_of_an_ended_session_is_anonymous_and_left_alone_by_a_read(
    backend: Backend, rapp: Flask, clock: Clock
) -> None:
    """'No response expires the session cookie unless the request ended or
    emptied the session': a read that crosses another request's new token
    must not sign the browser out; the ended session's cookie names nothing.
    """
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    cookie = login(client, uid)
    assert client.post("/logout").status_code == 200
    response = replay(rapp, cookie).get("/info")
    assert response.get_json()["user_id"] is None
    assert set_cookie_headers(response) == []


HOSTILE_COOKIES = [
    "",
    ".",
    "..",
    "a.b.c",
    '"quoted"',
    "x" * 43 + ".",
    "." + "x" * 43,
    "A" * 43 + "." + "A" * 43,
    "%00" * 10,
    "null",
    "undefined",
    "[]",
    "{}",
    "' OR 1=1 --",
    "x" * 255,
    "x" * 257,
    "x" * 5000,
    "ÿ" * 10,
    "\\u0000",
    "=?utf-8?q?x?=",
]


@pytest.mark.filterwarnings("ignore:The 'session' cookie is too large")
@pytest.mark.parametrize("value", HOSTILE_COOKIES, ids=range(len(HOSTILE_COOKIES)))
def test_hostile_cookies_give_a_fresh_anonymous_session(
    backend: Backend, rapp: Flask, value: str
) -> None:
    uid = backend.add_user("a@example.com")
    login(rapp.test_client(), uid)
    rows = len(backend.rows())
    client = rapp.test_client()
    client.set_cookie("session", value)
    for path in ["/info", "/me", "/get", "/fresh", "/flashes"]:
        response = client.get(path)
        assert response.status_code in (200, 401), (path, response.status_code)
    assert info(client)["user_id"] is None
    assert len(backend.rows()) == rows
    assert client.post("/set", data={"x": "1"}).status_code == 200
    assert info(client)["user_id"] is None


def test_raw_cookie_headers_never_fail(backend: Backend, rapp: Flask) -> None:
    uid = backend.add_user("a@example.com")
    victim = rapp.test_client()
    cookie = login(victim, uid)
    token, signature = cookie.split(".", 1)
    headers = [
        "session=",
        "session",
        "session=a; session=b; session=c",
        f"session={cookie}; session=garbage",
        f"session=garbage; session={cookie[:-1]}",
        f"session={token}",
        f"session={signature}.{token}",
        f"session={token.upper()}.{signature}",
        f'session="{cookie}"',
        "session=\x00\x01\x02",
        "session=" + "é" * 100,
        ";;;;",
        "=; =; session",
    ]
    for header in headers:
        client = rapp.test_client()
        response = client.get("/info", headers={"Cookie": header})
        assert response.status_code == 200, header
        data = response.get_json()
        assert data["user_id"] in (None, uid), header
        if data["user_id"] == uid:
            assert cookie in header or f'"{cookie}"' in header, header


def test_the_session_id_is_never_a_cookie(backend: Backend, clock: Clock) -> None:
    """'[The id is] safe to show and to send in forms ...: it cannot be turned
    back into a cookie' — signed or not."""
    for sign in (True, False):
        app = make_app(backend, clock, KITSESSION_SIGN_COOKIE=sign)

        @app.get("/my-id")
        def my_id() -> str:
            return current_session.id

        uid = backend.add_user(f"a{sign}@example.com")
        client = app.test_client()
        login(client, uid)
        session_id = client.get("/my-id").get_data(as_text=True)
        assert info(replay(app, session_id))["user_id"] is None
        if not sign:
            assert len(session_cookie(client) or "") == 43
            assert info(client)["user_id"] == uid


def test_a_token_chosen_by_the_client_is_never_adopted_unsigned(
    backend: Backend, clock: Clock
) -> None:
    """'A token the server never issued is never adopted' (with signing off too)."""
    app = make_app(backend, clock, KITSESSION_SIGN_COOKIE=False)
    chosen = "A" * 43
    client = replay(app, chosen)
    client.post("/set", data={"x": "1"})
    assert session_cookie(client) != chosen
    uid = backend.add_user("a@example.com")
    fixated = replay(app, chosen)
    fixated.post("/login", data={"user_id": str(uid)})
    assert session_cookie(fixated) != chosen
    assert info(replay(app, chosen))["user_id"] is None


# -- apps sharing a store ------------------------------------------------------------


def test_apps_sharing_a_store_and_a_cookie_name_do_not_sign_each_other_out(
    backend: Backend, clock: Clock
) -> None:
    """Two apps (different keys) on one store and one cookie name, as behind one
    domain: a read on one never ends the other's session."""
    app_a = make_app(backend, clock, SECRET_KEY="app a " * 6)
    app_b = make_app(backend, clock, SECRET_KEY="app b " * 6)
    a = backend.add_user("a@example.com")
    client = app_a.test_client()
    cookie = login(client, a)
    for _ in range(3):
        replay(app_b, cookie).get("/info")
        replay(app_b, cookie).get("/me")
    assert info(replay(app_a, cookie))["user_id"] == a
    assert len(backend.rows()) == 1


# -- session data ---------------------------------------------------------------------


def value_app(backend: Backend, clock: Clock, **config: t.Any) -> tuple[Flask, dict[str, t.Any]]:
    """An app whose /put stores ``holder["value"]`` under ``holder["key"]`` and
    whose /take reads it back into ``holder["got"]``."""
    app = make_app(backend, clock, **config)
    holder: dict[str, t.Any] = {"key": "v"}

    @app.post("/put")
    def put() -> str:
        session[holder["key"]] = holder["value"]
        return "put"

    @app.get("/take")
    def take() -> str:
        holder["got"] = dict(session)
        return "taken"

    return app, holder


def round_trip_values() -> list[t.Any]:
    import uuid
    from datetime import timezone
    from zoneinfo import ZoneInfo

    from markupsafe import Markup

    return [
        10**30,
        -(2**64),
        2**63,
        1e16,
        -0.0,
        5e-324,
        1.7976931348623157e308,
        0.1 + 0.2,
        "\x00",
        "a\x00b\ud800c\udfff",
        "\ud83d\ude00",  # a surrogate pair as two code points
        "😀\u2028\u2029\x7f",
        "",
        {"": ""},
        {"\x00": 1, "a": {"\ud800": [1]}},
        {" t": [1, 2]},
        {" d": "Thu, 01 Jan 1970 00:00:00 GMT"},
        {" kt": "2020-01-01T00:00:00"},
        {" ks": ["x", 0]},
        {" kk": []},
        {" kf": "1e16"},
        {" di": {" t": 1}},
        {" t__": 1},
        {" b": "AA=="},
        {" t": 1, "other": 2},
        [{" u": "x"}, ({" m": "<b>"},)],
        (1, (2, (3,))),
        b"",
        b"\x00\xff" * 10,
        uuid.UUID(int=0),
        Markup("<b>x</b>"),
        datetime(1, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 10, 25, 2, 30, 0, 1, fold=0, tzinfo=ZoneInfo("Europe/Berlin")),
        [None, True, False, [], {}],
    ]


@pytest.mark.parametrize("index", range(len(round_trip_values())))
def test_values_round_trip_exactly(backend: Backend, clock: Clock, index: int) -> None:
    """'A value is stored and read back exactly (same types, text and keys) on
    every backend, or refused where the app sets it'."""
    from .support.data import same

    value = round_trip_values()[index]
    app, holder = value_app(backend, clock)
    holder["value"] = value
    client = app.test_client()
    try:
        response = client.post("/put")
    except SessionDataError:
        return  # refused where it was set: allowed
    assert response.status_code == 200
    client.get("/take")
    assert same(holder["got"]["v"], value), (holder["got"]["v"], value)


class FixedZone(tzinfo):
    """A tzinfo of an app's own (pytz and dateutil zones are such classes)."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=2)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "MYZONE"


@pytest.mark.parametrize("zone", ["named timezone", "own tzinfo class"])
def test_a_datetime_keeps_its_zone_or_is_refused(backend: Backend, clock: Clock, zone: str) -> None:
    """'A value is stored and read back exactly (same types, text and keys) ...
    or refused where the app sets it'; datetimes come back with 'the same UTC
    offset, the same zone'."""
    from datetime import timezone

    tz = timezone(timedelta(hours=1), "CET") if zone == "named timezone" else FixedZone()
    value = datetime(2026, 1, 1, 12, tzinfo=tz)
    app, holder = value_app(backend, clock)
    holder["value"] = value
    client = app.test_client()
    try:
        client.post("/put")
    except SessionDataError:
        return
    client.get("/take")
    got = holder["got"]["v"]
    assert got == value
    assert type(got.tzinfo) is type(value.tzinfo)
    assert got.tzname() == value.tzname()


@pytest.mark.parametrize("key", ["\x00", " t", " kt", " di", "a\ud800", "", "$where", "x" * 1000])
def test_odd_top_level_keys_round_trip(backend: Backend, clock: Clock, key: str) -> None:
    app, holder = value_app(backend, clock)
    holder["key"] = key
    holder["value"] = [1, "x"]
    client = app.test_client()
    try:
        client.post("/put")
    except SessionDataError:
        return
    client.get("/take")
    assert holder["got"] == {key: [1, "x"]}


def refused_values() -> list[tuple[str, t.Any]]:
    import collections
    import decimal
    import enum

    class Color(enum.IntEnum):
        RED = 1

    class Text(str):
        pass

    point = collections.namedtuple("point", "x y")
    nested: t.Any = []
    for _ in range(10_000):
        nested = [nested]
    return [
        ("object", object()),
        ("set", {1}),
        ("nan", float("nan")),
        ("inf", [float("inf")]),
        ("intenum", Color.RED),
        ("ordereddict", collections.OrderedDict(a=1)),
        ("namedtuple", point(1, 2)),
        ("str subclass", Text("x")),
        ("int key", {"a": {1: 2}}),
        ("tuple key", {(1,): 2}),
        ("decimal", decimal.Decimal("1.1")),
        ("bytearray", bytearray(b"x")),
        ("deep", nested),
        ("huge int", 10**5000),
        ("too large", "x" * 70_000),
    ]


@pytest.mark.parametrize("how", ["setitem", "update", "setdefault"])
@pytest.mark.parametrize("name", [n for n, _ in refused_values()])
def test_unstorable_values_are_refused_where_they_are_set(
    memory_app: Flask, how: str, name: str
) -> None:
    """'refused where the app sets it, with SessionDataError naming the path to
    it and why, never its value ... It applies to session[k] = v, update()
    and setdefault().'"""
    value = dict(refused_values())[name]
    with memory_app.test_request_context():
        s = memory_app.session_interface.open_session(memory_app, request)
        assert s is not None
        with pytest.raises(SessionDataError) as caught:
            if how == "setitem":
                s["key"] = value
            elif how == "update":
                s.update(key=value)
            else:
                s.setdefault("key", value)
        assert "key" in str(caught.value)
        assert "key" not in s


@pytest.fixture
def memory_app(clock: Clock) -> Flask:
    from .support.backends import MemoryBackend

    return make_app(MemoryBackend(), clock)


def test_data_too_large_as_a_whole_is_refused_at_save_and_nothing_written(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock, KITSESSION_MAX_DATA_SIZE=1000)
    client = app.test_client()
    anonymous_start(client, a="x")
    rows = backend.rows()
    with pytest.raises(SessionDataError) as caught:
        client.post("/set", data={f"k{n}": "y" * 90 for n in range(20)})
    assert "y" * 20 not in str(caught.value)
    assert backend.rows() == rows


def test_client_text_with_nul_never_fails_a_request(backend: Backend, rapp: Flask) -> None:
    """'A visitor can put a NUL into any form field ... kitsession encodes it.'"""
    client = rapp.test_client()
    response = client.post("/set", data={"a\x00b": "c\x00d", "e": "\x00"})
    assert response.status_code == 200
    assert client.get("/get").get_json() == {"a\x00b": "c\x00d", "e": "\x00"}


def test_client_json_with_lone_surrogates_never_fails_a_request(
    backend: Backend, rapp: Flask
) -> None:
    got: dict[str, t.Any] = {}

    @rapp.post("/set-json")
    def set_json() -> str:
        for key, value in (request.get_json() or {}).items():
            session[key] = value
        return "ok"

    @rapp.get("/take-json")
    def take_json() -> str:
        got.update(session)
        return "ok"

    client = rapp.test_client()
    body = '{"\\ud800k": "\\udfff\\ud83d", "n": "\\u0000"}'
    response = client.post("/set-json", data=body, content_type="application/json")
    assert response.status_code == 200
    client.get("/take-json")
    assert got == json.loads(body)


# -- user ids -------------------------------------------------------------------------


def id_app(backend: Backend, clock: Clock, **config: t.Any) -> tuple[Flask, dict[str, t.Any]]:
    app = make_app(backend, clock, **config)
    holder: dict[str, t.Any] = {}

    @app.post("/link-raw")
    @with_new_session
    def link_raw() -> str:
        session["note"] = "written by the login"
        session[holder.get("key", "user_id")] = holder["uid"]
        return "linked"

    @app.post("/plain-link-raw")
    def plain_link_raw() -> str:
        session[holder.get("key", "user_id")] = holder["uid"]
        return "linked"

    return app, holder


def bad_ids(first: t.Any) -> list[t.Any]:
    return [
        "abc",
        "0_1" if first == 1 else "4_2",
        f" {first}",
        f"{first} ",
        "١" if first == 1 else "٤٢",
        True,
        float(first),
        2**31,
        2**63,
        -(2**63) - 1,
        10**40,
        "",
        [first],
        {"id": first},
        b"1",
        first + 1000,
    ]


@pytest.mark.parametrize("path", ["/link-raw", "/plain-link-raw"])
@pytest.mark.parametrize("index", range(16))
def test_user_ids_no_user_has_are_refused_and_nothing_is_written(
    backend: Backend, clock: Clock, path: str, index: int
) -> None:
    """'A user id that cannot be a key of the user table (another type,
    outside the key column's range, too long), or that no user has exactly,
    is refused with UnknownUserError (never a 503 or an OverflowError), when
    the session is saved, and nothing is written: neither the session, nor
    the change a login was making to the visitor's previous session. The
    message leaves the id out.'"""
    app, holder = id_app(backend, clock)
    first = backend.add_user("a@example.com")
    backend.add_user("b@example.com")
    holder["uid"] = bad_ids(first)[index]
    client = app.test_client()
    cookie = anonymous_start(client, cart="kept")
    rows = backend.rows()
    with pytest.raises(UnknownUserError) as caught:
        client.post(path)
    if isinstance(holder["uid"], str) and holder["uid"].strip():
        assert holder["uid"] not in str(caught.value)
    assert backend.rows() == rows
    assert session_cookie(client) == cookie
    assert info(client)["data"] == {"cart": repr("kept")}


@pytest.mark.parametrize("text", ["{0}", "+{0}", "0{0}"])
def test_user_id_text_in_ascii_digits_links_the_user(
    backend: Backend, clock: Clock, text: str
) -> None:
    app, holder = id_app(backend, clock)
    uid = backend.add_user("a@example.com")
    holder["uid"] = text.format(uid)
    client = app.test_client()
    assert client.post("/link-raw").status_code == 200
    assert info(client)["user_id"] == uid


def add_user_one(backend: Backend) -> int:
    """A user whose id is 1, on every backend."""
    if hasattr(backend, "users"):
        assert backend.add_user("one@example.com") == 1
        return 1
    import sqlalchemy as sa

    from flask_kitsession.models import user_table

    with backend.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(
            user_table.insert().values(id=1, email="one@example.com", created_at=sa.func.now())
        )
    return 1


def test_a_bool_is_not_user_one_in_lookups(backend: Backend, rapp: Flask) -> None:
    """'Lookups by an id no user can have (load_user, delete_all_for_user,
    iterate) find nothing': True is not a user id ('UnknownUserError: ...
    True'), even where True == 1."""
    first = add_user_one(backend)
    client = rapp.test_client()
    login(client, first)
    with rapp.app_context():
        assert get_sessions_for_user(True) == []
        assert get_sessions_for_user(1.0) == []
        assert get_sessions_for_user(2**80) == []
        assert get_sessions_for_user("abc") == []
        assert remove_all_sessions_for_user(True) == 0
        assert remove_all_sessions_for_user(1.0) == 0
        assert remove_all_sessions_for_user(2**80) == 0
        assert remove_all_sessions_for_user("x") == 0
        assert len(get_sessions_for_user("1")) == 1
    assert info(client)["user_id"] == first


def test_string_keys_need_the_exact_id(lapp: LoginApp) -> None:
    """'Only the exact id links a user, on every database: MariaDB's collations
    find "user-1" for "USER-1" and "user-1 "'."""
    app = lapp.app
    for wrong in ["U1", "u1 ", " u1", "u1\x00", "ｕ1"]:
        client = app.test_client()
        cookie = anonymous_start(client)
        with pytest.raises(UnknownUserError):
            client.post("/plain-link-text", data={"uid": wrong})
        assert session_cookie(client) == cookie
        assert info(client)["user_id"] is None


# -- create_session, set_session, get_session, remove_session ----------------------------


def test_set_session_never_changes_whose_session_it_is(backend: Backend, rapp: Flask) -> None:
    """set_session: 'It never changes whose session it is ... raises ValueError
    if data names another user than the session's.'"""
    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = rapp.test_client()
    login(client, a)
    with rapp.app_context():
        (s,) = get_sessions_for_user(a)
        with pytest.raises(ValueError):
            set_session(s, {"user_id": b})
        with pytest.raises(ValueError):
            set_session(s, {"id": b})
        try:
            set_session(s, {"note": "no user key"})
        except ValueError:
            pass  # refusing data that names no user is one way to keep the owner
    assert info(client)["user_id"] == a
    with rapp.app_context():
        assert len(get_sessions_for_user(a)) == 1


def test_set_session_of_a_removed_session_is_not_recreated(backend: Backend, rapp: Flask) -> None:
    a = backend.add_user("a@example.com")
    client = rapp.test_client()
    cookie = login(client, a)
    with rapp.app_context():
        (s,) = get_sessions_for_user(a)
        assert remove_session(s) is True
        assert set_session(s, {"user_id": a, "x": 1}) is False
        assert get_sessions_for_user(a) == []
    assert info(replay(rapp, cookie))["user_id"] is None


def test_set_session_with_unstorable_data_is_refused(backend: Backend, rapp: Flask) -> None:
    a = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, a)
    with rapp.app_context():
        (s,) = get_sessions_for_user(a)
        with pytest.raises(SessionDataError):
            set_session(s, {"user_id": a, "x": {1: 2}})
    assert info(client)["user_id"] == a


@pytest.mark.parametrize(
    "session_id",
    [
        "",
        "x",
        "' OR 1=1 --",
        "0" * 64,
        "g" * 64,
        "A" * 64,
        "0" * 63,
        "0" * 65,
        "\x00" * 64,
        "*",
        "user:1",
        "../" * 20,
        "é" * 64,
    ],
)
def test_get_session_with_hostile_ids(backend: Backend, rapp: Flask, session_id: str) -> None:
    """get_session: 'Ids that are not well-formed, such as one edited in a form,
    give None too.'"""
    a = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, a)
    with rapp.app_context():
        assert get_session(session_id) is None
    assert info(client)["user_id"] == a


@pytest.mark.parametrize(
    "session_id",
    ["", "x", "' OR 1=1 --", "0" * 64, "g" * 64, "0" * 65, "\x00" * 64, "a\x00", "*", "é" * 64],
)
def test_remove_session_with_hostile_ids(
    backend: Backend, rapp: Flask, session_id: str, request: pytest.FixtureRequest
) -> None:
    """remove_session(id) 'Return[s] whether the session existed'; an id from a
    form ('sign out this device') must not make a 503 out of a store that is
    up (a StoreUnavailableError is 'The session store could not be reached or
    failed to answer')."""
    a = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, a)
    with rapp.app_context():
        assert remove_session(session_id) is False
    assert info(client)["user_id"] == a


def test_an_uppercased_id_finds_nothing_or_the_same_session(backend: Backend, rapp: Flask) -> None:
    a = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, a)
    with rapp.app_context():
        (s,) = get_sessions_for_user(a)
        found = get_session(s.id.upper())
        assert found is None or found.id == s.id


@pytest.mark.parametrize("visitor", ["permanent", "flash"])
def test_create_session_and_set_session_cookie_in_a_view(
    backend: Backend, clock: Clock, visitor: str
) -> None:
    """create_session: 'sign a user in from somewhere other than a login view (a
    magic link ...), then set_session_cookie to hand it out.' The visitor's
    browser ends with the new session, whatever its current one was doing;
    and 'One browser, one stored session'."""
    app = make_app(backend, clock)
    uid = backend.add_user("a@example.com")

    @app.get("/magic")
    def magic() -> t.Any:
        if visitor == "flash":
            flash("Welcome back")
        created = create_session(uid, permanent=True)
        response = jsonify(ok=True)
        return set_session_cookie(response, created)

    client = app.test_client()
    if visitor == "permanent":
        client.post("/permanent")  # a permanent anonymous session, refreshed each request
    else:
        client.post("/set", data={"cart": "1"})
    planted = session_cookie(client)
    response = client.get("/magic")
    assert response.status_code == 200
    assert session_cookie(client) != planted
    assert info(client)["user_id"] == uid
    assert info(replay(app, planted))["user_id"] is None


def test_create_session_checks_its_arguments(backend: Backend, rapp: Flask) -> None:
    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    with rapp.app_context():
        with pytest.raises(ValueError):
            create_session(a, {"user_id": b})
        with pytest.raises(UnknownUserError):
            create_session(a + 1000)
        with pytest.raises(SessionDataError):
            create_session(a, {"x": {1, 2}})
        created = create_session(None, {"id": b})
        assert created.user_id == b


# -- request metadata ------------------------------------------------------------------


ADDRESSES: list[tuple[str, str | None]] = [
    ("[fe80::1%eth0]:4711", "fe80::1"),
    ("fe80::1%eth0", "fe80::1"),
    ("::ffff:1.2.3.4", "1.2.3.4"),
    ("[::1]", "::1"),
    ("1.2.3.4:5678", "1.2.3.4"),
    ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ("unknown", "unknown"),
    ("x" * 1000, "x" * 45),
    ("a\x00b\x7fc", "abc"),
    ("1.2.3.4, 5.6.7.8", None),
    ("ÿé\u2028", None),
    ("", None),
    ("256.1.1.1", None),
    ("::ffff:999.1.1.1", None),
    ("[", None),
    ("[]:80", None),
    ("%eth0", None),
]


@pytest.mark.parametrize("address,stored", ADDRESSES, ids=range(len(ADDRESSES)))
def test_odd_client_addresses_never_fail_a_request(
    backend: Backend, rapp: Flask, address: str, stored: str | None
) -> None:
    """'The client address and user agent never fail a request'; the documented
    normalisations hold (requestinfo.client_address)."""
    client = rapp.test_client()
    response = client.post("/set", data={"x": "1"}, environ_base={"REMOTE_ADDR": address})
    assert response.status_code == 200
    (row,) = backend.rows()
    value = row["ip_address"]
    assert value is None or len(value) <= 45
    assert value is None or all(" " <= ch <= "~" for ch in value)
    if stored is not None:
        assert value == stored


def test_forwarded_for_behind_proxyfix_never_fails_a_request(
    backend: Backend, clock: Clock
) -> None:
    from werkzeug.middleware.proxy_fix import ProxyFix

    app = make_app(backend, clock)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    uid = backend.add_user("a@example.com")
    for value in [
        "[fe80::1%25eth0]:1",
        "unknown",
        "x" * 5000,
        "\x00",
        "::ffff:10.0.0.1",
        "_hidden",
    ]:
        client = app.test_client()
        response = client.post(
            "/login", data={"user_id": str(uid)}, headers={"X-Forwarded-For": value}
        )
        assert response.status_code == 200, value
        assert info(client)["user_id"] == uid


@pytest.mark.parametrize(
    "agent",
    ["x" * 10_000, "\x00evil\x00", "ÿ" * 600, "😀" * 300, "a\ud800b", "", " ", "\t\r"],
    ids=range(8),
)
def test_odd_user_agents_never_fail_a_request(backend: Backend, rapp: Flask, agent: str) -> None:
    client = rapp.test_client()
    response = client.post("/set", data={"x": "1"}, environ_base={"HTTP_USER_AGENT": agent})
    assert response.status_code == 200
    (row,) = backend.rows()
    value = row["user_agent"]
    assert value is None or (len(value) <= 512 and "\x00" not in value)


# -- error responses ------------------------------------------------------------------


def test_client_mistakes_never_become_5xx(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock, TESTING=False)
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    cookie = login(client, uid)
    for method, path, code in [
        ("GET", "/no-such-page", 404),
        ("DELETE", "/login", 405),
        ("HEAD", "/info", 200),
        ("OPTIONS", "/info", 200),
        ("GET", "/fresh", 200),
    ]:
        for sent in [cookie, "garbage", cookie + "x", cookie.split(".")[0]]:
            browser = replay(app, sent)
            response = browser.open(path, method=method)
            assert response.status_code == code or (
                path == "/fresh" and response.status_code == 401
            ), (method, path, sent, response.status_code)


# -- logs and error messages ---------------------------------------------------------


def test_no_token_and_no_data_in_logs_or_error_messages(
    backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """'Logs name client addresses, never cookies'; 'No session data appears in
    a log line or an exception message'; UnknownUserError and
    SessionDataError messages leave the id and the value out."""
    caplog.set_level(logging.DEBUG)
    app, holder = id_app(backend, clock)
    marker = "SECRET-MARKER-7f3a"
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    cookie = login(client, uid)
    client.post("/set", data={"card": marker})
    client.post("/regenerate")
    tokens = [cookie.split(".")[0], (session_cookie(client) or "").split(".")[0]]
    for bad in [cookie + "x", cookie[:-3], "junk." + cookie.split(".")[1]]:
        replay(app, bad).get("/info")
    messages: list[str] = []
    holder["uid"] = f"{marker}-user"
    with pytest.raises(UnknownUserError) as caught:
        client.post("/plain-link-raw")
    messages.append(str(caught.value))

    with app.test_request_context():
        s = app.session_interface.open_session(app, request)
        assert s is not None
        bad_values: list[t.Any] = [
            [marker, float("nan")],
            [marker, {marker: 1, 5: 1}],
            (marker, {5: 1}),
        ]
        for bad in bad_values:
            with pytest.raises(SessionDataError) as refused:
                s["value"] = bad
            messages.append(str(refused.value))

    text = "\n".join([caplog.text, *messages])
    for token in tokens:
        assert token not in text
    assert marker not in text


def test_unreadable_stored_data_is_logged_without_the_data(
    backend: Backend, rapp: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """'Stored data that cannot be read is logged with the kind of problem only.'"""
    import sqlalchemy as sa

    from flask_kitsession.models import session_table

    caplog.set_level(logging.DEBUG)
    marker = "SECRET-MARKER-91b2"
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, uid)
    client.post("/set", data={"x": "1"})
    (row,) = backend.rows()
    broken = json.dumps({"user_id": uid, "when": {" kt": f"{marker} is no date"}})
    if backend.name == "memory":
        store = backend.store
        with store._lock:  # type: ignore[attr-defined]
            record, _ = store._rows[row["id"]]  # type: ignore[attr-defined]
            store._rows[row["id"]] = (record, broken)  # type: ignore[attr-defined]
    elif backend.name == "redis":
        redis_store = t.cast(t.Any, backend)
        redis_store.keyspace.admin.hset(redis_store.store.session_key(row["id"]), "data", broken)
    else:
        with backend.engine.begin() as connection:  # type: ignore[attr-defined]
            connection.execute(
                sa.update(session_table)
                .where(session_table.c.id == row["id"])
                .values(data=sa.literal(broken, session_table.c.data.type))
            )
    caplog.clear()
    try:
        response = client.get("/info")
        body = response.get_data(as_text=True)
    except Exception as e:  # noqa: BLE001
        body = f"{type(e).__name__}: {e}"
    assert marker not in caplog.text
    assert marker not in body


# -- Flask's session semantics -------------------------------------------------------------


def test_reads_of_an_anonymous_visitor_store_nothing_and_vary(
    backend: Backend, rapp: Flask
) -> None:
    client = rapp.test_client()
    response = client.get("/get")
    assert set_cookie_headers(response) == []
    assert "Cookie" in response.headers.get("Vary", "")
    assert backend.rows() == []
    response = client.get("/plain")
    assert "Cookie" not in response.headers.get("Vary", "")
    assert set_cookie_headers(response) == []


def test_authenticated_reads_write_nothing_within_the_touch_interval(
    backend: Backend, rapp: Flask, clock: Clock
) -> None:
    """'nothing is written while nothing changes'; 'An unchanged session's last
    use is written at most once per touch interval'."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, uid)
    with backend.operations() as operations:
        for _ in range(3):
            clock.advance(seconds=10)
            client.get("/me")
    assert backend.writes(operations) == []
    clock.advance(seconds=60)
    with backend.operations() as operations:
        client.get("/me")
        client.get("/me")
    assert len(backend.writes(operations)) == 1


def test_an_authenticated_sql_read_is_one_statement(sql_backend: Backend, clock: Clock) -> None:
    """README: 'An authenticated request costs one SQL statement and one database
    round trip (the user row comes in the same query)'."""
    app = make_app(sql_backend, clock)
    uid = sql_backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    client.get("/me")
    with sql_backend.operations() as operations:
        assert client.get("/me").get_json()["email"] == "a@example.com"
    statements = [
        op for op in operations if op.split()[0].upper() not in ("BEGIN", "ROLLBACK", "COMMIT")
    ]
    assert len(statements) == 1, operations


def test_cookie_attributes_follow_flask_settings_also_on_deletion(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(
        backend,
        clock,
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
    )
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    response = client.post("/login", data={"user_id": str(uid)}, base_url="https://example.test")
    (header,) = set_cookie_headers(response, "sid")
    for attribute in [
        "Domain=example.test",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Partitioned",
    ]:
        assert attribute in header, header
    response = client.post("/logout", base_url="https://example.test")
    (header,) = set_cookie_headers(response, "sid")
    assert is_deletion(header)
    assert "Domain=example.test" in header and "Path=/" in header


def test_permanent_cookie_is_refreshed_each_request_only_when_asked(
    backend: Backend, clock: Clock
) -> None:
    """SESSION_REFRESH_EACH_REQUEST: 'Whether a permanent session's cookie is
    sent again when its expiry slides', with Vary: Cookie."""
    for refresh in (True, False):
        app = make_app(backend, clock, SESSION_REFRESH_EACH_REQUEST=refresh)
        client = app.test_client()
        client.post("/permanent")
        # Within the touch interval the expiry does not move: nothing to send.
        response = client.get("/plain")
        assert set_cookie_headers(response) == []
        assert ("Cookie" in response.headers.get("Vary", "")) is refresh
        clock.advance(minutes=2)
        response = client.get("/plain")
        assert bool(set_cookie_headers(response)) is refresh
        if refresh:
            assert "Cookie" in response.headers.get("Vary", "")
        backend.reset() if backend.name != "redis" else None


def test_flashes_follow_a_login_and_a_logout(backend: Backend, rapp: Flask) -> None:
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    client.post("/login-new-then-flash", data={"uid": str(uid)})
    assert client.get("/flashes").get_json() == ["welcome"]
    assert client.post("/logout-and-flash").status_code == 200
    assert client.get("/flashes").get_json() == ["bye"]
    assert info(client)["user_id"] is None


# -- Redis: apps sharing one server ----------------------------------------------------------


def test_redis_prefixes_with_glob_characters_keep_apps_apart(
    redis_backend: Backend, clock: Clock
) -> None:
    from flask_kitsession import get_all_sessions
    from flask_kitsession import RedisStore

    base = redis_backend.store.prefix  # type: ignore[attr-defined]
    client = redis_backend.client  # type: ignore[attr-defined]
    stores = {
        name: RedisStore(client, prefix=f"{base}{name}", user_id_type=int)
        for name in ["a*:", "a?:", "a[b]:", "ab:", "a\\:"]
    }
    apps = {}
    for name, store in stores.items():
        app = Flask(name)
        app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
        KitSession(app, store=store, clock=clock)
        add_views(app)
        apps[name] = app
        app.test_client().post("/set", data={"app": name})
    for name, app in apps.items():
        with app.app_context():
            seen = list(get_all_sessions())
        assert [s["app"] for s in seen] == [name], name


# -- more lifecycle compositions -------------------------------------------------------


def test_a_logout_view_that_raises_deletes_nothing(backend: Backend, clock: Clock) -> None:
    """with_delete_session: 'If the view raises (say, a failed CSRF check),
    nothing is deleted.'"""
    app = make_app(backend, clock, TESTING=False)

    @app.post("/logout-raises")
    @with_delete_session
    def logout_raises() -> str:
        raise RuntimeError("CSRF check failed")

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    cookie = login(client, uid)
    assert client.post("/logout-raises").status_code == 500
    assert info(replay(app, cookie))["user_id"] == uid


def test_a_request_that_fails_after_remove_session_of_the_current_session_keeps_it(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock, TESTING=False)

    @app.post("/remove-current-raises")
    def remove_current_raises() -> str:
        remove_session(current_session)
        raise RuntimeError("failed after removing")

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    cookie = login(client, uid)
    assert client.post("/remove-current-raises").status_code == 500
    assert info(replay(app, cookie))["user_id"] == uid


def test_signing_out_others_in_the_login_request(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock)

    @app.post("/login-and-sign-out-others")
    @with_new_session
    def login_and_sign_out_others() -> str:
        session["user_id"] = int(request.form["uid"])
        return str(remove_all_sessions_for_user(current_session.user_id, current_session))

    uid = backend.add_user("a@example.com")
    other = app.test_client()
    login(other, uid)
    client = app.test_client()
    planted = anonymous_start(client)
    assert client.post("/login-and-sign-out-others", data={"uid": str(uid)}).status_code == 200
    assert info(client)["user_id"] == uid
    assert info(other)["user_id"] is None
    assert info(replay(app, planted))["user_id"] is None
    assert len(backend.rows()) == 1


def test_the_same_user_written_as_text_is_the_same_user(backend: Backend, clock: Clock) -> None:
    """One user key conversion: writing the linked user's id as text ("1",
    "+1") links nobody new, so the session does not start over."""
    app = make_app(backend, clock)

    @app.post("/write-text-id")
    def write_text_id() -> str:
        session["user_id"] = request.form["v"]
        return "ok"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    client.post("/set", data={"mine": "kept"})
    for text in [str(uid), f"+{uid}", f"0{uid}"]:
        assert client.post("/write-text-id", data={"v": text}).status_code == 200
        now = info(client)
        assert now["user_id"] == uid
        assert "mine" in now["keys"]


def test_unknown_user_in_production_is_a_500_not_a_503(backend: Backend, clock: Clock) -> None:
    """'refused with UnknownUserError (never a 503 ...)'."""
    app, holder = id_app(backend, clock, TESTING=False)
    for uid in ["abc", 10**6, 2**70]:
        holder["uid"] = uid
        client = app.test_client()
        assert client.post("/plain-link-raw").status_code == 500


def test_an_unfresh_login_is_never_fresh(
    lapp: LoginApp,
) -> None:
    """'A login that Flask-Login marks not fresh (... login_user(fresh=False))
    sets it to None for a new link'."""
    client = lapp.app.test_client()
    anonymous_start(client)
    client.post("/login-not-fresh/u1")
    assert info(client)["authenticated_at"] is None
    assert client.get("/fresh").status_code == 401
    # Switching from a fresh user to another one, not fresh.
    client = lapp.app.test_client()
    client.post("/login/u1")
    client.post("/login-not-fresh/u2")
    assert info(client)["user_id"] == "u2"
    assert client.get("/fresh").status_code == 401


def test_logout_user_in_a_failing_request(lapp: LoginApp) -> None:
    """'A request that ends in a 5xx ... keeps none of its session changes'."""
    from flask_login import logout_user

    app = lapp.app
    app.config["TESTING"] = False

    @app.post("/logout-then-fail")
    def logout_then_fail() -> str:
        logout_user()
        raise RuntimeError("boom")

    client = app.test_client()
    client.post("/login/u1")
    cookie = session_cookie(client)
    assert client.post("/logout-then-fail").status_code == 500
    assert info(replay(app, cookie))["user_id"] == "u1"


def test_string_key_unknown_ids_on_flask_sqlalchemy_engines(lapp: LoginApp) -> None:
    """'SQLite under an app's engine (Flask-SQLAlchemy's) enforces no foreign
    key, so there the user is looked up when a session is first linked to
    them, and must have exactly that id.'"""
    app = lapp.app
    app.config["TESTING"] = True
    for wrong in ["u9", "U1", "u1 ", 1]:
        client = app.test_client()
        cookie = anonymous_start(client)
        with pytest.raises(UnknownUserError):
            client.post("/plain-link-text", data={"uid": wrong})
        assert session_cookie(client) == cookie


# -- configuration ---------------------------------------------------------------------

BAD_CONFIGS: dict[str, dict[str, t.Any]] = {
    "carry-over None": {"KITSESSION_CARRY_OVER_KEYS": None},
    "touch interval NaN": {"KITSESSION_TOUCH_INTERVAL": float("nan")},
    "idle timeout infinite": {"KITSESSION_IDLE_TIMEOUT": float("inf")},
    "idle timeout 1e12 s": {"KITSESSION_IDLE_TIMEOUT": 1e12},
    "idle timeout timedelta.max": {"KITSESSION_IDLE_TIMEOUT": timedelta.max},
    "absolute timeout timedelta.max": {"KITSESSION_ABSOLUTE_TIMEOUT": timedelta.max},
    "permanent lifetime timedelta.max": {"PERMANENT_SESSION_LIFETIME": timedelta.max},
    "max data size True": {"KITSESSION_MAX_DATA_SIZE": True},
}


@pytest.mark.parametrize("name", list(BAD_CONFIGS))
def test_init_app_names_the_wrong_key_or_the_config_works(
    name: str, clock: Clock, request: pytest.FixtureRequest
) -> None:
    """configuration.md: 'init_app checks them and names the key that is wrong
    (a TypeError or ValueError), so a typo fails at start, not on the first
    request.'"""
    from .support.backends import MemoryBackend

    (key,) = BAD_CONFIGS[name]
    backend = MemoryBackend()
    try:
        app = make_app(backend, clock, **BAD_CONFIGS[name])
    except (TypeError, ValueError) as e:
        assert key in str(e)
        return
    client = app.test_client()
    uid = backend.add_user("a@example.com")
    assert client.post("/set", data={"x": "1"}).status_code == 200
    login(client, uid)
    assert info(client)["user_id"] == uid


def test_a_user_key_in_the_carry_over_keys_never_crosses_users(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS=["user_id", "_user_id", "cart"])
    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = app.test_client()
    login(client, a)
    client.post("/set", data={"cart": "a's"})
    login(client, b)
    now = info(client)
    assert now["user_id"] == b and "cart" not in now["keys"]


# -- concurrency: one browser, one stored session -------------------------------------------


def test_a_double_submitted_login_leaves_at_most_one_extra_session_of_the_user(
    backend: Backend, clock: Clock
) -> None:
    """security.md 0: "one browser, one stored session" holds for requests a
    browser makes one after another; two logins racing from one cookie (a
    double click) may each store a session of the user: both belong to the
    user, nothing else of the browser is left, and the planted anonymous
    session is gone."""
    app = make_app(backend, clock)
    barrier = threading.Barrier(2, timeout=10)

    @app.post("/slow-login")
    @with_new_session
    def slow_login() -> str:
        _ = session.get("cart")
        barrier.wait()
        session["user_id"] = int(request.form["uid"])
        return "in"

    uid = backend.add_user("a@example.com")
    first = app.test_client()
    cookie = anonymous_start(first)
    second = replay(app, cookie)
    codes: list[int] = []
    threads = [
        threading.Thread(
            target=lambda c=c: codes.append(
                c.post("/slow-login", data={"uid": str(uid)}).status_code
            )
        )
        for c in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert codes == [200, 200]
    assert 1 <= len(stored_user_sessions(backend, uid)) <= 2
    assert all(row["user_id"] == uid for row in backend.rows())


def test_without_a_size_limit_large_data_is_stored_or_refused_not_a_503(
    backend: Backend, clock: Clock, request: pytest.FixtureRequest
) -> None:
    """'A value is stored and read back exactly ... on every backend, or refused
    where the app sets it, with SessionDataError'; KITSESSION_MAX_DATA_SIZE
    None is 'no limit'. A 503 is for a store that is unreachable."""
    app = make_app(backend, clock, KITSESSION_MAX_DATA_SIZE=None, TESTING=False)
    client = app.test_client()
    anonymous_start(client, small="1")
    response = client.post("/set", data={"big": "y" * 17_000_000})
    assert response.status_code in (200, 500)  # stored, or SessionDataError (the app's 500)
    if response.status_code == 200:
        assert len(client.get("/get").get_json()["big"]) == 17_000_000


# -- Flask-Login: remember cookie, queries, user fields ------------------------------------


def test_logout_user_clears_the_remember_cookie(lapp: LoginApp) -> None:
    client = lapp.app.test_client()
    client.post("/login/u1?remember=1")
    assert client.get_cookie("remember_token") is not None
    client.post("/logout")
    assert client.get_cookie("remember_token") is None
    assert client.get("/profile").status_code == 401


def test_a_remember_cookie_of_a_deleted_user_is_anonymous(lapp: LoginApp) -> None:
    app = lapp.app
    client = app.test_client()
    client.post("/login/u2?remember=1")
    remember = client.get_cookie("remember_token")
    assert remember is not None
    with app.app_context():
        lapp.db.session.delete(lapp.db.session.get(lapp.user_model, "u2"))
        lapp.db.session.commit()
    browser = app.test_client()
    browser.set_cookie("remember_token", remember.value)
    assert browser.get("/profile").status_code == 401
    assert info(browser)["user_id"] is None


def test_permanent_set_before_login_user_follows_the_login(lapp: LoginApp) -> None:
    """'only what the request itself wrote follows' the new session: the
    request made it permanent, then logged in."""
    client = lapp.app.test_client()
    client.post("/login/u1?permanent=1")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is not None


def test_flask_login_authenticated_request_is_one_statement(lapp: LoginApp) -> None:
    """flask-login.md: 'current_user is the user kitsession loaded with the
    session in the same query: an authenticated request costs one SQL
    statement in all.'"""
    from benchmarks.queries import QueryRecorder

    client = lapp.app.test_client()
    client.post("/login/u1")
    client.get("/profile")
    with lapp.app.app_context():
        engine = lapp.db.engine
    with QueryRecorder(engine) as recorder:
        assert client.get("/profile").get_data(as_text=True) == "one <one@example.com>"
    statements = [
        s
        for s in recorder.statements
        if s.split()[0].upper() not in ("BEGIN", "ROLLBACK", "COMMIT")
    ]
    assert len(statements) == 1, recorder.statements
    assert client.get("/password-hash").get_data(as_text=True) == "x"


def test_session_user_holds_no_password_column(sql_backend: Backend, clock: Clock) -> None:
    """KITSESSION_USER_FIELDS None: 'every column whose name does not contain
    password'."""
    app = make_app(sql_backend, clock)

    @app.get("/user-dump")
    def user_dump() -> t.Any:
        user = current_session.user
        return jsonify(repr(user), sorted(getattr(user, "_fields", []) or dir(user)))

    uid = sql_backend.add_user("a@example.com")
    import sqlalchemy as sa

    from flask_kitsession.models import user_table

    with sql_backend.engine.begin() as connection:  # type: ignore[attr-defined]
        connection.execute(
            sa.update(user_table).where(user_table.c.id == uid).values(password_hash="HASH-xyz")
        )
    client = app.test_client()
    login(client, uid)
    text = client.get("/user-dump").get_data(as_text=True)
    assert "HASH-xyz" not in text and "password" not in text


# -- what a view sees within one request ---------------------------------------------------


def test_session_user_follows_the_link_within_the_request(backend: Backend, clock: Clock) -> None:
    """session.user: 'If the request links the session to another user, that
    user is loaded the first time it is asked for.'"""
    app = make_app(backend, clock)

    @app.post("/switch-and-tell")
    def switch_and_tell() -> t.Any:
        before = current_session.user
        session["user_id"] = int(request.form["uid"])
        after = current_session.user
        after_id = current_session.user_id
        session.pop("user_id")
        gone = (current_session.user, current_session.user_id, current_session.is_authenticated)
        session["user_id"] = int(request.form["uid"])
        return jsonify(
            before=getattr(before, "email", None),
            after=getattr(after, "email", None),
            after_id=after_id,
            gone=[getattr(gone[0], "email", None), gone[1], gone[2]],
        )

    @app.post("/end-and-tell")
    def end_and_tell() -> t.Any:
        remove_session(current_session)
        return jsonify(
            user=getattr(current_session.user, "email", None),
            user_id=current_session.user_id,
            secret=session.get("secret"),
        )

    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = app.test_client()
    login(client, a)
    told = client.post("/switch-and-tell", data={"uid": str(b)}).get_json()
    assert told == {
        "before": "a@example.com",
        "after": "b@example.com",
        "after_id": b,
        "gone": [None, None, False],
    }
    assert info(client)["user_id"] == b
    client.post("/set", data={"secret": "of b"})
    told = client.post("/end-and-tell").get_json()
    assert told == {"user": None, "user_id": None, "secret": None}
    assert info(client)["user_id"] is None


def test_in_place_change_refused_at_save_writes_nothing(backend: Backend, clock: Clock) -> None:
    """'What only the save can see (a value changed in place ...) is refused
    when the session is saved. The message names the key ... and nothing is
    written' — nor does a login in that request take effect."""
    app = make_app(backend, clock, TESTING=False)

    @app.post("/spoil")
    def spoil() -> str:
        session["items"].append(float("nan"))
        session.modified = True
        return "spoiled"

    @app.post("/login-and-spoil")
    @with_new_session
    def login_and_spoil() -> str:
        session["user_id"] = int(request.form["uid"])
        session["items"] = []
        session["items"].append({1: 2})
        session.modified = True
        return "spoiled"

    @app.post("/items")
    def items() -> str:
        session["items"] = ["ok"]
        return "ok"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    client.post("/items")
    cookie = session_cookie(client)
    rows = backend.rows()
    assert client.post("/spoil").status_code == 500
    assert backend.rows() == rows
    assert client.post("/login-and-spoil", data={"uid": str(uid)}).status_code == 500
    assert backend.rows() == rows
    assert session_cookie(client) == cookie
    assert info(client)["data"] == {"items": repr(["ok"])}


def test_unknown_user_errors_are_not_chained_and_not_logged_with_the_id(
    backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """'No session data appears in a log line or an exception message: database
    errors that quote values are described by their kind only, and not
    chained.' A user id is session data."""
    import traceback

    caplog.set_level(logging.DEBUG)
    app, holder = id_app(backend, clock)
    backend.add_user("a@example.com")
    holder["uid"] = 987_654_321
    client = app.test_client()
    with pytest.raises(UnknownUserError) as caught:
        client.post("/link-raw")
    text = "".join(traceback.format_exception(caught.value)) + caplog.text
    assert "987654321" not in text
    assert caught.value.__cause__ is None


def test_a_permanent_cookie_signed_again_stays_permanent(backend: Backend, clock: Clock) -> None:
    """'A cookie that arrives signed with an old key is signed again with the
    current one, in the same response' — as the cookie it was: a permanent
    session's cookie 'expires with the stored session'."""
    old_app = make_app(
        backend, clock, SECRET_KEY="old key " * 4, SESSION_REFRESH_EACH_REQUEST=False
    )
    client = old_app.test_client()
    client.post("/permanent")
    old_cookie = session_cookie(client)
    rotated = make_app(
        backend,
        clock,
        SECRET_KEY="new key " * 4,
        SECRET_KEY_FALLBACKS=["old key " * 4],
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    browser = replay(rotated, old_cookie)
    response = browser.get("/get")
    (header,) = set_cookie_headers(response)
    assert "Expires=" in header, header


def test_a_permanent_cookie_never_outlives_the_absolute_timeout(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(
        backend,
        clock,
        KITSESSION_IDLE_TIMEOUT=timedelta(days=30),
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(days=1),
    )
    client = app.test_client()
    client.post("/permanent")
    cookie = client.get_cookie("session")
    assert cookie is not None and cookie.expires is not None
    assert cookie.expires <= clock.now + timedelta(days=1, seconds=1)


def test_idle_timeout_defaults_to_the_permanent_session_lifetime_for_every_session(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock, PERMANENT_SESSION_LIFETIME=timedelta(hours=1))
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    cookie = login(client, uid)
    clock.advance(minutes=61)
    assert info(replay(app, cookie))["user_id"] is None


def test_devices_list_leaves_out_expired_sessions(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock, KITSESSION_IDLE_TIMEOUT=timedelta(minutes=30))
    uid = backend.add_user("a@example.com")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, uid)
    clock.advance(minutes=20)
    login(phone, uid)
    clock.advance(minutes=20)
    info(phone)
    with app.app_context():
        devices = get_sessions_for_user(uid)
        assert len(devices) == 1
        assert len(get_sessions_for_user(uid, include_expired=True)) in (1, 2)


SESSION_READS: dict[str, t.Callable[[], t.Any]] = {
    "user_id": lambda: current_session.user_id,
    "user": lambda: getattr(current_session.user, "email", None),
    "is_authenticated": lambda: current_session.is_authenticated,
    "id": lambda: current_session.id,
    "created_at": lambda: current_session.created_at,
    "new": lambda: current_session.new,
    "permanent": lambda: current_session.permanent,
    "len": lambda: len(session),
    "contains": lambda: "x" in session,
    "iter": lambda: list(session),
}


@pytest.mark.parametrize("read", list(SESSION_READS))
def test_every_read_of_the_session_varies_on_cookie(
    backend: Backend, clock: Clock, read: str
) -> None:
    """Flask's promise kept by kitsession: a response that depends on the
    session says 'Vary: Cookie', so no shared cache serves one user's page
    to another."""
    app = make_app(backend, clock)

    @app.get("/read")
    def read_view() -> str:
        return str(SESSION_READS[read]())

    uid = backend.add_user("a@example.com")
    for logged_in in (False, True):
        client = app.test_client()
        if logged_in:
            login(client, uid)
        assert "Cookie" in client.get("/read").headers.get("Vary", ""), (read, logged_in)


def test_flask_login_current_user_varies_on_cookie(lapp: LoginApp) -> None:
    client = lapp.app.test_client()
    client.post("/login/u1")
    for path in ["/profile", "/whoami"]:
        assert "Cookie" in client.get(path).headers.get("Vary", ""), path


def test_redis_prefixes_nested_in_each_other_keep_apps_apart(
    redis_backend: Backend, clock: Clock
) -> None:
    from flask_kitsession import get_all_sessions
    from flask_kitsession import RedisStore

    base = redis_backend.store.prefix  # type: ignore[attr-defined]
    client = redis_backend.client  # type: ignore[attr-defined]
    first = RedisStore(client, prefix=f"{base}app:", user_id_type=int)
    second = RedisStore(
        client, prefix=f"{base}app:session:", user_id_type=int, user_loader=lambda i: {"id": i}
    )
    apps = []
    for store in (first, second):
        app = Flask("shared-redis")
        app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
        KitSession(app, store=store, clock=clock)
        add_views(app)
        apps.append(app)
    apps[0].test_client().post("/set", data={"app": "first"})
    apps[1].test_client().post("/login", data={"user_id": "5"})
    with apps[0].app_context():
        seen = [dict(s) for s in get_all_sessions()]
    assert seen == [{"app": "first"}]


def test_the_flask_tutorial_login_and_switch(backend: Backend, clock: Clock) -> None:
    """Flask's tutorial logs in with ``session.clear(); session["user_id"] = id``:
    a plain view linking a user, 'by any path'."""
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")

    @app.post("/tutorial-login")
    def tutorial_login() -> str:
        session.clear()
        session["user_id"] = int(request.form["uid"])
        return "ok"

    a = backend.add_user("a@example.com")
    b = backend.add_user("b@example.com")
    client = app.test_client()
    planted = anonymous_start(client, cart="1")
    client.post("/tutorial-login", data={"uid": str(a)})
    assert session_cookie(client) != planted
    assert info(replay(app, planted))["user_id"] is None
    client.post("/set", data={"secret": "of a"})
    old = session_cookie(client)
    client.post("/tutorial-login", data={"uid": str(b)})
    now = info(client)
    assert now["user_id"] == b and now["keys"] == ["user_id"]
    assert info(replay(app, old))["user_id"] is None
    assert len(backend.rows()) == 1


@pytest.mark.parametrize("key", ["int", "str", "uuid"])
def test_the_same_user_in_another_spelling_is_the_same_user(
    empty_database_url: str, key: str
) -> None:
    """'UserKeyType is the one place that converts them': the id of the linked
    user, written again in another accepted spelling, is the same user."""
    from .support.keyed_users import make_keyed_login_app

    keyed = make_keyed_login_app(empty_database_url, key)
    try:
        app = keyed.app
        uid = keyed.add_user(1, "one")
        client = app.test_client()
        assert client.post("/login/1").status_code == 200
        client.post("/set", data={"mine": "kept"})
        cookie = session_cookie(client)
        spellings = {
            "int": [str(uid), f"+{uid}", f"0{uid}"],
            "str": [str(uid)],
            "uuid": [
                str(uid).upper(),
                "{" + str(uid) + "}",
                uid.urn if key == "uuid" else "",
                uid.hex if key == "uuid" else "",
            ],
        }[key]
        for spelling in spellings:
            assert client.post("/set", data={"_user_id": spelling}).status_code == 200, spelling
            profile = client.get("/profile")
            assert profile.status_code == 200, spelling
            assert session_cookie(client) == cookie, spelling
        rows = keyed.session_rows()
        assert len(rows) == 1 and rows[0]["user_id"] == uid
    finally:
        keyed.close()


RESHUFFLES = ["clear-and-restore", "pop-and-restore"]


def add_reshuffle_view(app: Flask) -> None:
    @app.post("/reshuffle/<how>")
    def reshuffle(how: str) -> str:
        """No authentication here: the view rebuilds the data it already had
        (dropping stale keys, undoing an impersonation, ...)."""
        if how == "clear-and-restore":
            data = dict(session)
            session.clear()
            session.update(data)
        else:
            uid = session.pop("user_id", None)
            if uid is not None:
                session["user_id"] = uid
        return "ok"


@pytest.mark.parametrize("how", RESHUFFLES)
def test_rewriting_the_same_user_after_removing_it_is_not_authentication(
    backend: Backend, clock: Clock, how: str
) -> None:
    app = make_app(backend, clock)
    add_reshuffle_view(app)
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    clock.advance(minutes=11)
    assert client.get("/fresh").status_code == 401
    assert client.post(f"/reshuffle/{how}").status_code == 200
    assert info(client)["user_id"] == uid
    assert client.get("/fresh").status_code == 401


@pytest.mark.parametrize("how", RESHUFFLES)
def test_rewriting_the_same_user_after_removing_it_keeps_the_absolute_clock(
    backend: Backend, clock: Clock, how: str
) -> None:
    app = make_app(
        backend,
        clock,
        KITSESSION_IDLE_TIMEOUT=timedelta(minutes=30),
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=2),
    )
    add_reshuffle_view(app)
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    start = clock.now
    for _ in range(7):
        clock.advance(minutes=20)
        client.post(f"/reshuffle/{how}")
    assert clock.now - start > timedelta(hours=2)
    assert info(client)["user_id"] is None


# -- a store that is down -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "redis"])
def test_a_store_that_is_down_gives_503_only_to_those_who_need_it(kind: str, clock: Clock) -> None:
    """'While the store is unreachable, a request that needs it gets a clean
    503, through the app's own handler for 503 ... The visitor's cookie is
    kept. A visitor without a cookie who writes nothing is served as usual.'
    A cookie that is no signed token needs no store ('refused before any
    work')."""
    from flask_kitsession import RedisStore
    from flask_kitsession import SQLAlchemyStore
    from flask_kitsession.stores.sql import create_store_engine

    from .support.backends import MemoryBackend

    if kind == "redis":
        store: t.Any = RedisStore.from_url(
            "redis://127.0.0.1:1/0", user_id_type=int, socket_connect_timeout=1
        )
    else:
        url = {
            "postgresql": "postgresql+psycopg://postgres@127.0.0.1:1/test",
            "mariadb": "mysql+pymysql://root@127.0.0.1:1/test",
        }[kind]
        store = SQLAlchemyStore(create_store_engine(url, connect_args={"connect_timeout": 1}))

    class Down(MemoryBackend):
        pass

    down = Down()
    down.store = store
    app = make_app(down, clock, TESTING=False)

    @app.errorhandler(503)
    def unavailable(e: Exception) -> t.Any:
        return "our own 503 page", 503

    minted = MemoryBackend()
    minter = make_app(minted, clock)
    valid_cookie = anonymous_start(minter.test_client())
    try:
        client = app.test_client()
        assert client.get("/get").status_code == 200
        assert client.get("/plain").status_code == 200
        response = client.post("/set", data={"x": "1"})
        assert response.status_code == 503 and b"our own 503 page" in response.data
        for cookie in ["garbage", "x" * 43 + "." + "y" * 43]:
            response = replay(app, cookie).get("/get")
            assert response.status_code == 200
            assert set_cookie_headers(response) == []
        response = replay(app, valid_cookie).get("/get")
        assert response.status_code == 503 and b"our own 503 page" in response.data
        assert set_cookie_headers(response) == []
    finally:
        store.close()


@pytest.mark.parametrize("how", RESHUFFLES)
def test_a_revocation_during_a_reshuffle_is_never_undone(
    backend: Backend, clock: Clock, how: str
) -> None:
    app = make_app(backend, clock)
    uid = backend.add_user("a@example.com")

    @app.post("/in-flight-reshuffle")
    def in_flight_reshuffle() -> str:
        backend.store.delete_all_for_user(uid)  # another device: "sign out everywhere"
        if how == "clear-and-restore":
            data = dict(session)
            session.clear()
            session.update(data)
        else:
            session["user_id"] = session.pop("user_id")
        return "done"

    client = app.test_client()
    login(client, uid)
    assert client.post("/in-flight-reshuffle").status_code == 200
    assert info(client)["user_id"] is None
    assert stored_user_sessions(backend, uid) == []


def test_a_revocation_during_a_same_user_write_is_never_undone(
    backend: Backend, clock: Clock
) -> None:
    app = make_app(backend, clock)
    uid = backend.add_user("a@example.com")

    @app.post("/in-flight-same")
    def in_flight_same() -> str:
        backend.store.delete_all_for_user(uid)
        session["user_id"] = uid
        return "done"

    client = app.test_client()
    login(client, uid)
    assert client.post("/in-flight-same").status_code == 200
    assert info(client)["user_id"] is None
    assert stored_user_sessions(backend, uid) == []


# -- odds and ends -------------------------------------------------------------------------


def test_flask_session_transaction_logs_a_test_client_in(backend: Backend, rapp: Flask) -> None:
    """Flask's testing idiom goes through the session interface too."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    planted = anonymous_start(client, cart="1")
    with client.session_transaction() as s:
        s["user_id"] = uid
    assert info(client)["user_id"] == uid
    assert session_cookie(client) != planted
    assert info(replay(rapp, planted))["user_id"] is None


def test_a_cookie_signed_again_costs_one_touch(backend: Backend, clock: Clock) -> None:
    """security.md §5: '... the session is touched (one UPDATE, once per
    visitor) and, if it is still stored, its cookie set again (same token)'.
    (It was "no store write" before the third review showed that a cookie
    re-sent unconfirmed can be one another request has just renamed.)"""
    old_app = make_app(backend, clock, SECRET_KEY="old key " * 4)
    uid = backend.add_user("a@example.com")
    client = old_app.test_client()
    cookie = login(client, uid)
    rotated = make_app(
        backend, clock, SECRET_KEY="new key " * 4, SECRET_KEY_FALLBACKS=["old key " * 4]
    )
    browser = replay(rotated, cookie)
    with backend.operations() as operations:
        response = browser.get("/me")
    assert len(set_cookie_headers(response)) == 1
    assert len(backend.writes(operations)) == 1
    # Signed again with the new key: the next request writes nothing.
    with backend.operations() as operations:
        response = browser.get("/me")
    assert set_cookie_headers(response) == []
    assert backend.writes(operations) == []


def test_tracking_off_stores_no_address_and_no_agent(backend: Backend, clock: Clock) -> None:
    app = make_app(backend, clock, KITSESSION_TRACK_IP=False, KITSESSION_TRACK_USER_AGENT=False)
    client = app.test_client()
    client.post("/set", data={"x": "1"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    (row,) = backend.rows()
    assert row["ip_address"] is None and row["user_agent"] is None


@pytest.mark.parametrize("prefix", ["%%%%%%%%", "________", "********", "????????", "[0-9a-f]" * 2])
def test_cli_revoke_takes_an_id_prefix_not_a_pattern(
    backend: Backend, rapp: Flask, prefix: str
) -> None:
    """cli.md: 'revoke --session takes the whole id or its first 8 or more
    characters'."""
    uid = backend.add_user("a@example.com")
    client = rapp.test_client()
    login(client, uid)
    result = rapp.test_cli_runner().invoke(args=["kitsession", "revoke", "--session", prefix])
    assert result.exit_code != 0
    assert info(client)["user_id"] == uid


@pytest.mark.filterwarnings("ignore:The 'session' cookie is too large")
def test_hostile_cookies_on_a_flask_login_app(lapp: LoginApp) -> None:
    app = lapp.app
    for value in HOSTILE_COOKIES:
        for remember in ["", "u1|" + "0" * 128, "garbage", "u1"]:
            client = app.test_client()
            client.set_cookie("session", value)
            if remember:
                client.set_cookie("remember_token", remember)
            assert client.get("/profile").status_code == 401, (value, remember)
            assert client.get("/whoami").get_json()["user"] is None
            response = client.post("/set", data={"x": "1"})
            assert response.status_code == 200
