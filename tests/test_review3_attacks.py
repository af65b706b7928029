"""Review 3: attacks on the session lifecycle (docs/security.md, sections 0
and 9) in compositions an ordinary Flask app writes.

Each test asserts the PROMISED behaviour, and its docstring quotes the
promise and says what the attack does. A test that fails is a broken
promise; a test that passes is a promise that held. Only this file is the
reviewer's work; fixtures come from tests/conftest.py and tests/support/.
"""

from __future__ import annotations

import threading
import typing as t
from datetime import timedelta

import pytest
from flask import abort
from flask import flash
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient
from flask_login import confirm_login
from flask_login import current_user
from flask_login import login_user
from flask_login import LoginManager
from flask_login import logout_user
from flask_login import UserMixin
from flask_wtf.csrf import CSRFProtect
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from flask_kitsession import create_session
from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import fresh_login_required
from flask_kitsession import KitSession
from flask_kitsession import refresh_authentication
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import remove_session
from flask_kitsession import set_session_cookie
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend

COOKIE = "session"
#: The backends the lifecycle runs on in these attacks (MariaDB adds nothing
#: to the lifecycle that PostgreSQL does not show, and the machine is busy).
FOUR = pytest.mark.parametrize(
    "backend", ["memory", "sqlite", "postgresql", "redis"], indirect=True
)


# -- apps ------------------------------------------------------------------------


class Member(UserMixin):  # type: ignore[misc]
    """A Flask-Login user whose id is the backend's integer user id."""

    def __init__(self, user_id: t.Any) -> None:
        self.id = int(user_id)


def make_app(backend: Backend, clock: Clock, **config: t.Any) -> Flask:
    """The views of tests/support/apps.py, an /info view, and Flask-Login
    (with a loader of its own, so that it works on every backend).
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
    app.config.update(config)
    login_manager = LoginManager(app)
    login_manager.user_loader(Member)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)

    @app.get("/info")
    def info() -> t.Any:
        s = current_session
        return jsonify(
            user_id=s.user_id,
            login_user=current_user.get_id() if current_user.is_authenticated else None,
            data={k: v for k, v in session.items() if not k.startswith("_")},
            created_at=s.created_at.isoformat() if s.created_at else None,
            authenticated_at=s.authenticated_at.isoformat() if s.authenticated_at else None,
        )

    @app.post("/fl-login/<int:uid>")
    def fl_login(uid: int) -> str:
        login_user(Member(uid), fresh=request.args.get("fresh") != "0")
        return "in"

    return app


def cookie_of(client: FlaskClient) -> str | None:
    c = client.get_cookie(COOKIE)
    return None if c is None else c.value


def session_set_cookies(response: t.Any) -> list[str]:
    return [v for v in response.headers.getlist("Set-Cookie") if v.startswith(COOKIE + "=")]


def login(client: FlaskClient, uid: t.Any) -> str:
    response = client.post("/login", data={"user_id": str(uid)})
    assert response.status_code == 200, response.data
    value = cookie_of(client)
    assert value is not None
    return value


def info(client: FlaskClient) -> dict[str, t.Any]:
    response = client.get("/info")
    assert response.status_code == 200, response.data
    return t.cast(dict[str, t.Any], response.get_json())


def with_cookie(app: Flask, value: str | None) -> FlaskClient:
    """A new browser holding only this session cookie."""
    client = app.test_client()
    if value is not None:
        client.set_cookie(COOKIE, value)
    return client


def rows_of(backend: Backend, uid: t.Any) -> list[dict[str, t.Any]]:
    return [row for row in backend.rows() if row["user_id"] == uid]


# -- 1. Sessions handed over with create_session() + set_session_cookie() ------


@FOUR
def test_set_session_cookie_in_a_request_that_fails_keeps_the_browsers_session(
    backend: Backend, clock: Clock
) -> None:
    """security.md §6: "The stored session stays as it was before a request
    that fails. A request that ends in a 5xx (an exception, the app's own
    500 page, a 503) keeps none of its session changes"; §0 "One browser,
    one stored session": "`create_session()` + `set_session_cookie()` in a
    view hands the browser the new session and deletes the one it had."

    Attack: a signed-in browser hits a view that makes a session for a magic
    link (create_session + set_session_cookie), then fails (a 500). The
    browser never gets the new cookie (the response is the error page), so
    it must keep the session it had. Seen: set_session_cookie() deleted the
    browser's stored session at once, so the failed request signed the
    browser out, and the new session is left stored, owned by nobody's
    cookie.
    """
    app = make_app(backend, clock, PROPAGATE_EXCEPTIONS=False)

    @app.post("/magic/<int:uid>")
    def magic(uid: int) -> Response:
        response = jsonify(ok=True)
        set_session_cookie(response, create_session(uid))
        raise RuntimeError("the mailer failed after the session was made")

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    assert client.post(f"/magic/{uid}").status_code == 500
    assert info(client)["user_id"] == uid, "a failed request signed the browser out"
    assert len(rows_of(backend, uid)) == 1


@FOUR
def test_set_session_cookie_in_a_login_view_that_raises_leaves_the_session(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "A view that raises leaves the session as it was
    before the view." (lifecycle.md: "A view that raises leaves the session
    as it was before the view.")

    Attack: a `@with_new_session` view hands over a session made with
    create_session() + set_session_cookie(), then raises a 4xx (a rate limit
    check after the fact, an `abort(429)`). Seen: the browser's stored
    session had been deleted by set_session_cookie(); the 4xx response keeps
    the old cookie, which now names nothing: the browser is signed out,
    and an orphan session of the user stays stored.
    """
    app = make_app(backend, clock)

    @app.post("/switch-by-link/<int:uid>")
    @with_new_session
    def switch_by_link(uid: int) -> Response:
        response = jsonify(ok=True)
        set_session_cookie(response, create_session(uid))
        abort(429)

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    login(client, ada)
    assert client.post(f"/switch-by-link/{bob}").status_code == 429
    assert info(client)["user_id"] == ada
    assert rows_of(backend, bob) == [], "an orphan session of Bob was left stored"


@FOUR
def test_create_session_and_set_session_cookie_after_logout_user_in_one_request(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0 "One browser, one stored session": "`create_session()`
    + `set_session_cookie()` in a view hands the browser the new session and
    deletes the one it had." Held: a view that logs the visitor out with
    Flask-Login and hands over another user's session leaves one session.
    """
    app = make_app(backend, clock)

    @app.post("/hand-over/<int:uid>")
    def hand_over(uid: int) -> Response:
        logout_user()
        flash("switched")
        response = jsonify(ok=True)
        return set_session_cookie(response, create_session(uid))

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    old = login(client, ada)
    assert client.post(f"/hand-over/{bob}").status_code == 200
    assert info(client)["user_id"] == bob
    assert info(with_cookie(app, old))["user_id"] is None
    assert len(backend.rows()) == 1


# -- 2. Signing out other devices in a request that started over ---------------


@FOUR
def test_a_same_user_relogin_that_signs_out_other_devices_keeps_this_one(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "**login**: a `@with_new_session` view that writes a
    user key ... A login of the user already linked starts over too." and
    "One browser, one stored session. A request that ends with a user linked
    leaves exactly one stored session for that browser, the one its cookie
    names"; README: `remove_all_sessions_for_user(current_session.user_id,
    current_session)` signs out the *other* devices.

    Attack: a login form with a "sign me out everywhere else" box, used by a
    user who is already signed in on this browser (they typed their password
    again). Seen: the request ends with a user linked and zero stored
    sessions for the browser: the re-login renames the old row to a new
    token at save, but remove_all_sessions_for_user() had kept only the new
    token's id, so it deleted the row the rename needed. The user is signed
    out of every device, this one included.
    """
    app = make_app(backend, clock)

    @app.post("/login-everywhere-else")
    @with_new_session
    def login_everywhere_else() -> str:
        session["user_id"] = int(request.form["uid"])
        return str(remove_all_sessions_for_user(current_session.user_id, current_session))

    uid = backend.add_user("a@example.com")
    phone = app.test_client()
    login(phone, uid)
    laptop = app.test_client()
    login(laptop, uid)
    response = laptop.post("/login-everywhere-else", data={"uid": str(uid)})
    assert response.status_code == 200
    assert info(phone)["user_id"] is None
    assert info(laptop)["user_id"] == uid, "the re-login signed this device out too"
    assert len(rows_of(backend, uid)) == 1


@FOUR
def test_credentials_changed_after_login_user_of_the_same_user_keeps_this_device(
    backend: Backend, clock: Clock
) -> None:
    """lifecycle.md: "`credentials_changed()`, after a password change, signs
    the user out of every other session and regenerates this one."; §0:
    "`login_user` ... A login of the user already linked starts over too",
    and "One browser, one stored session".

    Attack: a password-reset view (as Flask-Security's does) logs the user in
    with Flask-Login's login_user() and calls credentials_changed(); the user
    opened the reset link in a browser where they were signed in already.
    Seen: the request signs this browser out as well: credentials_changed()
    kept the id of the token the re-login would get, deleted the row the
    re-login renames, and the rename then found nothing.
    """
    app = make_app(backend, clock)

    @app.post("/reset-password/<int:uid>")
    def reset_password(uid: int) -> str:
        login_user(Member(uid))
        return str(credentials_changed())

    uid = backend.add_user("a@example.com")
    other = app.test_client()
    login(other, uid)
    client = app.test_client()
    client.post(f"/fl-login/{uid}")
    assert info(client)["user_id"] == uid
    revoked = client.post(f"/reset-password/{uid}").text
    assert info(other)["user_id"] is None
    assert info(client)["user_id"] == uid, "credentials_changed() signed this device out"
    assert len(rows_of(backend, uid)) == 1
    assert revoked == "1", "this device was counted among the other devices"


@FOUR
def test_sign_out_others_after_refresh_authentication_keeps_this_device(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "`refresh_authentication()` ... A fresh
    authentication of an unchanged session renames it to a new token's id."
    Held: "confirm your password, then sign out the other devices" in one
    request keeps this device, under a new token, and the old cookie is dead.
    """
    app = make_app(backend, clock)

    @app.post("/confirm-and-sign-out-others")
    def confirm_and_sign_out_others() -> str:
        refresh_authentication()
        return str(remove_all_sessions_for_user(current_session.user_id, current_session))

    uid = backend.add_user("a@example.com")
    other = app.test_client()
    login(other, uid)
    client = app.test_client()
    old = login(client, uid)
    assert client.post("/confirm-and-sign-out-others").data == b"1"
    assert info(client)["user_id"] == uid
    assert cookie_of(client) != old
    assert info(with_cookie(app, old))["user_id"] is None
    assert info(other)["user_id"] is None


# -- 3. Parallel requests of one browser, crossing a new token ------------------


class Paused:
    """A view that loads the session, then waits until the test lets it go:
    a request of the same page, in flight while another one runs.
    """

    def __init__(self, app: Flask) -> None:
        self.loaded = threading.Event()
        self.go = threading.Event()
        self.response: t.Any = None
        paused = self

        @app.get("/slow-read")
        def slow_read() -> t.Any:
            user_id = current_session.user_id
            paused.loaded.set()
            assert paused.go.wait(10)
            return jsonify(user_id=user_id)

    def start(self, app: Flask, cookie: str) -> threading.Thread:
        def run() -> None:
            self.response = with_cookie(app, cookie).get("/slow-read")

        thread = threading.Thread(target=run)
        thread.start()
        assert self.loaded.wait(10)
        return thread

    def finish(self, thread: threading.Thread) -> t.Any:
        self.go.set()
        thread.join(10)
        return self.response


def the_browsers_cookie_after(first: t.Any, second: t.Any, fallback: str) -> str:
    """The cookie a browser keeps when ``second`` arrives after ``first``."""
    value = fallback
    for response in (first, second):
        for header in session_set_cookies(response):
            value = header.split(";", 1)[0].split("=", 1)[1]
    return value


@FOUR
def test_a_read_crossing_a_relogin_of_a_permanent_session_never_signs_it_out(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "No response expires the session cookie unless its
    request ended or emptied the session. ... so is a signed cookie whose
    session ended or was renamed meanwhile, so that a request crossing a
    login or a new token of the same browser (parallel requests of one page)
    never signs it out." lifecycle.md: "a request that crosses a login or a
    `regenerate()` of the same browser (parallel requests of one page) never
    signs it out."

    Attack: a permanent session (flask-login.md's own "remember me":
    `session.permanent = remember_me`) with Flask's default
    SESSION_REFRESH_EACH_REQUEST. A page's XHR (a read, writing nothing) is
    in flight while the same browser logs in again. Seen: the read re-sends
    the cookie of the token it loaded, which the re-login has just renamed
    away; when its response arrives last, the browser holds a dead cookie
    and is signed out.
    """
    app = make_app(backend, clock)

    @app.post("/login-remember")
    @with_new_session
    def login_remember() -> str:
        session.permanent = True
        session["user_id"] = int(request.form["uid"])
        return "in"

    paused = Paused(app)
    uid = backend.add_user("a@example.com")
    client = app.test_client()
    client.post("/login-remember", data={"uid": str(uid)})
    old = cookie_of(client)
    assert old is not None
    thread = paused.start(app, old)
    relogin = client.post("/login-remember", data={"uid": str(uid)})
    assert relogin.status_code == 200
    read = paused.finish(thread)
    assert read.status_code == 200
    kept = the_browsers_cookie_after(relogin, read, old)
    assert info(with_cookie(app, kept))["user_id"] == uid, (
        "the read crossing the re-login re-sent a dead cookie: signed out"
    )


@FOUR
def test_a_read_crossing_regenerate_during_key_rotation_never_signs_it_out(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0 (as above): a request crossing "a new token of the same
    browser (parallel requests of one page) never signs it out"; §5: "A
    cookie that arrives signed with an old key is signed again with the
    current one, in the same response."

    Attack: in a key rotation (SECRET_KEY_FALLBACKS), a browser whose cookie
    is signed with the old key sends two requests of one page: one calls
    `regenerate()` (privileges changed), the other only reads. Seen: the read
    signs its now dead token again with the new key and sends it; arriving
    last, it replaces the browser's new cookie: signed out.
    """
    old_key = "the previous secret key of this app, 2025 edition"
    before = make_app(backend, clock, SECRET_KEY=old_key)
    uid = backend.add_user("a@example.com")
    client = before.test_client()
    old = login(client, uid)

    app = make_app(backend, clock, SECRET_KEY_FALLBACKS=[old_key])

    @app.post("/promote")
    def promote() -> str:
        session["role"] = "admin"
        regenerate()
        return "promoted"

    paused = Paused(app)
    thread = paused.start(app, old)
    promoted = with_cookie(app, old).post("/promote")
    assert promoted.status_code == 200
    read = paused.finish(thread)
    kept = the_browsers_cookie_after(promoted, read, old)
    assert info(with_cookie(app, kept))["user_id"] == uid, (
        "the read crossing regenerate() re-signed a dead cookie: signed out"
    )


@FOUR
def test_a_write_crossing_a_relogin_never_signs_the_browser_out(
    backend: Backend, clock: Clock
) -> None:
    """security.md §2: "a session found gone stays gone (its cookie names
    nothing; it is left alone, so that a request crossing a new token of the
    same browser cannot expire the new cookie)". Held: a request that loaded
    the session before the same browser logged in again, and writes after,
    neither brings the old token back nor touches the cookie.
    """
    app = make_app(backend, clock)
    loaded = threading.Event()
    go = threading.Event()
    result: dict[str, t.Any] = {}

    @app.post("/slow-write")
    def slow_write() -> str:
        session["note"] = "written by the slow request"
        loaded.set()
        assert go.wait(10)
        return "written"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    old = login(client, uid)

    def run() -> None:
        result["response"] = with_cookie(app, old).post("/slow-write")

    thread = threading.Thread(target=run)
    thread.start()
    assert loaded.wait(10)
    relogin = client.post("/login", data={"user_id": str(uid)})
    go.set()
    thread.join(10)
    assert session_set_cookies(result["response"]) == []
    kept = the_browsers_cookie_after(relogin, result["response"], old)
    assert info(with_cookie(app, kept))["user_id"] == uid
    assert info(with_cookie(app, old))["user_id"] is None
    assert len(rows_of(backend, uid)) == 1


# -- 4. remove_session(current_session) -----------------------------------------


@FOUR
def test_remove_session_of_a_session_that_started_over_in_this_request_ends_it(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "**end**: `@with_delete_session`, `logout_user()`,
    `remove_session()` of the current session. The stored session is deleted
    when the request's session is saved; what the request wrote (but for the
    user keys) ... goes into a new session."

    Attack: a login view that links the user, then finds the account must
    not be used (banned, say) and ends the session with
    `remove_session(current_session)`. Seen: remove_session() does not
    recognise the current session (it has no stored record yet) and returns
    False; the end of the request stores the session, linked to the user:
    the visitor is signed in.
    """
    app = make_app(backend, clock)

    @app.post("/login-then-refuse")
    @with_new_session
    def login_then_refuse() -> t.Any:
        session["user_id"] = int(request.form["uid"])
        session["notice"] = "account suspended"
        return jsonify(removed=remove_session(current_session))

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    client.post("/set", data={"cart": "3 apples"})
    response = client.post("/login-then-refuse", data={"uid": str(uid)})
    assert response.status_code == 200
    seen = info(client)
    assert seen["user_id"] is None, "remove_session(current_session) left the user signed in"
    assert rows_of(backend, uid) == []


@FOUR
def test_remove_session_of_the_current_session_by_id_from_a_devices_page(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0 "end": `remove_session()` of the current session ...
    "what the request wrote (but for the user keys) and writes afterwards (a
    flash ...) goes into a new session." Held: the devices page's "sign out
    this device" posts the current session's id as text; the browser is
    signed out, its old cookie is dead, and the flash is kept anonymously.
    """
    app = make_app(backend, clock)

    @app.post("/devices/sign-out")
    def sign_out_device() -> str:
        removed = remove_session(request.form["id"])
        flash("This device is signed out.")
        return str(removed)

    @app.get("/my-id")
    def my_id() -> str:
        return current_session.id

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    old = login(client, uid)
    session_id = client.get("/my-id").text
    assert client.post("/devices/sign-out", data={"id": session_id}).text == "True"
    assert info(with_cookie(app, old))["user_id"] is None
    with client.session_transaction() as s:
        assert set(s) == {"_flashes"}, dict(s)
    assert info(client)["user_id"] is None
    assert rows_of(backend, uid) == []


# -- 5. A login view that raises ------------------------------------------------


@FOUR
def test_a_login_view_that_raises_keeps_none_of_its_in_place_changes(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "A view that raises leaves the session as it was
    before the view. | The login is a window: only a user-key write inside
    it starts over; an exception restores the checkpoint taken on entry."

    Attack: a login view counts failures the usual way,
    `session.setdefault("failures", []).append(...)` and
    `session.modified = True` (as the docs say for in-place changes), then
    raises 429; the app's 429 handler flashes a message. Seen: the
    checkpoint is a shallow copy, so the list changed in place is not
    restored: the failure the raising view recorded is stored with the
    flash.
    """
    app = make_app(backend, clock)

    @app.errorhandler(429)
    def too_many(error: Exception) -> t.Any:
        flash("Too many attempts, try again later.")
        return "slow down", 429

    @app.post("/login-limited")
    @with_new_session
    def login_limited() -> str:
        failures = session.setdefault("failures", [])
        failures.append("attempt")
        session.modified = True
        abort(429)

    client = app.test_client()
    client.post("/set", data={"cart": "apples"})
    with client.session_transaction() as s:
        s["failures"] = ["earlier"]
    assert client.post("/login-limited").status_code == 429
    assert info(client)["data"]["failures"] == ["earlier"], (
        "the raising view's in-place change was stored"
    )


@FOUR
def test_a_login_view_that_raises_after_login_user_leaves_current_user_as_the_session(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "The key written names the user ..., so the session's
    link and Flask-Login's `current_user` never disagree." and "A view that
    raises leaves the session as it was before the view."

    Attack: a `@with_new_session` login view calls login_user(Bob) and then
    raises (a second factor is missing: `abort(401)`); the app's 401 page
    greets `current_user`. Seen: the session is rolled back to the
    anonymous visitor's, but Flask-Login's `current_user` is still Bob for
    the rest of the request: the error page (and anything it writes) runs
    as Bob on an anonymous session.
    """
    app = make_app(backend, clock)

    @app.errorhandler(401)
    def unauthorized(error: Exception) -> t.Any:
        return jsonify(
            login_user=current_user.get_id() if current_user.is_authenticated else None,
            session_user=current_session.user_id,
        ), 401

    @app.post("/login-2fa/<int:uid>")
    @with_new_session
    def login_2fa(uid: int) -> str:
        login_user(Member(uid))
        abort(401)

    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    response = client.post(f"/login-2fa/{bob}")
    assert response.status_code == 401
    seen = response.get_json()
    assert seen["session_user"] is None
    assert seen["login_user"] == seen["session_user"], (
        "Flask-Login's current_user is Bob while the session is anonymous"
    )


# -- 6. Several user keys, and Flask-Login ---------------------------------------


@FOUR
def test_a_plain_user_id_write_in_a_flask_login_app_never_names_two_users(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "The key written names the user (user keys naming
    anyone else are dropped), so the session's link and Flask-Login's
    `current_user` never name two different users. (Flask-Login reads only
    `_user_id`: a plain view that writes `user_id` in a Flask-Login app links
    that user for kitsession, and Flask-Login then sees nobody.)"

    Attack: a Flask-Login app (Ada signed in by login_user) with one old
    view that writes `session["user_id"]` for Bob. Reviewed against the
    earlier wording ("never disagree"): kitsession links Bob and Flask-Login
    sees nobody. As documented now: never Ada for one and Bob for the other.
    """
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    client.post(f"/fl-login/{ada}")
    assert info(client)["login_user"] == str(ada)
    client.post("/set", data={"user_id": str(bob)})
    seen = info(client)
    assert seen["user_id"] == bob
    assert seen["login_user"] in (None, str(bob)), seen


@FOUR
def test_setdefault_of_flask_logins_key_names_the_user_and_drops_the_other_key(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "The key written names the user (user keys naming
    anyone else are dropped) ... When the linked user changes, the session
    *starts over*." Held: `session.setdefault("_user_id", bob)` on a session
    linked to Ada by `user_id` links Bob, drops Ada's key, changes the token,
    carries none of Ada's data, and Flask-Login agrees.
    """
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")

    @app.post("/adopt-login/<int:uid>")
    def adopt_login(uid: int) -> str:
        session.setdefault("_user_id", str(uid))
        return "ok"

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    old = login(client, ada)
    client.post("/set", data={"ada_secret": "s3cret"})
    client.post(f"/adopt-login/{bob}")
    assert cookie_of(client) != old
    seen = info(client)
    assert seen["user_id"] == bob
    assert seen["login_user"] == str(bob)
    assert "ada_secret" not in seen["data"]
    assert info(with_cookie(app, old))["user_id"] is None
    assert rows_of(backend, ada) == []


@FOUR
def test_popping_flask_logins_key_in_a_plain_view_is_a_clean_logout(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: the token changes on "A → none ... The old cookie is
    dead from then on", and "Nothing of a signed-in session follows it into
    an anonymous one". Held: a hand-written logout, `session.pop("_user_id")`,
    gives a new token; nothing of the user's data (nor `_fresh`, `_id`)
    follows, even with carry-over "*"; only the flash the view wrote does.
    """
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")

    @app.post("/pop-logout")
    def pop_logout() -> str:
        session.pop("_user_id")
        flash("bye")
        return "out"

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    client.post(f"/fl-login/{ada}")
    client.post("/set", data={"ada_secret": "s3cret"})
    old = cookie_of(client)
    assert old is not None
    client.post("/pop-logout")
    assert cookie_of(client) != old
    assert info(with_cookie(app, old))["user_id"] is None
    with client.session_transaction() as s:
        assert set(s) == {"_flashes"}, dict(s)
    assert rows_of(backend, ada) == []


# -- 7. CSRF tokens across login (section 9) -------------------------------------


def make_csrf_app(backend: Backend, clock: Clock, **config: t.Any) -> Flask:
    app = make_app(backend, clock, WTF_CSRF_CHECK_DEFAULT=False, **config)
    csrf = CSRFProtect(app)

    @app.get("/token")
    def token() -> t.Any:
        return jsonify(csrf_token=generate_csrf())

    @app.post("/protected")
    def protected() -> str:
        csrf.protect()
        return "ok"

    @app.post("/plain-switch/<int:uid>")
    def plain_switch(uid: int) -> t.Any:
        generate_csrf()  # the page's form read the token first
        session["user_id"] = uid
        return jsonify(csrf_token=generate_csrf())

    @app.post("/logout-remove")
    def logout_remove() -> t.Any:
        generate_csrf()
        remove_session(current_session)
        return jsonify(csrf_token=generate_csrf())

    @app.post("/relogin")
    @with_new_session
    def relogin() -> t.Any:
        session["user_id"] = int(request.form["uid"])
        return jsonify(csrf_token=generate_csrf())

    return app


def csrf_ok(client: FlaskClient, token: str) -> bool:
    response = client.post("/protected", headers={"X-CSRFToken": token})
    return response.status_code == 200


@FOUR
def test_csrf_token_never_passes_to_another_user_through_a_plain_view(
    backend: Backend, clock: Clock
) -> None:
    """security.md §9: "The token never passes to another user (a login as
    someone else drops it, and the login's response then hands out a new
    one)". Held: a plain view that links Bob on Ada's session, after the
    page's form read Ada's token, answers with a new token that works, and
    Ada's token is refused.
    """
    app = make_csrf_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    login(client, ada)
    ada_token = client.get("/token").json["csrf_token"]  # type: ignore[index]
    assert csrf_ok(client, ada_token)
    bob_token = client.post(f"/plain-switch/{bob}").json["csrf_token"]  # type: ignore[index]
    assert info(client)["user_id"] == bob
    assert csrf_ok(client, bob_token)
    assert not csrf_ok(client, ada_token)


@FOUR
def test_csrf_token_ends_with_remove_session_of_the_current_session(
    backend: Backend, clock: Clock
) -> None:
    """security.md §9: "It ends with the session at logout." Held: after
    `remove_session(current_session)` (a logout), the signed-in session's
    token is refused, and the token the logout's response hands out works.
    """
    app = make_csrf_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    ada_token = client.get("/token").json["csrf_token"]  # type: ignore[index]
    new_token = client.post("/logout-remove").json["csrf_token"]  # type: ignore[index]
    assert info(client)["user_id"] is None
    assert not csrf_ok(client, ada_token)
    assert csrf_ok(client, new_token)


@FOUR
def test_csrf_token_is_kept_across_a_relogin_of_the_same_user_with_no_carry_over(
    backend: Backend, clock: Clock
) -> None:
    """security.md §9: "kitsession keeps it, for the user who logs in" and
    "A JSON client's token, from before the login or from the login's
    response, works after it." Held with `KITSESSION_CARRY_OVER_KEYS` empty,
    for a re-login of the same user and for an anonymous visitor's login.
    """
    app = make_csrf_app(backend, clock, KITSESSION_CARRY_OVER_KEYS=[])
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    before = client.get("/token").json["csrf_token"]  # type: ignore[index]
    answer = client.post("/relogin", data={"uid": str(ada)}).json["csrf_token"]  # type: ignore[index]
    assert csrf_ok(client, before) and csrf_ok(client, answer)
    again = client.post("/relogin", data={"uid": str(ada)}).json["csrf_token"]  # type: ignore[index]
    assert csrf_ok(client, before) and csrf_ok(client, again)


@FOUR
def test_csrf_token_of_a_renamed_field_never_passes_to_another_user(
    backend: Backend, clock: Clock
) -> None:
    """security.md §9: "The token never passes to another user ... and the
    login's response then hands out a new one". Held with Flask-WTF's
    `WTF_CSRF_FIELD_NAME` set to another name, through login_user().
    """
    app = make_csrf_app(backend, clock, WTF_CSRF_FIELD_NAME="_csrf")

    @app.post("/fl-switch/<int:uid>")
    def fl_switch(uid: int) -> t.Any:
        generate_csrf()
        login_user(Member(uid))
        return jsonify(csrf_token=generate_csrf())

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    client.post(f"/fl-login/{ada}")
    ada_token = client.get("/token").json["csrf_token"]  # type: ignore[index]
    bob_token = client.post(f"/fl-switch/{bob}").json["csrf_token"]  # type: ignore[index]
    assert info(client)["login_user"] == str(bob)
    assert csrf_ok(client, bob_token)
    assert not csrf_ok(client, ada_token)


# -- 8. Clocks: the absolute timeout and freshness --------------------------------


@FOUR
def test_handing_the_same_user_a_new_session_is_a_login_of_its_own(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: the absolute clock restarts on "a session the app
    makes with `create_session()` (a login of its own, as a magic link is;
    handed over with `set_session_cookie()`, it replaces the browser's)".

    Attack: a "stay signed in" endpoint re-issues the signed-in user's
    session with `create_session(current_session.user_id, ...)` +
    `set_session_cookie()`. Reviewed against the earlier wording, which did
    not carve out create_session(): each hand-over starts a new clock. As
    documented now: each new session has its own clock, which the absolute
    timeout still ends, and the browser keeps exactly one stored session.
    """
    app = make_app(
        backend,
        clock,
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=2),
        KITSESSION_IDLE_TIMEOUT=timedelta(hours=1),
    )

    @app.post("/keep-me")
    def keep_me() -> Response:
        data = {k: v for k, v in session.items()}
        fresh = create_session(current_session.user_id, data)
        return set_session_cookie(jsonify(ok=True), fresh)

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    clock.advance(minutes=30)
    assert client.post("/keep-me").status_code == 200
    handed = info(client)
    assert handed["user_id"] == uid
    assert len(rows_of(backend, uid)) == 1
    # The new session's own absolute timeout still ends it.
    for _ in range(3):
        clock.advance(minutes=45)
        info(client)
    assert info(client)["user_id"] is None


@FOUR
def test_confirm_login_of_an_unfresh_same_user_login_keeps_created_at(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "Freshness comes only from real authentication ...
    `confirm_login()`"; "A re-login of that user ... `refresh_authentication()`
    ... keep it [the absolute clock]"; "A login that Flask-Login marks not
    fresh ... leaves it as it was for the same user." Held:
    `login_user(fresh=False)` of the user already signed in keeps their
    `authenticated_at` and `created_at`; `fresh_login_required` refuses it
    (Flask-Login's `_fresh` is False); `confirm_login()` then makes it fresh
    under a new token, with `created_at` kept.
    """
    app = make_app(backend, clock)

    @app.post("/confirm")
    def confirm() -> str:
        confirm_login()
        return "ok"

    @app.get("/sensitive")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def sensitive() -> str:
        return "ok"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    client.post(f"/fl-login/{uid}")
    first = info(client)
    clock.advance(minutes=20)
    client.post(f"/fl-login/{uid}?fresh=0")
    second = info(client)
    assert second["created_at"] == first["created_at"]
    assert second["authenticated_at"] == first["authenticated_at"]
    assert client.get("/sensitive").status_code == 401
    old = cookie_of(client)
    assert old is not None
    client.post("/confirm")
    assert cookie_of(client) != old
    third = info(client)
    assert third["created_at"] == first["created_at"]
    assert third["authenticated_at"] != first["authenticated_at"]
    assert client.get("/sensitive").status_code == 200


@FOUR
def test_a_relogin_with_no_carry_over_keeps_the_clock_and_drops_unwritten_data(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "When the session starts over, only what the request
    itself wrote follows it, plus the keys of `KITSESSION_CARRY_OVER_KEYS`
    ... when the session was anonymous or already this user's"; the
    absolute clock: "A re-login of that user ... keep[s] it". Held, with
    `session.update()` in the login view and carry-over ["cart"]: the
    update's keys and the cart follow, the rest does not, `created_at` stays.
    """
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS=["cart"])

    @app.post("/login-update")
    @with_new_session
    def login_update() -> str:
        session.update(user_id=int(request.form["uid"]), theme="dark")
        return "in"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    client.post("/set", data={"cart": "apples"})
    client.post("/login-update", data={"uid": str(uid)})
    first = info(client)
    client.post("/set", data={"draft": "unsent", "cart": "pears"})
    clock.advance(minutes=5)
    old = cookie_of(client)
    client.post("/login-update", data={"uid": str(uid)})
    assert cookie_of(client) != old
    second = info(client)
    assert second["data"] == {"cart": "pears", "theme": "dark", "user_id": uid}
    assert second["created_at"] == first["created_at"]
    assert len(rows_of(backend, uid)) == 1


# -- 9. Key rotation -------------------------------------------------------------


@FOUR
def test_an_old_key_cookie_switching_users_gets_a_current_key_cookie(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "The token changes whenever the linked user changes
    ... The old cookie is dead from then on"; §5: a cookie signed with an old
    key is signed again with the current one. Held: a browser whose cookie is
    signed with a key of SECRET_KEY_FALLBACKS switches account with
    logout_user() + login_user(); the new cookie verifies with the current
    key alone, the old one is dead, and one session is stored.
    """
    old_key = "the previous secret key of this app, 2025 edition"
    before = make_app(backend, clock, SECRET_KEY=old_key)
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = before.test_client()
    old = login(client, ada)

    app = make_app(backend, clock, SECRET_KEY_FALLBACKS=[old_key])

    @app.post("/switch/<int:uid>")
    def switch(uid: int) -> str:
        logout_user()
        login_user(Member(uid))
        return "switched"

    browser = with_cookie(app, old)
    assert browser.post(f"/switch/{bob}").status_code == 200
    new = cookie_of(browser)
    assert new is not None and new != old
    current_only = make_app(backend, clock)
    assert info(with_cookie(current_only, new))["user_id"] == bob
    assert info(with_cookie(app, old))["user_id"] is None
    assert len(backend.rows()) == 1


# -- 10. Responses that fail -----------------------------------------------------


@FOUR
def test_a_logout_view_answering_503_itself_deletes_nothing(backend: Backend, clock: Clock) -> None:
    """security.md §6: "A request that ends in a 5xx (an exception, the
    app's own 500 page, a 503) keeps none of its session changes"; §0 "No
    response expires the session cookie unless its request ended or emptied
    the session." Held: a `@with_delete_session` view that flashes and
    returns its own 503 (the audit log is down) keeps the session and its
    cookie; the same logout answering 200 later ends it.
    """
    app = make_app(backend, clock)
    audit_down = {"value": True}

    @app.post("/audited-logout")
    @with_delete_session
    def audited_logout() -> t.Any:
        flash("bye")
        if audit_down["value"]:
            return "audit log unavailable", 503
        return "out"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    old = login(client, uid)
    response = client.post("/audited-logout")
    assert response.status_code == 503
    assert session_set_cookies(response) == []
    assert info(client)["user_id"] == uid
    assert cookie_of(client) == old
    audit_down["value"] = False
    assert client.post("/audited-logout").status_code == 200
    assert info(with_cookie(app, old))["user_id"] is None
    assert rows_of(backend, uid) == []
