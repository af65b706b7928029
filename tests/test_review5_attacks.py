"""Review 5: attacks on the promises that changed last (README.md,
docs/security.md): hand-overs with create_session() + set_session_cookie(),
"all but this one", cookies re-sent only once the store confirms them, the
key written naming the user, nobody's sessions, users deleted through the
ORM, and data nested too deeply.

Each test asserts the PROMISED behaviour, and its docstring quotes the
promise and says what the attack does. A test that fails is a broken
promise; a test that passes is a promise that held. Only this file is the
reviewer's work; fixtures come from tests/conftest.py and tests/support/.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta
from datetime import timezone

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import jsonify
from flask import session
from flask.testing import FlaskClient
from flask_login import AnonymousUserMixin
from flask_login import current_user
from flask_login import login_user
from flask_login import LoginManager
from flask_login import logout_user
from flask_login import UserMixin
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from werkzeug.wrappers import Response

from flask_kitsession import create_session
from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import SessionDataError
from flask_kitsession import set_session
from flask_kitsession import set_session_cookie
from flask_kitsession import with_new_session

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import LoginApp
from .support.apps import SECRET_KEY
from .support.backends import Backend

COOKIE = "session"
#: The backends the lifecycle runs on (MariaDB adds nothing to the lifecycle
#: that PostgreSQL does not show, and the machine is busy).
FOUR = pytest.mark.parametrize(
    "backend", ["memory", "sqlite", "postgresql", "redis"], indirect=True
)
#: Where what is stored is at stake: every backend.
EVERY = pytest.mark.parametrize(
    "backend", ["memory", "sqlite", "postgresql", "mariadb", "redis"], indirect=True
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
        )

    @app.post("/fl-login/<int:uid>")
    def fl_login(uid: int) -> str:
        login_user(Member(uid))
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


def nested_lists(depth: int) -> t.Any:
    """A value nesting ``depth`` JSON arrays."""
    value: t.Any = 0
    for _ in range(depth):
        value = [value]
    return value


# -- 1. The key written names the user: set_session() -----------------------------


@FOUR
def test_set_session_never_stores_a_user_key_naming_another_user(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0 "link": "The key written names the user (user keys
    naming anyone else are dropped), so the session's link and Flask-Login's
    `current_user` never name two different users."

    Attack: an admin tool restores a session's data with `set_session()`
    (outside any request). The data names Ada first under `user_id` (what
    set_session checks: the first of KITSESSION_USER_ID_KEYS) and Bob under
    Flask-Login's `_user_id`. Seen: set_session() accepts it and stores both
    keys as they are (it writes the dict directly, around the lifecycle); the
    next request's session is linked to Ada while Flask-Login's current_user
    is Bob.
    """
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    client.post(f"/fl-login/{ada}")
    assert info(client)["login_user"] == str(ada)
    with app.app_context():
        (stored,) = get_sessions_for_user(ada)
        try:
            set_session(stored, {"user_id": ada, "_user_id": str(bob), "note": "restored"})
        except ValueError:
            pass  # refusing data that names two users keeps the promise too
    seen = info(client)
    assert seen["login_user"] in (None, str(seen["user_id"])), (
        f"the session is linked to {seen['user_id']!r}, Flask-Login's current_user"
        f" is {seen['login_user']!r}"
    )


@FOUR
def test_a_write_naming_two_users_at_once_links_one_and_flask_login_agrees(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0 "link": "The key written names the user (user keys
    naming anyone else are dropped)". Attack: one `session.update()` writes
    `user_id` of Ada and Flask-Login's `_user_id` of Bob in the same call, on
    an anonymous session. Whichever it links, Flask-Login must see the same
    user (or nobody).
    """
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")

    @app.post("/both")
    @with_new_session
    def both() -> str:
        session.update({"_user_id": str(bob), "user_id": ada})
        return "ok"

    client = app.test_client()
    client.post("/set", data={"cart": "3 apples"})
    assert client.post("/both").status_code == 200
    seen = info(client)
    assert seen["user_id"] in (ada, bob)
    assert seen["login_user"] in (None, str(seen["user_id"])), seen


# -- 2. Data nested too deeply: refused where it is set --------------------------


@EVERY
@pytest.mark.parametrize(
    ("key", "depth"),
    [
        pytest.param("a\x00b", 29, id="key-with-NUL"),
        pytest.param(" t", 30, id="only-key-named-like-a-tag"),
    ],
)
def test_deep_data_under_an_escaped_top_level_key_is_refused_where_it_is_set(
    backend: Backend, clock: Clock, key: str, depth: int
) -> None:
    """security.md §6: "refused where the app sets it, with SessionDataError
    ... Refused: ... data nested more than 31 levels deep as stored JSON
    (MariaDB's limit, applied on every backend)". session-data.md: keys with
    NUL and tag-named keys are encoded (the top-level object is escaped like
    any other).

    Attack: the value is checked as if the top-level object added one level,
    but a top-level key with a NUL (a form field's name, say) makes the
    stored JSON `{" kk": [[key, value]]}` (two more levels), and a session
    whose only key is named like a tag is stored as `{" di": {" t__": value}}`
    (one more). Seen: `session[key] = value` is accepted, and the save then
    raises SessionDataError after the view returned: a 500, not an error
    where the value was set.
    """
    app = make_app(backend, clock, PROPAGATE_EXCEPTIONS=False)

    @app.post("/deep")
    def deep() -> str:
        try:
            session[key] = nested_lists(depth)
        except SessionDataError:
            return "refused"
        return "accepted"

    client = app.test_client()
    response = client.post("/deep")
    assert response.status_code == 200, (
        f"accepted where set, then refused at the save: {response.status_code}"
    )
    if response.text == "accepted":
        # Stored then: it must read back.
        with client.session_transaction() as s:
            assert dict(s) == {key: nested_lists(depth)}


@EVERY
def test_deep_data_set_through_create_session_is_refused_there(
    backend: Backend, clock: Clock
) -> None:
    """security.md §6 (as above), for `create_session(data=...)`. Held if
    create_session() raises SessionDataError (it stores at once), and nothing
    is stored.
    """
    app = make_app(backend, clock)
    with app.test_request_context():
        with pytest.raises(SessionDataError):
            create_session(data={"x": nested_lists(31)})
    assert backend.rows() == []


@pytest.mark.parametrize("backend", ["memory"], indirect=True)
def test_a_refused_datetime_does_not_quote_its_zone_name(backend: Backend, clock: Clock) -> None:
    """security.md §6: refused "with SessionDataError naming the path to it
    and why, never its value"; serialization: "Error and log messages name
    keys and types, never values".

    Attack: a datetime with a named fixed offset (`timezone(offset, name)`),
    whose name is the app's data (a customer's label). Seen: the message
    quotes the tzinfo's repr, name included.
    """
    app = make_app(backend, clock)
    from datetime import datetime

    secret = "Customer 4711 private label"
    value = datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2), secret))
    with app.test_request_context():
        try:
            session["when"] = value
        except SessionDataError as e:
            assert secret not in str(e), str(e)
        else:
            pytest.fail("a named offset is read back as a bare offset: it must be refused")


# -- 3. Hand-overs --------------------------------------------------------------


@FOUR
def test_a_hand_over_then_sign_out_others_in_a_failed_request_keeps_the_browser(
    backend: Backend, clock: Clock
) -> None:
    """CHANGES/security.md: "`set_session_cookie()` deletes the browser's
    previous session when the request's session is saved, not at once: a
    request that fails keeps it and deletes the session it handed over";
    `remove_all_sessions_for_user(user, current_session)` keeps the current
    session "even when the same request ... has handed it over".

    Attack: a magic-link view for the user already signed in on this browser
    hands over a new session, signs out the other devices (the usual
    "signed in by link: sign out elsewhere" box), then fails (a 500: the
    mailer). The browser never gets the new cookie, so it must keep the
    session it had. Seen: the sign-out counted the browser's own session
    among "the others" and deleted it at once; the failed request then
    deleted the handed one too: the browser is signed out.
    """
    app = make_app(backend, clock, PROPAGATE_EXCEPTIONS=False)

    @app.post("/magic/<int:uid>")
    def magic(uid: int) -> Response:
        response = jsonify(ok=True)
        set_session_cookie(response, create_session(uid))
        remove_all_sessions_for_user(uid, current_session)
        raise RuntimeError("the mailer failed")

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    login(client, uid)
    assert client.post(f"/magic/{uid}").status_code == 500
    assert info(client)["user_id"] == uid, "a failed request signed the browser out"
    assert len(rows_of(backend, uid)) == 1


@FOUR
def test_two_hand_overs_then_a_write_leave_one_session_with_the_write(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0 "One browser, one stored session": "`create_session()` +
    `set_session_cookie()` in a view hands the browser the new session and
    deletes the one it had." Held if two hand-overs in one request (a view
    that changed its mind) leave exactly the last one, holding what the view
    wrote after it, and every earlier cookie is dead.
    """
    app = make_app(backend, clock)

    @app.post("/twice/<int:a>/<int:b>")
    def twice(a: int, b: int) -> Response:
        response = jsonify(ok=True)
        set_session_cookie(response, create_session(a))
        set_session_cookie(response, create_session(b))
        session["note"] = "after both"
        return response

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    old = login(client, ada)
    assert client.post(f"/twice/{ada}/{bob}").status_code == 200
    seen = info(client)
    assert seen["user_id"] == bob
    assert seen["data"] == {"note": "after both", "user_id": bob}
    assert info(with_cookie(app, old))["user_id"] is None
    assert len(backend.rows()) == 1


@FOUR
def test_a_hand_over_then_regenerate_gives_the_browser_the_new_token_only(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0 "rotate": `regenerate()`; "One browser, one stored
    session". Held if a hand-over followed by `regenerate()` in the same
    request leaves one session, under a token neither the browser's old
    cookie nor the handed cookie names.
    """
    app = make_app(backend, clock)
    handed: dict[str, str] = {}

    @app.post("/hand-and-rotate/<int:uid>")
    def hand_and_rotate(uid: int) -> Response:
        response = jsonify(ok=True)
        set_session_cookie(response, create_session(uid))
        handed["cookie"] = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        regenerate()
        return response

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    old = login(client, uid)
    assert client.post(f"/hand-and-rotate/{uid}").status_code == 200
    assert info(client)["user_id"] == uid
    assert info(with_cookie(app, old))["user_id"] is None
    assert info(with_cookie(app, handed["cookie"]))["user_id"] is None
    assert len(rows_of(backend, uid)) == 1


@FOUR
def test_a_hand_over_then_logout_user_then_login_user_of_another(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "end: ... `logout_user()` ... what the request ...
    writes afterwards (a flash, another login) goes into a new session"; "One
    browser, one stored session". Held if a hand-over, then Flask-Login's
    logout and a login of a third user in the same request leave one session,
    the third user's, and neither earlier cookie works.
    """
    app = make_app(backend, clock)
    handed: dict[str, str] = {}

    @app.post("/mixed/<int:a>/<int:b>")
    def mixed(a: int, b: int) -> Response:
        response = jsonify(ok=True)
        set_session_cookie(response, create_session(a))
        handed["cookie"] = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        logout_user()
        login_user(Member(b))
        return response

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    cy = backend.add_user("cy@example.com")
    client = app.test_client()
    old = login(client, ada)
    assert client.post(f"/mixed/{bob}/{cy}").status_code == 200
    seen = info(client)
    assert seen["user_id"] == cy and seen["login_user"] == str(cy)
    assert info(with_cookie(app, old))["user_id"] is None
    assert info(with_cookie(app, handed["cookie"]))["user_id"] is None
    assert len(backend.rows()) == 1


@FOUR
def test_credentials_changed_after_a_hand_over_keeps_the_handed_session(
    backend: Backend, clock: Clock
) -> None:
    """CHANGES: "`remove_all_sessions_for_user(user, current_session)` and
    `credentials_changed()` keep the current session even when the request
    renames it"; the brief's "or has handed it over". Held if a password
    reset by link (hand-over, then credentials_changed()) leaves the browser
    signed in on one session and every other device out.
    """
    app = make_app(backend, clock)

    @app.post("/reset/<int:uid>")
    def reset(uid: int) -> Response:
        response = jsonify(ok=True)
        set_session_cookie(response, create_session(uid))
        credentials_changed()
        return response

    uid = backend.add_user("a@example.com")
    other = app.test_client()
    login(other, uid)
    client = app.test_client()
    login(client, uid)
    assert client.post(f"/reset/{uid}").status_code == 200
    assert info(client)["user_id"] == uid
    assert info(other)["user_id"] is None
    assert len(rows_of(backend, uid)) == 1


# -- 4. "All but this one" -------------------------------------------------------


@FOUR
def test_sign_out_others_keeping_the_id_read_before_a_relogin(
    backend: Backend, clock: Clock
) -> None:
    """CHANGES: "`remove_all_sessions_for_user(user, current_session)` ...
    keep the current session even when the request renames it (a re-login)".
    Held if the session to keep is given as its id (`current_session.id`,
    read before the re-login, as a devices page posts it) and the re-login
    is Flask-Login's.
    """
    app = make_app(backend, clock)

    @app.post("/relogin-keep-id/<int:uid>")
    def relogin_keep_id(uid: int) -> str:
        kept = current_session.id
        login_user(Member(uid))
        return str(remove_all_sessions_for_user(uid, kept))

    uid = backend.add_user("a@example.com")
    other = app.test_client()
    login(other, uid)
    client = app.test_client()
    client.post(f"/fl-login/{uid}")
    assert client.post(f"/relogin-keep-id/{uid}").text == "1"
    assert info(client)["user_id"] == uid
    assert info(other)["user_id"] is None
    assert len(rows_of(backend, uid)) == 1


@FOUR
def test_sign_out_others_with_current_user_after_regenerate_keeps_this_device(
    backend: Backend, clock: Clock
) -> None:
    """README: `remove_all_sessions_for_user(current_session.user_id,
    current_session)` signs out the other devices; CHANGES: it keeps the
    current session "even when the request renames it". Held if the user is
    given as Flask-Login's `current_user` and `regenerate()` ran first.
    """
    app = make_app(backend, clock)

    @app.post("/rotate-and-sign-out")
    def rotate_and_sign_out() -> str:
        regenerate()
        return str(remove_all_sessions_for_user(current_user, current_session))

    uid = backend.add_user("a@example.com")
    other = app.test_client()
    login(other, uid)
    client = app.test_client()
    client.post(f"/fl-login/{uid}")
    old = cookie_of(client)
    assert client.post("/rotate-and-sign-out").text == "1"
    assert info(client)["user_id"] == uid
    assert cookie_of(client) != old
    assert info(other)["user_id"] is None


# -- 5. Cookies re-sent only once the store confirms them --------------------------


@FOUR
def test_a_permanent_cookie_is_resent_only_when_its_expiry_slides_with_vary(
    backend: Backend, clock: Clock
) -> None:
    """flask-conformance.md: "kitsession re-sends a permanent session's cookie
    when its expiry slides, once per `KITSESSION_TOUCH_INTERVAL`, after the
    touch has found the session still stored ... Responses of a permanent
    session still carry `Vary: Cookie`." Held if reads inside the interval
    send no cookie (with Vary), the first read after it sends the cookie
    with the new expiry, and nothing is re-sent once the session is revoked.
    """
    app = make_app(backend, clock, PERMANENT_SESSION_LIFETIME=timedelta(hours=1))

    @app.post("/remember/<int:uid>")
    @with_new_session
    def remember(uid: int) -> str:
        session.permanent = True
        session["user_id"] = uid
        return "in"

    @app.get("/quiet")
    def quiet() -> str:
        return "no session access"

    uid = backend.add_user("a@example.com")
    client = app.test_client()
    client.post(f"/remember/{uid}")
    clock.advance(seconds=10)
    response = client.get("/quiet")
    assert session_set_cookies(response) == []
    assert "Cookie" in response.headers.get("Vary", "")
    clock.advance(minutes=5)
    response = client.get("/quiet")
    (header,) = session_set_cookies(response)
    assert "Expires=" in header
    with app.app_context():
        (stored,) = get_sessions_for_user(uid)
        assert stored.expires_at is not None
        assert stored.expires_at > clock.now + timedelta(minutes=59)
    cookie = cookie_of(client)
    with app.app_context():
        remove_all_sessions_for_user(uid)
    clock.advance(minutes=5)
    response = with_cookie(app, cookie).get("/quiet")
    assert session_set_cookies(response) == []


@FOUR
def test_an_old_key_cookie_is_touched_once_and_signed_again(backend: Backend, clock: Clock) -> None:
    """security.md §5: "a cookie that arrives signed with an old key is signed
    again with the current one, in the same response ... the session is
    touched (one `UPDATE`, once per visitor)". Held if the first read with an
    old-key cookie gets a cookie signed with the current key (no fallback
    needed to read it) and one write, and the next read none.
    """
    old_key = "the previous secret key of this app, 2025 edition"
    before = make_app(backend, clock, SECRET_KEY=old_key)
    uid = backend.add_user("a@example.com")
    client = before.test_client()
    old = login(client, uid)
    app = make_app(backend, clock, SECRET_KEY_FALLBACKS=[old_key])
    browser = with_cookie(app, old)
    with backend.operations() as ops:
        first = browser.get("/plain")
    assert first.status_code == 200
    (header,) = session_set_cookies(first)
    assert len(backend.writes(ops)) == 1, ops
    new = header.split(";")[0].split("=", 1)[1]
    assert new != old
    current_only = make_app(backend, clock)
    assert info(with_cookie(current_only, new))["user_id"] == uid
    with backend.operations() as ops:
        second = browser.get("/plain")
    assert session_set_cookies(second) == []
    assert backend.writes(ops) == []


# -- 6. Nobody has sessions -------------------------------------------------------


@FOUR
def test_nobody_has_sessions_even_as_a_user_object_whose_id_is_none(
    backend: Backend, clock: Clock
) -> None:
    """security.md §8: "`get_sessions_for_user()` of `None` or of
    Flask-Login's anonymous `current_user` lists none (never the anonymous
    visitors' sessions), and `remove_all_sessions_for_user()` of them signs
    out nobody and returns 0". Held for an anonymous user object of the
    app's own (AnonymousUserMixin subclass), with anonymous sessions stored.
    """
    app = make_app(backend, clock)

    class Guest(AnonymousUserMixin):  # type: ignore[misc]
        pass

    visitor = app.test_client()
    visitor.post("/set", data={"cart": "3 apples"})
    assert len(backend.rows()) == 1
    with app.test_request_context():
        assert get_sessions_for_user(Guest()) == []
        assert get_sessions_for_user(None, include_expired=True) == []
        assert remove_all_sessions_for_user(Guest(), current_session) == 0
        assert remove_all_sessions_for_user(None) == 0
    assert len(backend.rows()) == 1
    assert visitor.get("/get").get_json() == {"cart": "3 apples"}


# -- 7. Users deleted through the ORM ---------------------------------------------


def test_a_user_deleted_and_recreated_in_one_commit_inherits_no_session(
    login_app: LoginApp,
) -> None:
    """security.md §8: "Deleting a user signs out their sessions, and a later
    user given the same id (SQLite reuses the highest id) inherits none. |
    Through the ORM: the sessions are deleted in the flush that deletes the
    user (a `before_delete` listener on the user model). Around it: `ON
    DELETE CASCADE`."

    Attack: an admin "reset account" deletes a user through the ORM and adds
    a new user with the same id (here a string key, as the app's user model
    has) in the same commit. SQLAlchemy turns that delete + insert into one
    UPDATE of the row (its "row switch"): no before_delete, no DELETE for the
    foreign key to cascade. Seen: the old user's cookie signs in as the new
    user, on every SQL backend.
    """
    app = login_app.app
    login_app.add_user("u-1", "old@example.com")
    client = app.test_client()
    assert client.post("/login/u-1").text == "in"
    assert client.get("/profile").status_code == 200
    with app.app_context():
        db = login_app.db
        db.session.delete(db.session.get(login_app.user_model, "u-1"))
        db.session.add(
            login_app.user_model(id="u-1", email="new@example.com", name="new", password_hash="y")
        )
        db.session.commit()
    response = client.get("/profile")
    assert response.status_code == 401, f"the old cookie signed in as: {response.text}"


@pytest.mark.parametrize("kind", ["sqlite"])
def test_a_subclass_user_deleted_through_the_orm_is_signed_out_on_sqlite(
    kind: str, tmp_path: t.Any, clock: Clock
) -> None:
    """security.md §8: "Deleting a user signs out their sessions, and a later
    user given the same id (SQLite reuses the highest id) inherits none. |
    Through the ORM: the sessions are deleted in the flush that deletes the
    user (a `before_delete` listener on the user model)."

    Attack: the user model has single-table inheritance (an `Admin`
    subclass, polymorphic). Flask-SQLAlchemy's SQLite engine, foreign keys
    off. Delete the newest user, an admin, through the ORM; register the
    next user: SQLite gives them the same id. Seen: the listener was
    registered on the base mapper only (mapper events do not propagate to
    subclasses without `propagate=True`), so the admin's sessions stayed,
    and the admin's cookie signs in as the new user.
    """
    from flask_login import login_required
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=f"{kind}:///{tmp_path / 'users.sqlite3'}",
    )
    db = SQLAlchemy(app)

    class Account(UserMixin, db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "accounts"
        id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(255))
        kind: Mapped[str] = mapped_column(sa.String(20))
        __mapper_args__ = {"polymorphic_on": "kind", "polymorphic_identity": "user"}

    class Admin(Account):
        __mapper_args__ = {"polymorphic_identity": "admin"}

    login_manager = LoginManager(app)
    kitsession = KitSession(app, db=db, user_model=Account, clock=clock)
    kitsession.init_login_manager(login_manager)

    @app.post("/login/<int:uid>")
    def fl_login(uid: int) -> str:
        login_user(db.session.get(Account, uid))
        return "in"

    @app.get("/whoami")
    @login_required
    def whoami() -> str:
        return str(current_user.email)

    try:
        with app.app_context():
            db.create_all()
            db.session.add(Account(email="first@example.com"))
            db.session.add(Admin(email="admin@example.com"))
            db.session.commit()
            admin_id = db.session.execute(sa.select(Admin.id)).scalar_one()
        client = app.test_client()
        assert client.post(f"/login/{admin_id}").text == "in"
        assert client.get("/whoami").text == "admin@example.com"
        with app.app_context():
            db.session.delete(db.session.get(Account, admin_id))
            db.session.commit()
            newcomer = Account(email="newcomer@example.com")
            db.session.add(newcomer)
            db.session.commit()
            assert newcomer.id == admin_id, "SQLite did not reuse the id"
        response = client.get("/whoami")
        assert response.status_code == 401, f"the admin's cookie signed in as {response.text}"
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()
