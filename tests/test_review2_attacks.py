"""Review 2: attacks on the promises of README.md and docs/security.md.

Each test asserts the PROMISED behaviour; its docstring quotes the promise
(file and section). Tests that fail are broken promises; tests that pass are
promises that held under the attack. Only this file is the reviewer's work;
fixtures come from tests/conftest.py and tests/support/.
"""

from __future__ import annotations

import enum
import hashlib
import typing as t
from collections import namedtuple
from collections import OrderedDict
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
import sqlalchemy as sa
from flask import abort
from flask import flash
from flask import Flask
from flask import get_flashed_messages
from flask import jsonify
from flask import request
from flask import session
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_kitsession import create_session
from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import fresh_login_required
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import refresh_authentication
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import remove_session
from flask_kitsession import SessionDataError
from flask_kitsession import set_session_cookie
from flask_kitsession import UnknownUserError
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend

COOKIE = "session"


# -- helpers -------------------------------------------------------------------


def make_app(backend: Backend, clock: Clock, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
    app.config.update(config)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)

    @app.get("/info")
    def info() -> t.Any:
        s = current_session
        return jsonify(
            user_id=s.user_id,
            data=dict(session),
            created_at=s.created_at.isoformat() if s.created_at else None,
            authenticated_at=s.authenticated_at.isoformat() if s.authenticated_at else None,
            expires_at=s.expires_at.isoformat() if s.expires_at else None,
            new=s.new,
        )

    return app


def cookie(client: t.Any) -> str | None:
    c = client.get_cookie(COOKIE)
    return None if c is None else c.value


def set_cookie_headers(response: t.Any) -> list[str]:
    return [v for v in response.headers.getlist("Set-Cookie") if v.startswith(COOKIE + "=")]


def login(client: t.Any, user_id: t.Any) -> t.Any:
    response = client.post("/login", data={"user_id": str(user_id)})
    assert response.status_code == 200, response.data
    return response


def info(client: t.Any) -> dict[str, t.Any]:
    response = client.get("/info")
    assert response.status_code == 200
    return t.cast(dict[str, t.Any], response.get_json())


@pytest.fixture
def kapp(backend: Backend, clock: Clock) -> Flask:
    return make_app(backend, clock)


# -- 0. lifecycle: link and start over -----------------------------------------


@pytest.mark.parametrize("how", ["pop", "del", "popitem_clear", "clear"])
def test_unlinking_in_a_plain_view_carries_nothing_of_the_user_into_the_anonymous_session(
    backend: Backend, clock: Clock, how: str
) -> None:
    """security.md §0, invariant 'Nothing crosses from one user to another':
    "Nothing of a signed-in session follows it into an anonymous one, from where
    a later login could carry it into another account." and lifecycle.md: link
    is "writing or removing one of KITSESSION_USER_ID_KEYS ... by any path";
    "When the user the data names changes (... Ada → nobody), the session
    starts over" with a new token.
    Attack: a plain view that unlinks by session.pop / del / clear.
    """
    app = make_app(backend, clock)

    @app.post("/unlink")
    def unlink() -> str:
        if how == "pop":
            session.pop("user_id")
        elif how == "del":
            del session["user_id"]
        elif how == "clear":
            session.clear()
        else:
            for k in list(session):
                if k != "user_id":
                    continue
                session.pop(k)
        session["after"] = "written by this request"
        return "ok"

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    client.post("/set", data={"secret": "ada's secret"})
    before = cookie(client)
    assert before is not None
    assert client.post("/unlink").status_code == 200
    after = cookie(client)
    assert after != before, "the token must change when A -> none"
    data = info(client)["data"]
    assert "secret" not in data, data
    assert data.get("after") == "written by this request"
    assert info(client)["user_id"] is None
    # the old cookie is dead
    client.set_cookie(COOKIE, before)
    assert info(client)["user_id"] is None


@pytest.mark.parametrize("key", ["user_id", "_user_id", "userId", "id"])
@pytest.mark.parametrize("how", ["setitem", "update", "setdefault", "ior"])
def test_every_path_of_writing_a_user_key_changes_the_token(
    backend: Backend, clock: Clock, key: str, how: str
) -> None:
    """security.md §0, invariant 1: "The token changes whenever the linked user
    changes (none → A, A → B, A → none), by any path". Attack: update(),
    setdefault() and |= in a plain view, each default key.
    """
    app = make_app(backend, clock)

    @app.post("/link/<int:uid>")
    def link(uid: int) -> str:
        if how == "setitem":
            session[key] = uid
        elif how == "update":
            session.update({key: uid})
        elif how == "setdefault":
            session.setdefault(key, uid)
        else:
            s = t.cast(dict[str, t.Any], session)
            s |= {key: uid}
        return "ok"

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    client.post("/set", data={"cart": "1"})
    anon = cookie(client)
    assert anon is not None
    assert client.post(f"/link/{ada}").status_code == 200
    assert cookie(client) != anon
    assert info(client)["user_id"] == ada
    client.set_cookie(COOKIE, anon)
    assert info(client)["user_id"] is None


def test_writing_another_user_key_links_its_user_without_crossing(
    backend: Backend, clock: Clock
) -> None:
    """lifecycle.md 'Logging in': "Writing one of those keys is a login" (the
    key written names the user); security.md §0: "Nothing crosses from one
    user to another". Attack: a session of Ada then gets `id` = Bob's id (an
    app that did not remove `id` from the keys, e.g. an order id): Bob is
    linked under a new token, and nothing of Ada's follows.
    (Reviewed against the earlier rule, "the first key present names the
    user", under which Ada stayed linked with Bob's id in her data.)
    """
    app = make_app(backend, clock)

    @app.post("/put-id/<int:v>")
    def put_id(v: int) -> str:
        session["id"] = v
        return "ok"

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    login(client, ada)
    client.post("/set", data={"secret": "ada's"})
    before = cookie(client)
    # Writing a user key is a login: the key written names the user.
    assert client.post(f"/put-id/{bob}").status_code == 200
    now = info(client)
    assert now["user_id"] == bob and cookie(client) != before
    assert "secret" not in now["data"] and "user_id" not in now["data"], now


def test_carry_over_all_never_carries_into_another_account(backend: Backend, clock: Clock) -> None:
    """security.md §0: carry-over keys follow "when the session was anonymous or
    already this user's"; "Nothing crosses from one user to another."
    Attack: KITSESSION_CARRY_OVER_KEYS="*", Ada logged in, @with_new_session
    logs Bob in on the same browser.
    """
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    client.post("/set", data={"cart": "anon cart"})
    login(client, ada)
    assert info(client)["data"].get("cart") == "anon cart"
    client.post("/set", data={"secret": "ada's"})
    login(client, bob)
    data = info(client)
    assert data["user_id"] == bob
    assert "secret" not in data["data"] and "cart" not in data["data"], data


def test_switch_account_logout_then_login_carries_nothing_of_the_first_user(
    backend: Backend, clock: Clock
) -> None:
    """lifecycle.md 'Logging out': what the request writes after the end goes
    into a new session ("call login_user(other) after it (a 'switch account'
    view)"); security.md §0: "Nothing crosses from one user to another",
    even with KITSESSION_CARRY_OVER_KEYS="*".
    Attack: remove_session(current_session) then session['user_id']=bob in
    one @with_new_session view.
    """
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")

    @app.post("/switch/<int:uid>")
    @with_new_session
    def switch(uid: int) -> str:
        remove_session(current_session)
        session["user_id"] = uid
        return "ok"

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    login(client, ada)
    client.post("/set", data={"secret": "ada's"})
    ada_cookie = cookie(client)
    assert ada_cookie is not None
    assert client.post(f"/switch/{bob}").status_code == 200
    data = info(client)
    assert data["user_id"] == bob
    assert "secret" not in data["data"], data
    client.set_cookie(COOKIE, ada_cookie)
    assert info(client)["user_id"] is None
    assert len([r for r in backend.rows() if r["user_id"] == ada]) == 0


def test_a_failed_login_keeps_token_user_and_clocks_and_keeps_the_flash(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0, 'A failed login changes nothing but what it wrote.'"""
    app = make_app(backend, clock)

    @app.post("/bad-login")
    @with_new_session
    def bad_login() -> t.Any:
        flash("wrong password")
        return "no", 401

    @app.get("/flashes")
    def flashes() -> t.Any:
        return jsonify(get_flashed_messages())

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    before_cookie = cookie(client)
    before = info(client)
    clock.advance(minutes=5)
    assert client.post("/bad-login").status_code == 401
    assert cookie(client) == before_cookie
    after = info(client)
    assert after["user_id"] == ada
    assert after["created_at"] == before["created_at"]
    assert after["authenticated_at"] == before["authenticated_at"]
    assert client.get("/flashes").get_json() == ["wrong password"]


def test_a_login_view_that_raises_into_a_handled_4xx_leaves_the_session_as_it_was(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "A view that raises leaves the session as it was before
    the view." Attack: the exception is turned into a 400 by the app's own
    error handler (a 4xx keeps changes in general, §6), after the view had
    written the user key and some data.
    """
    app = make_app(backend, clock)

    class Oops(Exception):
        pass

    @app.errorhandler(Oops)
    def on_oops(e: Exception) -> t.Any:
        return "bad request", 400

    @app.post("/raising-login/<int:uid>")
    @with_new_session
    def raising_login(uid: int) -> str:
        session["user_id"] = uid
        session["half"] = "written"
        raise Oops()

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    client.post("/set", data={"cart": "x"})
    before = cookie(client)
    assert client.post(f"/raising-login/{ada}").status_code == 400
    assert cookie(client) == before
    data = info(client)
    assert data["user_id"] is None
    assert data["data"] == {"cart": "x"}


def test_a_delete_view_that_raises_into_a_handled_4xx_does_not_log_out(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0 'A view that raises leaves the session as it was before
    the view'; lifecycle.md: @with_delete_session ends the session "after the
    view returns". Attack: the view raises, the app turns it into a 409."""
    app = make_app(backend, clock)

    class Conflict(Exception):
        pass

    @app.errorhandler(Conflict)
    def on_conflict(e: Exception) -> t.Any:
        return "conflict", 409

    @app.post("/raising-logout")
    @with_delete_session
    def raising_logout() -> str:
        raise Conflict()

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    assert client.post("/raising-logout").status_code == 409
    assert info(client)["user_id"] == ada


def test_a_5xx_keeps_none_of_its_changes(backend: Backend, clock: Clock) -> None:
    """security.md §6: "A request that ends in a 5xx (an exception, the app's
    own 500 page, a 503) keeps none of its session changes". Attack: a login,
    a logout, a regenerate() and a data write, each answering 500/503 by
    returning a status (no exception)."""
    app = make_app(backend, clock)

    @app.post("/login-500/<int:uid>")
    @with_new_session
    def login_500(uid: int) -> t.Any:
        session["user_id"] = uid
        return "err", 500

    @app.post("/logout-503")
    @with_delete_session
    def logout_503() -> t.Any:
        return "err", 503

    @app.post("/regen-502")
    def regen_502() -> t.Any:
        regenerate()
        session["x"] = "y"
        return "err", 502

    @app.post("/abort-503")
    def abort_503() -> t.Any:
        session["z"] = "z"
        abort(503)

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    login(client, ada)
    c0 = cookie(client)
    assert client.post(f"/login-500/{bob}").status_code == 500
    assert client.post("/logout-503").status_code == 503
    assert client.post("/regen-502").status_code == 502
    assert client.post("/abort-503").status_code == 503
    assert cookie(client) == c0
    data = info(client)
    assert data["user_id"] == ada
    assert "x" not in data["data"] and "z" not in data["data"]


def test_a_logout_view_that_writes_nothing_leaves_no_session_and_no_cookie(
    backend: Backend, clock: Clock
) -> None:
    """lifecycle.md 'Logging out': "A logout view that writes nothing leaves no
    session and no cookie." and README: the old cookie is dead."""
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    old = cookie(client)
    assert old is not None
    assert client.post("/logout").status_code == 200
    assert cookie(client) is None
    assert backend.rows() == []
    client.set_cookie(COOKIE, old)
    assert info(client)["user_id"] is None
    # a write with the replayed cookie starts a new session, the old is not revived
    client.post("/set", data={"k": "v"})
    assert cookie(client) != old
    assert all(r["user_id"] is None for r in backend.rows())


def test_a_request_that_revokes_its_own_session_never_brings_it_back(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "A revoked session never comes back ... whatever the
    request does to the session, short of logging a user in." Attack: a view
    signs out every session of the user (its own included: no `keep`), then
    writes to the session, regenerates it, and marks it permanent."""
    app = make_app(backend, clock)

    @app.post("/nuke-all")
    def nuke_all() -> str:
        remove_all_sessions_for_user(current_session.user_id)
        session["after"] = 1
        regenerate()
        session.permanent = True
        return "ok"

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    old = cookie(client)
    assert old is not None
    assert client.post("/nuke-all").status_code == 200
    assert [r for r in backend.rows() if r["user_id"] == ada] == []
    assert info(client)["user_id"] is None
    client.set_cookie(COOKIE, old)
    assert info(client)["user_id"] is None


def test_a_save_of_a_session_revoked_in_flight_is_not_written(
    backend: Backend, clock: Clock
) -> None:
    """security.md §2: "once remove_all_sessions_for_user returns, no revoked
    session is alive. A save or touch that was in flight does not bring it
    back". Attack: the store deletes the session between the read and the save
    (the same as another device's sign-out-others running meanwhile), and the
    request then writes data and rotates the token."""
    app = make_app(backend, clock)

    @app.post("/in-flight")
    def in_flight() -> str:
        _ = session.get("user_id")  # read happened
        backend.store.delete_all_for_user(current_session.user_id)
        session["after"] = "x"
        if request.args.get("regen"):
            regenerate()
        if request.args.get("refresh"):
            refresh_authentication()
        return "ok"

    ada = backend.add_user("ada@example.com")
    for args in ("", "?regen=1", "?refresh=1"):
        client = app.test_client()
        login(client, ada)
        assert client.post("/in-flight" + args).status_code == 200
        assert [r for r in backend.rows() if r["user_id"] == ada] == [], args
        assert info(client)["user_id"] is None


def test_credentials_changed_signs_out_every_other_device_and_rotates(
    backend: Backend, clock: Clock
) -> None:
    """lifecycle.md 'New tokens without a new user': credentials_changed()
    "signs the user out of every other session and regenerates this one"."""
    app = make_app(backend, clock)

    @app.post("/password")
    def password() -> str:
        return str(credentials_changed())

    ada = backend.add_user("ada@example.com")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, ada)
    login(phone, ada)
    before = cookie(laptop)
    assert before is not None
    assert laptop.post("/password").data == b"1"
    assert cookie(laptop) != before
    assert info(laptop)["user_id"] == ada
    assert info(phone)["user_id"] is None
    laptop2 = app.test_client()
    laptop2.set_cookie(COOKIE, before)
    assert info(laptop2)["user_id"] is None
    assert len(backend.rows()) == 1


def test_sign_out_others_by_an_anonymous_visitor_touches_no_anonymous_session(
    backend: Backend, clock: Clock
) -> None:
    """session-data.md 'User ids': "Lookups by an id no user can have
    (load_user, delete_all_for_user, iterate) find nothing." Attack: the
    README's own /sign-out-others called by an anonymous visitor:
    remove_all_sessions_for_user(None, current_session) must not sign out other
    anonymous visitors (their carts)."""
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    shopper = app.test_client()
    shopper.post("/set", data={"cart": "3 apples"})
    user = app.test_client()
    login(user, ada)
    attacker = app.test_client()
    attacker.post("/set", data={"x": "1"})
    with app.test_request_context():
        try:
            count = remove_all_sessions_for_user(None)
        except ValueError:  # refused outright: also "finds nothing"
            count = 0
    assert count == 0
    assert info(shopper)["data"] == {"cart": "3 apples"}
    assert info(user)["user_id"] == ada


def test_listing_the_devices_of_nobody_lists_no_one(backend: Backend, clock: Clock) -> None:
    """session-data.md 'User ids': "Lookups by an id no user can have
    (load_user, delete_all_for_user, iterate) find nothing." Attack: a devices
    page for an anonymous visitor, get_sessions_for_user(None) (what
    Flask-Login's AnonymousUserMixin.get_id() returns), must not list every
    anonymous visitor's session (their data, IP addresses, user agents).
    Seen: it returns every anonymous session, with its data."""
    app = make_app(backend, clock)
    shopper = app.test_client()
    shopper.post("/set", data={"cart": "3 apples"}, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    other = app.test_client()
    other.post("/set", data={"x": "1"})
    leaked = get_sessions_for_user_in(app, None)
    assert [dict(s) for s in leaked] == []


def get_sessions_for_user_in(app: Flask, user_id: t.Any) -> list[t.Any]:
    with app.test_request_context():
        return get_sessions_for_user(user_id)


def test_string_ids_from_flask_login_find_the_users_sessions(
    backend: Backend, clock: Clock
) -> None:
    """session-data.md 'User ids': "Flask-Login keeps the user id as a string
    ... UserKeyType is the one place that converts them"; "Ids are converted
    once, where they come in." Attack: remove_all_sessions_for_user and
    get_sessions_for_user called with the text of an int id."""
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    a, b = app.test_client(), app.test_client()
    login(a, ada)
    login(b, ada)
    assert len(get_sessions_for_user_in(app, str(ada))) == 2
    with app.test_request_context():
        assert remove_all_sessions_for_user(str(ada)) == 2
    assert info(a)["user_id"] is None


# -- 1. hostile cookies ----------------------------------------------------------


def test_a_read_with_an_unverifiable_or_dead_cookie_leaves_it_alone(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "No response expires the session cookie unless its
    request ended or emptied the session. A cookie the app cannot verify ... is
    left alone by a request that writes nothing; so is a signed cookie whose
    session ended or was renamed meanwhile". Attack: reads (GET /info, /me,
    /plain, a 404) with a foreign cookie and with a dead one."""
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    dead = cookie(client)
    assert dead is not None
    client.post("/logout")
    foreign = "eyJ1c2VyX2lkIjoxfQ.Z3Kx0A.abcdefghijklmnopqrstuvwxyz0"
    for value in (dead, foreign):
        for path in ("/info", "/me", "/plain", "/get", "/nowhere"):
            c = app.test_client()
            c.set_cookie(COOKIE, value)
            response = c.get(path)
            assert response.status_code in (200, 404)
            assert set_cookie_headers(response) == [], (path, response.headers)
    assert backend.rows() == []


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    mutation=st.sampled_from(
        ["quote", "space", "pad", "dot2", "lower", "std_alphabet", "prefix", "suffix", "tab"]
    ),
    extra=st.text(alphabet="=._-+/ \"';,", max_size=4),
)
def test_mutated_cookies_give_that_session_or_a_fresh_one_never_500(
    kapp: Flask, backend: Backend, mutation: str, extra: str
) -> None:
    """security.md §1: "Whatever a client sends as its session cookie, it gets
    a 200 and either a fresh anonymous session or the session whose whole
    token it sent. Never a 500, never someone else's session." Attack:
    a valid cookie quoted, padded, with '..', spaces, other alphabets."""
    if not hasattr(test_mutated_cookies_give_that_session_or_a_fresh_one_never_500, "_u"):
        pass
    users = getattr(backend, "_review_users", None)
    if users is None:
        ada = backend.add_user("ada-m@example.com")
        bob = backend.add_user("bob-m@example.com")
        ca, cb = kapp.test_client(), kapp.test_client()
        login(ca, ada)
        login(cb, bob)
        users = (ada, cookie(ca), bob, cookie(cb))
        backend._review_users = users  # type: ignore[attr-defined]
    ada, ada_cookie, bob, bob_cookie = users
    assert ada_cookie
    token, sig = ada_cookie.split(".", 1)
    value = {
        "quote": f'"{ada_cookie}"',
        "space": f" {ada_cookie} ",
        "pad": f"{token}={extra}.{sig}",
        "dot2": f"{token}..{sig}",
        "lower": ada_cookie.lower(),
        "std_alphabet": ada_cookie.replace("-", "+").replace("_", "/"),
        "prefix": extra + ada_cookie,
        "suffix": ada_cookie + extra,
        "tab": f"{token}.\t{sig}",
    }[mutation]
    c = kapp.test_client()
    c.set_cookie(COOKIE, value)
    response = c.get("/info")
    assert response.status_code == 200
    assert response.get_json()["user_id"] in (None, ada)


def test_two_session_cookies_in_one_header_never_mix_users(kapp: Flask, backend: Backend) -> None:
    """security.md §1: "never someone else's session"; "the session whose whole
    token it sent". Attack: Cookie header with ada's and bob's cookies, and
    one of them split across two cookies."""
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    ca, cb = kapp.test_client(), kapp.test_client()
    login(ca, ada)
    login(cb, bob)
    a, b = cookie(ca), cookie(cb)
    assert a and b
    ta, sa_ = a.split(".", 1)
    tb, sb = b.split(".", 1)
    for header in (
        f"session={a}; session={b}",
        f"session={ta}.{sb}; session={tb}.{sa_}",
        f"session={ta}; session=.{sa_}",
        f"session={a[:-1]}; session={b}",
    ):
        c = kapp.test_client()
        response = c.get("/info", headers={"Cookie": header})
        assert response.status_code == 200
        uid = response.get_json()["user_id"]
        # the whole token of the first cookie Werkzeug reads, or nobody
        assert uid in (None, ada, bob)
        if uid == ada:
            assert f"session={a}" in header
        if uid == bob:
            assert f"session={b}" in header


# -- 5. secrets ---------------------------------------------------------------


def test_a_cookie_signed_with_a_fallback_key_is_resigned_even_on_a_read(
    backend: Backend, clock: Clock
) -> None:
    """security.md §5: "A cookie that arrives signed with an old key is signed
    again with the current one, in the same response." (configuration.md:
    same token, no store write). Attack: a plain GET of a page that never
    touches the session."""
    old_app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    client = old_app.test_client()
    login(client, ada)
    old_cookie = cookie(client)
    assert old_cookie is not None
    new_app = make_app(
        backend,
        clock,
        SECRET_KEY="a brand new key, long enough: 12345678",
        SECRET_KEY_FALLBACKS=[SECRET_KEY],
    )
    c = new_app.test_client()
    c.set_cookie(COOKIE, old_cookie)
    response = c.get("/plain")
    assert response.status_code == 200
    new_cookie = cookie(c)
    assert new_cookie is not None
    assert new_cookie != old_cookie
    assert new_cookie.split(".")[0] == old_cookie.split(".")[0]
    assert info(c)["user_id"] == ada
    # and after the old key is removed, the re-signed cookie keeps working
    newest = make_app(backend, clock, SECRET_KEY="a brand new key, long enough: 12345678")
    c2 = newest.test_client()
    c2.set_cookie(COOKIE, new_cookie)
    assert info(c2)["user_id"] == ada
    c3 = newest.test_client()
    c3.set_cookie(COOKIE, old_cookie)
    assert info(c3)["user_id"] is None


def test_only_the_sha256_of_the_token_is_stored(backend: Backend, clock: Clock) -> None:
    """security.md §5: "Only the SHA-256 of a token is stored." Attack: look at
    the rows after a login, a regenerate and a remember-less write."""
    app = make_app(backend, clock)

    @app.post("/regen")
    def regen() -> str:
        regenerate()
        return "ok"

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    client.post("/regen")
    client.post("/set", data={"k": "v"})
    signed = cookie(client)
    assert signed is not None
    token = signed.split(".")[0]
    rows = backend.rows()
    assert len(rows) == 1
    assert rows[0]["id"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(rows)


# -- Flask-Login + Flask-SQLAlchemy + Flask-WTF apps ---------------------------------


class FLApp(t.NamedTuple):
    app: Flask
    db: t.Any
    User: t.Any


def make_fl_app(
    url: str,
    clock: Clock,
    *,
    id_kind: str = "int",
    token_column: bool = False,
    **config: t.Any,
) -> FLApp:
    from flask_login import confirm_login
    from flask_login import current_user
    from flask_login import login_user
    from flask_login import LoginManager
    from flask_login import logout_user
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy
    from flask_wtf.csrf import generate_csrf
    from flask_wtf.csrf import validate_csrf
    from wtforms import ValidationError  # type: ignore[import-untyped]

    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True, SQLALCHEMY_DATABASE_URI=url, **config)
    db = SQLAlchemy(app)

    if id_kind == "int":

        class User(UserMixin, db.Model):  # type: ignore[name-defined, misc]
            __tablename__ = "r2_users"
            id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
            email: Mapped[str] = mapped_column(sa.String(255))
            token: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=True)

            if token_column:

                def get_id(self) -> str:
                    return str(self.token)

    else:

        class User(UserMixin, db.Model):  # type: ignore[name-defined, misc, no-redef]
            __tablename__ = "r2_users"
            id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
            email: Mapped[str] = mapped_column(sa.String(255))
            token: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=True)

    if token_column:
        app.config["KITSESSION_USER_ID_COLUMN"] = "token"
    login_manager = LoginManager(app)
    kit = KitSession(app, db=db, user_model=User, clock=clock)
    kit.init_login_manager(login_manager)

    def find(uid: str) -> t.Any:
        return db.session.get(User, int(uid) if id_kind == "int" else uid)

    @app.post("/login/<uid>")
    def do_login(uid: str) -> str:
        ok = login_user(
            find(uid),
            remember=request.args.get("remember") == "1",
            fresh=request.args.get("fresh") != "0",
        )
        return "in" if ok else "refused"

    @app.post("/logout")
    def do_logout() -> str:
        logout_user()
        if request.args.get("flash"):
            flash("signed out")
        return "out"

    @app.post("/switch/<uid>")
    def switch(uid: str) -> str:
        logout_user()
        login_user(find(uid))
        return "switched"

    @app.post("/confirm")
    def confirm() -> str:
        confirm_login()
        return "confirmed"

    @app.get("/fresh")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def fresh_page() -> str:
        return "fresh"

    @app.get("/whoami")
    def whoami() -> t.Any:
        s = current_session
        return jsonify(
            user=current_user.get_id() if current_user.is_authenticated else None,
            data=dict(session),
            created_at=s.created_at.isoformat() if s.created_at else None,
            authenticated_at=s.authenticated_at.isoformat() if s.authenticated_at else None,
        )

    @app.get("/csrf")
    def csrf() -> str:
        return t.cast(str, generate_csrf())

    @app.post("/csrf-check")
    def csrf_check() -> t.Any:
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            return "bad token", 400
        return "ok"

    @app.post("/set")
    def set_value() -> str:
        for k, v in request.form.items():
            session[k] = v
        return "set"

    @app.post("/sign-out-others")
    def sign_out_others() -> str:
        return str(remove_all_sessions_for_user(current_user, current_session))

    with app.app_context():
        db.create_all()
    return FLApp(app, db, User)


@pytest.fixture
def fl(empty_database_url: str, clock: Clock) -> t.Iterator[FLApp]:
    made = make_fl_app(empty_database_url, clock)
    yield made
    with made.app.app_context():
        made.db.drop_all()
        made.db.engine.dispose()


def add_fl_user(fl: FLApp, email: str, **kw: t.Any) -> t.Any:
    with fl.app.app_context():
        user = fl.User(email=email, **kw)
        fl.db.session.add(user)
        fl.db.session.commit()
        return user.id


def whoami(client: t.Any) -> dict[str, t.Any]:
    r = client.get("/whoami")
    assert r.status_code == 200, r.data
    return t.cast(dict[str, t.Any], r.get_json())


def test_csrf_token_never_passes_to_another_user_via_switch_account(fl: FLApp) -> None:
    """security.md §9: "The token never passes to another user (a login as
    someone else drops it, and the login's response then hands out a new one),
    and it ends with the session at logout." Attack: a 'switch account' view
    (logout_user() then login_user(bob), lifecycle.md) in Ada's session."""
    ada = add_fl_user(fl, "ada@example.com")
    bob = add_fl_user(fl, "bob@example.com")
    client = fl.app.test_client()
    assert client.post(f"/login/{ada}").data == b"in"
    ada_token = client.get("/csrf").data.decode()
    assert client.post("/csrf-check", data={"csrf_token": ada_token}).status_code == 200
    assert client.post(f"/switch/{bob}").data == b"switched"
    assert whoami(client)["user"] == str(bob)
    assert client.post("/csrf-check", data={"csrf_token": ada_token}).status_code == 400


def test_csrf_token_ends_with_the_session_at_logout_even_with_a_flash(fl: FLApp) -> None:
    """security.md §9: the token "ends with the session at logout".
    Attack: the logout view flashes after logout_user() (lifecycle.md: what it
    writes goes into a new, anonymous session)."""
    ada = add_fl_user(fl, "ada@example.com")
    client = fl.app.test_client()
    client.post(f"/login/{ada}")
    token = client.get("/csrf").data.decode()
    client.post("/logout?flash=1")
    assert whoami(client)["user"] is None
    assert client.post("/csrf-check", data={"csrf_token": token}).status_code == 400


def test_csrf_token_from_before_login_works_after_it_for_the_same_user(fl: FLApp) -> None:
    """security.md §9: "A JSON client's token, from before the login or from the
    login's response, works after it." """
    ada = add_fl_user(fl, "ada@example.com")
    client = fl.app.test_client()
    token = client.get("/csrf").data.decode()
    client.post(f"/login/{ada}")
    assert client.post("/csrf-check", data={"csrf_token": token}).status_code == 200


def test_login_user_fresh_false_and_remember_restore_are_not_fresh(fl: FLApp, clock: Clock) -> None:
    """lifecycle.md 'Freshness': "a login Flask-Login marks as not fresh, a
    remember-cookie restore or login_user(user, fresh=False), is not an
    authentication"; flask-login.md: "a remember-cookie login gets a new token
    too"; confirm_login() authenticates."""
    ada = add_fl_user(fl, "ada@example.com")
    client = fl.app.test_client()
    client.post(f"/login/{ada}?fresh=0")
    assert client.get("/fresh").status_code == 401
    client.post("/confirm")
    assert client.get("/fresh").status_code == 200
    clock.advance(minutes=11)
    assert client.get("/fresh").status_code == 401

    c2 = fl.app.test_client()
    c2.post(f"/login/{ada}?remember=1")
    assert c2.get("/fresh").status_code == 200
    old = cookie(c2)
    c2.delete_cookie(COOKIE)
    assert whoami(c2)["user"] == str(ada)
    assert cookie(c2) not in (None, old)
    assert c2.get("/fresh").status_code == 401


def test_clear_then_same_user_written_back_is_not_an_authentication(
    fl: FLApp, clock: Clock
) -> None:
    """security.md §0 'Freshness comes only from real authentication': "A view
    that removes the user key and writes the same user back (session.clear()
    then the old data, say) authenticates nobody." Also keeps created_at
    (absolute timeout invariant)."""
    ada = add_fl_user(fl, "ada@example.com")

    @fl.app.post("/reset")
    def reset() -> str:
        old = dict(session)
        session.clear()
        session.update(old)
        return "ok"

    client = fl.app.test_client()
    client.post(f"/login/{ada}?fresh=0")
    before = whoami(client)
    clock.advance(minutes=3)
    assert client.post("/reset").status_code == 200
    after = whoami(client)
    assert after["user"] == str(ada)
    assert after["authenticated_at"] == before["authenticated_at"]
    assert after["created_at"] == before["created_at"]
    assert client.get("/fresh").status_code == 401


def test_a_deleted_user_whose_id_is_reused_does_not_inherit_their_sessions(
    fl: FLApp, empty_database_url: str
) -> None:
    """security.md §8: "Deleting a user signs out their sessions." (ON DELETE
    CASCADE; "the JOIN where the database does not enforce it").
    Attack: Flask-SQLAlchemy's default SQLite engine (no PRAGMA foreign_keys),
    integer primary key without AUTOINCREMENT: delete the newest user through
    the ORM; the next registration gets the same id (SQLite reuses max(rowid)+1)
    and the deleted user's stolen/kept cookie must not sign into it."""
    add_fl_user(fl, "first@example.com")
    mallory = add_fl_user(fl, "mallory@example.com")
    client = fl.app.test_client()
    assert client.post(f"/login/{mallory}").data == b"in"
    with fl.app.app_context():
        fl.db.session.delete(fl.db.session.get(fl.User, mallory))
        fl.db.session.commit()
    victim = add_fl_user(fl, "victim@example.com")
    if victim != mallory:
        pytest.skip("this database does not reuse the id")
    assert whoami(client)["user"] is None


def test_changing_the_link_value_signs_out_even_if_the_old_value_comes_back(
    empty_database_url: str, clock: Clock
) -> None:
    """security.md §8: "Changing a user's link value ... signs out every session
    linked through the old value ... No such session ever authenticates again,
    even if the old value came back." Attack: KITSESSION_USER_ID_COLUMN
    ("token"), change it through the ORM, then back to the old value through
    the ORM, and also with a raw UPDATE."""
    fl = make_fl_app(empty_database_url, clock, token_column=True)
    try:
        ada = add_fl_user(fl, "ada@example.com", token="tok-old")
        client = fl.app.test_client()
        assert client.post(f"/login/{ada}").data == b"in"
        assert whoami(client)["user"] == "tok-old"
        kept = cookie(client)
        assert kept is not None
        with fl.app.app_context():
            u = fl.db.session.get(fl.User, ada)
            u.token = "tok-new"
            fl.db.session.commit()
            u = fl.db.session.get(fl.User, ada)
            u.token = "tok-old"
            fl.db.session.commit()
        c = fl.app.test_client()
        c.set_cookie(COOKIE, kept)
        assert whoami(c)["user"] is None
        # raw UPDATE around the ORM, then back: (not the SQLite no-FK caveat: a
        # read happens in between)
        c2 = fl.app.test_client()
        c2.post(f"/login/{ada}")
        kept2 = cookie(c2)
        assert kept2 is not None
        with fl.app.app_context():
            fl.db.session.execute(sa.text("UPDATE r2_users SET token = 'tok-x'"))
            fl.db.session.commit()
        c3 = fl.app.test_client()
        c3.set_cookie(COOKIE, kept2)
        assert whoami(c3)["user"] is None
        with fl.app.app_context():
            fl.db.session.execute(sa.text("UPDATE r2_users SET token = 'tok-old'"))
            fl.db.session.commit()
        c4 = fl.app.test_client()
        c4.set_cookie(COOKIE, kept2)
        assert whoami(c4)["user"] is None
    finally:
        with fl.app.app_context():
            fl.db.drop_all()
            fl.db.engine.dispose()


def test_sign_out_others_with_the_user_object_linked_by_token(
    empty_database_url: str, clock: Clock
) -> None:
    """flask-security.md: remove_all_sessions_for_user(current_user,
    current_session) "signs out all the others. Both take the user object or
    the id". Attack: user linked by an alternative token column."""
    fl = make_fl_app(empty_database_url, clock, token_column=True)
    try:
        ada = add_fl_user(fl, "ada@example.com", token="tok-a")
        laptop, phone = fl.app.test_client(), fl.app.test_client()
        laptop.post(f"/login/{ada}")
        phone.post(f"/login/{ada}")
        assert laptop.post("/sign-out-others").data == b"1"
        assert whoami(phone)["user"] is None
        assert whoami(laptop)["user"] == "tok-a"
    finally:
        with fl.app.app_context():
            fl.db.drop_all()
            fl.db.engine.dispose()


@pytest.mark.parametrize("variant", ["USER-1", "user-1 ", "User-1", "user-1\t"])
def test_only_the_exact_string_id_links_a_user(
    empty_database_url: str, clock: Clock, variant: str
) -> None:
    """session-data.md 'User ids': "Only the exact id links a user, on every
    database: MariaDB's collations find "user-1" for "USER-1" and "user-1 "";
    security.md §6: refused with UnknownUserError ... nothing is written.
    Attack: a plain view writes a case/space variant of an existing id."""
    fl = make_fl_app(empty_database_url, clock, id_kind="str")
    try:
        with fl.app.app_context():
            fl.db.session.add(fl.User(id="user-1", email="u@example.com"))
            fl.db.session.commit()

        @fl.app.post("/link")
        def link() -> str:
            session["_user_id"] = variant
            return "linked"

        client = fl.app.test_client()
        client.post("/set", data={"cart": "c"})
        before = cookie(client)
        with pytest.raises(UnknownUserError) as e:
            client.post("/link")
        assert variant.strip() not in str(e.value)
        assert cookie(client) == before
        assert whoami(client)["user"] is None
    finally:
        with fl.app.app_context():
            fl.db.drop_all()
            fl.db.engine.dispose()


# -- 6. session data -------------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1


Point = namedtuple("Point", "x y")


def roundtrip_app(
    backend: Backend, clock: Clock, values: dict[str, t.Any], **config: t.Any
) -> Flask:
    app = make_app(backend, clock, **config)

    @app.post("/store")
    def store() -> str:
        for k, v in values.items():
            session[k] = v
        return "ok"

    @app.get("/check")
    def check() -> t.Any:
        got = {k: session.get(k, "<missing>") for k in values}
        same = all(type(got[k]) is type(v) and repr(got[k]) == repr(v) for k, v in values.items())
        return jsonify(same=same, got=repr(got), want=repr(values))

    return app


TRICKY_VALUES: dict[str, t.Any] = {
    "bigint": 2**64 + 1,
    "huge": 10**30,
    "neg_big": -(2**63) - 1,
    "tiny_float": 5e-324,
    "max_float": 1.7976931348623157e308,
    "neg_zero": -0.0,
    "e16": 1e16,
    "point_one": 0.1,
    "nul": "a\x00b",
    "surrogate": "x\udcff",
    "pair": "\ud83d\ude00",
    "tag_only_t": {" t": [1, 2]},
    "tag_only_kf": {" kf": "1e+16"},
    "tag_only_kt": {" kt": "2020-01-01T00:00:00"},
    "tag_only_ks": {" ks": ["a", 0, "b"]},
    "tag_only_kk": {" kk": [["a", 1]]},
    "tag_only_di": {" di": {" t__": 1}},
    "nested_tag": [{" d": "Thu, 01 Jan 1970 00:00:00 GMT"}],
    "empty_key": {"": 1},
    "nul_key": {"a\x00": 1},
    "tuple_in_list": [(1, (2, b"\x00"))],
    "aware_dt": datetime(
        2026, 3, 29, 1, 30, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=45))
    ),
    "naive_dt": datetime(1, 1, 1, 0, 0),
    "max_dt": datetime(9999, 12, 31, 23, 59, 59, 999999),
    "long_text": "é" * 20000,
    "unicode_keys": {"ключ": {"🔑": True}},
    "bool_vs_int": [True, 1, False, 0, None],
}


@pytest.mark.parametrize("name", sorted(TRICKY_VALUES))
def test_tricky_values_round_trip_exactly_or_are_refused_where_set(
    backend: Backend, clock: Clock, name: str
) -> None:
    """session-data.md: "a value is either stored and read back exactly by the
    next request (the same types all the way down, the same text, the same
    keys) or refused where it is set, with SessionDataError" (security.md §6).
    Attack: big ints (JSONB/MariaDB JSON), float edges, tag-named keys, NUL
    keys, far-away datetimes."""
    value = TRICKY_VALUES[name]
    app = roundtrip_app(backend, clock, {name: value})
    client = app.test_client()
    try:
        response = client.post("/store")
    except SessionDataError:
        return  # refused where set: allowed
    assert response.status_code == 200
    result = client.get("/check").get_json()
    assert result["same"], result


def test_zoneinfo_datetimes_round_trip_with_fold(backend: Backend, clock: Clock) -> None:
    """session-data.md: datetime with a zoneinfo zone is read back as "the same
    datetime: microseconds, naive or aware, the same UTC offset, the same zone
    and fold"."""
    from zoneinfo import ZoneInfo

    z = ZoneInfo("Europe/Berlin")
    values = {
        "fold0": datetime(2025, 10, 26, 2, 30, tzinfo=z, fold=0),
        "fold1": datetime(2025, 10, 26, 2, 30, tzinfo=z, fold=1),
    }
    app = roundtrip_app(backend, clock, values)

    @app.get("/zcheck")
    def zcheck() -> t.Any:
        return jsonify(
            [
                [str(session[k].tzinfo), session[k].fold, session[k].utcoffset().total_seconds()]
                for k in ("fold0", "fold1")
            ]
        )

    client = app.test_client()
    client.post("/store")
    assert client.get("/check").get_json()["same"]
    assert client.get("/zcheck").get_json() == [
        ["Europe/Berlin", 0, 7200.0],
        ["Europe/Berlin", 1, 3600.0],
    ]


REFUSED: dict[str, t.Any] = {
    "intenum": Color.RED,
    "ordered": OrderedDict(a=1),
    "namedtuple": Point(1, 2),
    "nan": float("nan"),
    "inf": [1, {"x": float("inf")}],
    "int_key": {"a": {1: "secret-value"}},
    "set": {"secret-value"},
    "bytearray": bytearray(b"secret-value"),
    "nested_enum": {"deep": [[Color.RED]]},
    "bool_subclass_key": {True: 1},
}


@pytest.mark.parametrize("how", ["setitem", "update", "update_kw", "setdefault", "ior"])
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unstorable_values_are_refused_where_set_without_their_value(
    backend: Backend, clock: Clock, name: str, how: str
) -> None:
    """security.md §6: "A value is stored and read back exactly ... or refused
    where the app sets it, with SessionDataError naming the path to it and
    why, never its value ... It applies to session[k] = v, update() and
    setdefault()." Attack: every path, including update(**kw) and |=."""
    value = REFUSED[name]
    app = make_app(backend, clock)

    @app.post("/bad")
    def bad() -> str:
        try:
            if how == "setitem":
                session["v"] = value
            elif how == "update":
                session.update({"v": value})
            elif how == "update_kw":
                session.update(v=value)
            elif how == "setdefault":
                session.setdefault("v", value)
            else:
                s = t.cast(dict[str, t.Any], session)
                s |= {"v": value}
        except SessionDataError as e:
            assert "secret-value" not in str(e)
            assert "v" in str(e)
            return "refused"
        return "accepted"

    client = app.test_client()
    client.post("/set", data={"k": "before"})
    response = client.post("/bad")
    assert response.data == b"refused"
    assert info(client)["data"] == {"k": "before"}


def test_in_place_changes_that_cannot_be_stored_are_refused_at_save_writing_nothing(
    backend: Backend, clock: Clock
) -> None:
    """security.md §6: "What only the save can see (a value changed in place,
    data too large only as a whole) is refused when the session is saved. The
    message names the key, or the size and the limit, and nothing is written."
    """
    app = make_app(backend, clock, KITSESSION_MAX_DATA_SIZE=2000)

    @app.post("/inplace")
    def inplace() -> str:
        session["lst"].append(float("nan"))
        session["other"] = "changed"
        session.modified = True
        return "ok"

    @app.post("/grow")
    def grow() -> str:
        for i in range(5):
            session[f"k{i}"] = "x" * 600
        return "ok"

    @app.post("/init")
    def init() -> str:
        session["lst"] = [1]
        return "ok"

    client = app.test_client()
    client.post("/init")
    with pytest.raises(SessionDataError) as e:
        client.post("/inplace")
    assert "lst" in str(e.value)
    assert info(client)["data"] == {"lst": [1]}
    with pytest.raises(SessionDataError):
        client.post("/grow")
    assert info(client)["data"] == {"lst": [1]}


@pytest.mark.parametrize(
    "bad_id", ["abc", "4_2", " 42", "\u0664\u0662", True, 1.0, 2**31, 2**63, -(2**63) - 1, "", None]
)
def test_impossible_user_ids_are_unknown_users_never_503_or_overflow(
    backend: Backend, clock: Clock, bad_id: t.Any
) -> None:
    """session-data.md 'User ids' and security.md §6: an id that "cannot be a
    key of the user table (another type, outside the key column's range, too
    long)" is refused with UnknownUserError (never a 503 or an OverflowError),
    when the session is saved, and nothing is written ... nor the change a
    login was making to the visitor's previous session. (None is no user:
    writing it must not raise.)"""
    if bad_id == 2**31 and backend.name in ("memory", "redis", "sqlite"):
        bad_id = 2**63  # Integer is 64-bit there
    app = make_app(backend, clock)

    @app.post("/evil-login")
    @with_new_session
    def evil_login() -> str:
        session["user_id"] = bad_id
        session["extra"] = "x"
        return "ok"

    client = app.test_client()
    client.post("/set", data={"cart": "c"})
    before = cookie(client)
    if bad_id is None:
        assert client.post("/evil-login").status_code == 200
        assert info(client)["user_id"] is None
        return
    with pytest.raises(UnknownUserError) as e:
        client.post("/evil-login")
    assert str(bad_id) not in str(e.value) or str(bad_id) in ("", "True", "1.0")
    assert cookie(client) == before
    assert info(client)["data"] == {"cart": "c"}
    assert len(backend.rows()) == 1


def test_an_id_with_leading_zeros_or_plus_links_the_same_user(
    backend: Backend, clock: Clock
) -> None:
    """session-data.md 'User ids': for integer keys "an int, or its text in ASCII
    digits ("42", "+42", "042")" is accepted. Attack: logging in as "+<id>"
    and "0<id>" must link that user (and count as the same user: one session)."""
    app = make_app(backend, clock)

    @app.post("/strlogin/<text>")
    @with_new_session
    def strlogin(text: str) -> str:
        session["user_id"] = text
        return "ok"

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    assert client.post(f"/strlogin/0{ada}").status_code == 200
    assert info(client)["user_id"] == ada
    assert client.post(f"/strlogin/+{ada}").status_code == 200
    assert info(client)["user_id"] == ada
    assert len(get_sessions_for_user_in(app, ada)) == 1


# -- request metadata --------------------------------------------------------------


@pytest.mark.parametrize(
    "addr, agent",
    [
        ("[fe80::1%eth0]:4711", "a\x00b"),
        ("unknown", "x" * 5000),
        ("::ffff:192.0.2.1", "\udcff\udcfe"),
        ("1.2.3.4, 5.6.7.8", "Mozilla/5.0 \u202e"),
        ("999.999.999.999", ""),
        ("\x00\x01\x7f" + "z" * 100, "\t\r"),
        ("fe80::1%" + "e" * 200, "ok"),
    ],
)
def test_client_address_and_user_agent_never_fail_a_request(
    backend: Backend, clock: Clock, addr: str, agent: str
) -> None:
    """security.md §6: "The client address and user agent never fail a request."
    session-data.md: addresses normalized, at most 45 characters, UA at most 512.
    Attack: odd REMOTE_ADDR values (what ProxyFix copies from X-Forwarded-For)
    and user agents, on a login (insert) and a write."""
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    env = {"REMOTE_ADDR": addr, "HTTP_USER_AGENT": agent}
    r = client.post("/login", data={"user_id": str(ada)}, environ_base=env)
    assert r.status_code == 200
    r = client.post("/set", data={"k": "v"}, environ_base=env)
    assert r.status_code == 200
    assert info(client)["user_id"] == ada
    for row in backend.rows():
        assert row["ip_address"] is None or len(row["ip_address"]) <= 45
        assert row["user_agent"] is None or len(row["user_agent"]) <= 512


# -- 4. expiry ---------------------------------------------------------------------


def test_no_sequence_of_requests_keeps_a_session_past_the_absolute_timeout(
    backend: Backend, clock: Clock
) -> None:
    """lifecycle.md: "A re-login of the same user, regenerate(),
    refresh_authentication() and carry-over keep it ... So no sequence of
    requests keeps a session alive past the absolute timeout." Attack: every
    20 minutes a re-login of the same user, a regenerate, a refresh, a write."""
    app = make_app(
        backend,
        clock,
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=1),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=5),
        KITSESSION_CARRY_OVER_KEYS="*",
    )

    @app.post("/regen")
    def regen() -> str:
        regenerate()
        return "ok"

    @app.post("/refresh")
    def refresh() -> str:
        refresh_authentication()
        return "ok"

    @app.post("/relink")
    def relink() -> str:
        uid = session.pop("user_id")
        session["user_id"] = uid
        return "ok"

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    steps: list[t.Callable[[], t.Any]] = [
        lambda: login(client, ada),
        lambda: client.post("/regen"),
        lambda: client.post("/refresh"),
        lambda: client.post("/relink"),
        lambda: client.post("/set", data={"k": "v"}),
    ]
    for _i in range(3):
        for step in steps:
            clock.advance(minutes=2)
            step()
    # 30 minutes so far; now 35 more minutes in small steps
    for _ in range(7):
        clock.advance(minutes=5)
        client.post("/set", data={"k": "v"})
    assert info(client)["user_id"] is None


def test_a_permanent_cookie_never_outlives_the_absolute_timeout(
    backend: Backend, clock: Clock
) -> None:
    """configuration.md: "A permanent session's cookie expires with the stored
    session"; lifecycle.md: the idle timeout slides "never past the absolute
    one". Attack: a permanent session with idle 30 days and absolute 1 hour;
    the cookie's Expires must not be later than created_at + 1 hour."""
    app = make_app(
        backend,
        clock,
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=1),
        PERMANENT_SESSION_LIFETIME=timedelta(days=30),
    )

    @app.post("/perm-login/<int:uid>")
    @with_new_session
    def perm_login(uid: int) -> str:
        session["user_id"] = uid
        session.permanent = True
        return "ok"

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    r = client.post(f"/perm-login/{ada}")
    c = client.get_cookie(COOKIE)
    assert c is not None and c.expires is not None
    created = datetime.fromisoformat(info(client)["created_at"])
    assert c.expires <= created + timedelta(hours=1) + timedelta(seconds=1), (
        c.expires,
        created,
        r.headers.getlist("Set-Cookie"),
    )


def test_idle_timeout_is_enforced_on_the_server_whatever_the_cookie_says(
    backend: Backend, clock: Clock
) -> None:
    """security.md §4: "a session left alone expires between the idle timeout
    minus the touch interval and the idle timeout after its last request".
    Attack: reads every 50 s (below the touch interval) then silence."""
    app = make_app(backend, clock, PERMANENT_SESSION_LIFETIME=timedelta(minutes=10))
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    for _ in range(30):
        clock.advance(seconds=50)
        assert info(client)["user_id"] == ada
    clock.advance(minutes=9)  # > idle - touch interval since the last touch may be 59s earlier
    clock.advance(seconds=1)
    clock.advance(seconds=60)
    assert info(client)["user_id"] is None


def test_a_brand_new_cookie_for_a_chosen_token_is_never_adopted(
    backend: Backend, clock: Clock
) -> None:
    """security.md §1: "A token the server never issued is never adopted (no
    session fixation)." Attack: sign a token of the attacker's choosing with
    the app's own key (as if the key leaked to a sibling app), write data."""
    from itsdangerous import Signer

    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    chosen = "A" * 43
    interface = app.session_interface
    # try to forge with whatever signer the interface uses; fall back to a
    # plain itsdangerous signer with the app key and common salts
    forged_values = []
    for salt in ("cookie-session", "itsdangerous.Signer", "flask-kitsession", "kitsession"):
        for digest in ("sha1", "sha256"):
            import hashlib as _h

            s = Signer(
                SECRET_KEY, salt=salt, key_derivation="hmac", digest_method=getattr(_h, digest)
            )
            forged_values.append(s.sign(chosen).decode())
    for value in forged_values:
        c = app.test_client()
        c.set_cookie(COOKIE, value)
        c.post("/login", data={"user_id": str(ada)})
        signed = cookie(c)
        assert signed is not None
        token = signed.split(".")[0]
        assert token != chosen
    assert interface is not None


# -- more lifecycle ------------------------------------------------------------


def test_one_browser_one_stored_session_through_a_whole_day(backend: Backend, clock: Clock) -> None:
    """security.md §0 'One browser, one stored session': "A request that ends
    with a user linked leaves exactly one stored session for that browser".
    Attack: anonymous cart, login, re-login of the same user, plain-view relink,
    regenerate, login of another user, logout with a flash, login again."""
    app = make_app(backend, clock)

    @app.post("/regen")
    def regen() -> str:
        regenerate()
        session["r"] = 1
        return "ok"

    @app.post("/logout-flash")
    @with_delete_session
    def logout_flash() -> str:
        flash("bye")
        return "ok"

    @app.post("/relink/<int:uid>")
    def relink(uid: int) -> str:
        session["user_id"] = uid
        return "ok"

    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    seen: list[str | None] = []

    def step(call: t.Callable[[], t.Any]) -> None:
        call()
        seen.append(cookie(client))
        rows = backend.rows()
        linked = [r for r in rows if r["user_id"] is not None]
        assert len(rows) <= 1, rows
        assert len(linked) <= 1

    step(lambda: client.post("/set", data={"cart": "1"}))
    step(lambda: login(client, ada))
    step(lambda: login(client, ada))
    step(lambda: client.post(f"/relink/{bob}"))
    step(lambda: client.post("/regen"))
    step(lambda: login(client, ada))
    step(lambda: client.post("/logout-flash"))
    step(lambda: login(client, bob))
    # every step that changed the user or authenticated gave a new token
    assert len(set(seen)) == len(seen), seen


def test_a_re_login_of_the_same_user_gets_a_new_token_and_keeps_created_at(
    backend: Backend, clock: Clock
) -> None:
    """lifecycle.md: "Inside it, a login of the user who is already signed in
    ... starts over too"; security.md §0: the token changes on "a re-login of
    the same user"; the absolute timeout's created_at is kept."""
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    first = info(client)
    old = cookie(client)
    assert old is not None
    clock.advance(minutes=7)
    login(client, ada)
    second = info(client)
    assert cookie(client) != old
    assert second["created_at"] == first["created_at"]
    assert second["authenticated_at"] != first["authenticated_at"]
    c = app.test_client()
    c.set_cookie(COOKIE, old)
    assert info(c)["user_id"] is None


def test_create_session_and_set_session_cookie_hand_over_and_delete_the_old(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "create_session() + set_session_cookie() in a view hands
    the browser the new session and deletes the one it had." """
    app = make_app(backend, clock)

    @app.post("/handover/<int:uid>")
    def handover(uid: int) -> t.Any:
        new = create_session(uid, {"handed": True})
        response = jsonify(ok=True)
        return set_session_cookie(response, new)

    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    client.post("/set", data={"cart": "1"})
    old = cookie(client)
    assert old is not None
    assert client.post(f"/handover/{ada}").status_code == 200
    assert cookie(client) != old
    now = info(client)
    assert now["user_id"] == ada and now["data"].get("handed") is True
    assert len(backend.rows()) == 1
    c = app.test_client()
    c.set_cookie(COOKIE, old)
    assert info(c)["data"] == {}


def test_an_authenticated_read_is_one_statement_and_writes_nothing(
    backend: Backend, clock: Clock
) -> None:
    """README 'Fast': "An authenticated request costs one SQL statement and one
    database round trip (the user row comes in the same query); nothing is
    written while nothing changes." (SQL stores; on memory/Redis: one read, no
    write.) Attack: /me reads session.user, then several reads within the
    touch interval."""
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    login(client, ada)
    clock.advance(seconds=5)
    with backend.operations() as ops:
        r = client.get("/me")
        r2 = client.get("/info")
    assert r.get_json()["email"] == "ada@example.com"
    assert r2.status_code == 200
    assert backend.writes(ops) == [], ops
    if backend.name in ("sqlite", "postgresql", "mariadb"):
        reads = backend.reads(ops)
        assert len(reads) == 2, ops


def test_parallel_requests_crossing_a_login_never_sign_the_browser_out(
    backend: Backend, clock: Clock
) -> None:
    """security.md §0: "a signed cookie whose session ended or was renamed
    meanwhile ... so that a request crossing a login or a new token of the same
    browser (parallel requests of one page) never signs it out"; §2: "a session
    found gone stays gone ... it is left alone, so that a request crossing a new
    token of the same browser cannot expire the new cookie."
    Attack: an XHR with the pre-login cookie that *writes* (a 'last viewed'
    marker, as many pages do) completes after the login. Its response must not
    replace or expire the logged-in cookie."""
    app = make_app(backend, clock)
    import threading

    reached = threading.Event()
    go_on = threading.Event()

    @app.post("/slow-write")
    def slow_write() -> str:
        _ = dict(session)
        reached.set()
        go_on.wait(10)
        session["last_viewed"] = "page 2"
        return "ok"

    ada = backend.add_user("ada@example.com")
    browser = app.test_client()
    browser.post("/set", data={"cart": "1"})
    anon_cookie = cookie(browser)
    assert anon_cookie is not None
    xhr = app.test_client()
    xhr.set_cookie(COOKIE, anon_cookie)
    result: dict[str, t.Any] = {}

    def run() -> None:
        result["response"] = xhr.post("/slow-write")

    thread = threading.Thread(target=run)
    thread.start()
    assert reached.wait(10)
    login(browser, ada)
    logged_in_cookie = cookie(browser)
    go_on.set()
    thread.join(10)
    response = result["response"]
    assert response.status_code == 200
    headers = set_cookie_headers(response)
    # whatever the XHR's response sets is what the browser keeps: it must not
    # replace the logged-in cookie with another session, nor expire it
    assert headers == [], headers
    assert info(browser)["user_id"] == ada
    assert logged_in_cookie


@pytest.fixture
def str_redis_store(redis_keyspace: t.Any) -> t.Iterator[t.Any]:
    from flask_kitsession import RedisStore

    users = {k: {"id": k} for k in ("a*", "a", "ab", "a?", "[a]", "a\\", "x:y", "x")}
    store = RedisStore.from_url(
        redis_keyspace.url,
        prefix=redis_keyspace.new_prefix(),
        user_loader=lambda uid: users.get(uid),
        user_id_type=str,
    )
    yield store
    redis_keyspace.delete(store.prefix)
    store.close()


@pytest.mark.parametrize(
    "victim_id, attacker_id", [("a", "a*"), ("ab", "a?"), ("a", "[a]"), ("x:y", "x"), ("a", "a\\")]
)
def test_redis_sign_out_of_a_glob_like_user_id_signs_out_only_that_user(
    str_redis_store: t.Any, clock: Clock, victim_id: str, attacker_id: str
) -> None:
    """security.md §2: "Sign out everywhere" revokes the user's sessions;
    redis.md: a user's sessions are indexed in sorted sets
    `<prefix>user:{xy}:<user id>`. Attack: string user ids with glob
    characters and ':'; signing out 'a*' must not sign out 'a'."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
    KitSession(app, store=str_redis_store, clock=clock)

    @app.post("/as/<path:uid>")
    @with_new_session
    def as_user(uid: str) -> str:
        session["user_id"] = uid
        return "ok"

    @app.get("/who")
    def who() -> t.Any:
        return jsonify(current_session.user_id)

    @app.post("/everywhere")
    def everywhere() -> str:
        return str(remove_all_sessions_for_user(current_session.user_id))

    victim, attacker = app.test_client(), app.test_client()
    assert victim.post(f"/as/{victim_id}").status_code == 200
    assert attacker.post(f"/as/{attacker_id}").status_code == 200
    assert victim.get("/who").get_json() == victim_id
    assert attacker.post("/everywhere").data == b"1"
    assert victim.get("/who").get_json() == victim_id
    with app.test_request_context():
        assert len(get_sessions_for_user(victim_id)) == 1
        assert get_sessions_for_user(attacker_id) == []


# -- a model of the lifecycle, under hypothesis ------------------------------------

OPS = [
    "mark",
    "login_a",
    "login_b",
    "link_a",
    "link_b",
    "unlink",
    "logout",
    "failed_login",
    "regen",
    "refresh",
    "err500",
    "switch_b",
    "relink_same",
    "clear_and_mark",
]


def lifecycle_app(backend: Backend, clock: Clock) -> Flask:
    app = make_app(backend, clock, KITSESSION_CARRY_OVER_KEYS="*")
    counter = {"n": 0}

    @app.post("/op/<name>/<int:a>/<int:b>")
    def op(name: str, a: int, b: int) -> t.Any:
        counter["n"] += 1
        if name == "mark":
            session[f"m{counter['n']}"] = session.get("user_id", "anon")
        elif name in ("link_a", "link_b"):
            session["user_id"] = a if name == "link_a" else b
        elif name == "unlink":
            session.pop("user_id", None)
        elif name == "regen":
            regenerate()
        elif name == "refresh":
            if session.get("user_id") is not None:
                refresh_authentication()
        elif name == "err500":
            session[f"e{counter['n']}"] = 1
            regenerate()
            return "err", 500
        elif name == "relink_same":
            uid = session.pop("user_id", None)
            if uid is not None:
                session["user_id"] = b if uid == a else a
                session["user_id"] = uid
        elif name == "clear_and_mark":
            uid = session.get("user_id")
            session.clear()
            if uid is not None:
                session["user_id"] = uid
            session[f"c{counter['n']}"] = session.get("user_id", "anon")
        return "ok"

    @app.post("/op-login/<int:uid>")
    @with_new_session
    def op_login(uid: int) -> str:
        if uid:
            session["user_id"] = uid
        return "ok"

    @app.post("/op-logout")
    @with_delete_session
    def op_logout() -> str:
        return "ok"

    @app.post("/op-switch/<int:uid>")
    @with_new_session
    def op_switch(uid: int) -> str:
        if current_session.user_id is not None:
            remove_session(current_session)
        session["user_id"] = uid
        return "ok"

    return app


@settings(
    max_examples=int(__import__("os").environ.get("R2_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=12))
def test_lifecycle_invariants_hold_for_any_sequence(
    backend: Backend, clock: Clock, ops: list[str]
) -> None:
    """security.md §0, the invariants table: the token changes whenever the
    linked user changes and on every fresh authentication, the old cookie dead;
    nothing crosses from one user to another (even with carry-over "*");
    nothing of a signed-in session follows into an anonymous one; freshness
    only from real authentication; created_at kept for an uninterrupted link;
    a failed login / a 5xx change nothing; one browser, one stored session."""
    users = getattr(backend, "_review_lifecycle_users", None)
    if users is None:
        users = (backend.add_user("la@example.com"), backend.add_user("lb@example.com"))
        backend._review_lifecycle_users = users  # type: ignore[attr-defined]
    a, b = users
    app = lifecycle_app(backend, clock)
    initial_ids = {r["id"] for r in backend.rows()}
    client = app.test_client()
    old_cookies: set[str] = set()
    state = info(client)
    state.pop("expires_at")
    for name in ops:
        clock.advance(seconds=7)
        before_cookie = cookie(client)
        before = state
        if name == "login_a":
            r = client.post(f"/op-login/{a}")
        elif name == "login_b":
            r = client.post(f"/op-login/{b}")
        elif name == "failed_login":
            r = client.post("/op-login/0")
        elif name == "logout":
            r = client.post("/op-logout")
        elif name == "switch_b":
            r = client.post(f"/op-switch/{b}")
        else:
            r = client.post(f"/op/{name}/{a}/{b}")
        state = info(client)
        state.pop("expires_at")  # a touch may slide it on any request
        after_cookie = cookie(client)
        ctx = (ops, name, before, state)
        prev_user, user = before["user_id"], state["user_id"]
        if name == "err500":
            assert r.status_code == 500
            assert after_cookie == before_cookie and state == before, ctx
            continue
        assert r.status_code == 200, ctx
        changed = prev_user != user
        authenticated = name in ("login_a", "login_b", "switch_b") or (
            name == "refresh" and prev_user is not None
        )
        # nothing crosses
        if prev_user is not None and changed:
            leftover = set(state["data"]) - {"user_id"}
            assert leftover == set(), ctx
        for key, owner in state["data"].items():
            if key.startswith(("m", "c")):
                assert owner in ("anon", user), ctx
        # token
        if before_cookie is not None and (changed or authenticated or name == "regen"):
            if after_cookie is not None and before["new"] is False:
                assert after_cookie != before_cookie, ctx
        if name == "failed_login":
            assert after_cookie == before_cookie and state == before, ctx
        # freshness
        if user is not None and not changed and not authenticated:
            assert state["authenticated_at"] == before["authenticated_at"], ctx
            assert state["created_at"] == before["created_at"], ctx
        if user is not None and not changed and authenticated and name != "switch_b":
            # (switch_b is a logout then a login: a new link may start)
            assert state["created_at"] == before["created_at"], ctx
        if before_cookie and after_cookie != before_cookie:
            old_cookies.add(before_cookie)
        # one browser, one stored session
        new_rows = [r_ for r_ in backend.rows() if r_["id"] not in initial_ids]
        assert len(new_rows) <= 1, (ctx, new_rows)
    for old in old_cookies - {cookie(client)}:
        c = app.test_client()
        c.set_cookie(COOKIE, old)
        replay = info(c)
        assert replay["user_id"] is None and replay["data"] == {}, (ops, replay)


def test_csrf_token_dropped_when_login_user_logs_in_someone_else(fl: FLApp) -> None:
    """security.md §9: "a login as someone else drops it, and the login's
    response then hands out a new one". Attack: Ada signed in, login_user(bob)
    on the same browser with no logout in between."""
    ada = add_fl_user(fl, "ada@example.com")
    bob = add_fl_user(fl, "bob@example.com")
    client = fl.app.test_client()
    client.post(f"/login/{ada}")
    token = client.get("/csrf").data.decode()
    client.post(f"/login/{bob}")
    assert whoami(client)["user"] == str(bob)
    assert client.post("/csrf-check", data={"csrf_token": token}).status_code == 400
    fresh_token = client.get("/csrf").data.decode()
    assert client.post("/csrf-check", data={"csrf_token": fresh_token}).status_code == 200


@pytest.fixture
def fsu_app(empty_database_url: str, clock: Clock) -> t.Iterator[FLApp]:
    """A Flask-Security-like model: get_id() returns fs_uniquifier; no setting."""
    from flask_login import current_user
    from flask_login import login_user
    from flask_login import LoginManager
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY, TESTING=True, SQLALCHEMY_DATABASE_URI=empty_database_url
    )
    db = SQLAlchemy(app)

    class User(UserMixin, db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "r2_fs_users"
        id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(255))
        fs_uniquifier: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)

        def get_id(self) -> str:
            return str(self.fs_uniquifier)

    lm = LoginManager(app)
    KitSession(app, db=db, user_model=User, clock=clock).init_login_manager(lm)

    @app.post("/login/<int:uid>")
    def do_login(uid: int) -> str:
        login_user(db.session.get(User, uid))
        return "in"

    @app.get("/whoami")
    def who() -> t.Any:
        return jsonify(
            user=current_user.get_id() if current_user.is_authenticated else None,
            data=dict(session),
            created_at=None,
            authenticated_at=None,
        )

    @app.post("/sign-out-others")
    def others() -> str:
        return str(remove_all_sessions_for_user(current_user, current_session))

    with app.app_context():
        db.create_all()
    yield FLApp(app, db, User)
    with app.app_context():
        db.drop_all()
        db.engine.dispose()


def test_fs_uniquifier_change_signs_out_and_old_value_never_returns(fsu_app: FLApp) -> None:
    """security.md §8: sessions link by fs_uniquifier "detected with no
    setting"; "Changing a user's link value ... signs out every session linked
    through the old value ... No such session ever authenticates again, even if
    the old value came back." Attack: reset_user_access() done by hand through
    the ORM: new uniquifier, then the old one given back."""
    with fsu_app.app.app_context():
        u = fsu_app.User(email="ada@example.com", fs_uniquifier="uq-1")
        fsu_app.db.session.add(u)
        fsu_app.db.session.commit()
        ada = u.id
    laptop, phone = fsu_app.app.test_client(), fsu_app.app.test_client()
    laptop.post(f"/login/{ada}")
    phone.post(f"/login/{ada}")
    assert whoami(phone)["user"] == "uq-1"
    assert laptop.post("/sign-out-others").data == b"1"
    assert whoami(phone)["user"] is None
    kept = cookie(laptop)
    assert kept is not None
    with fsu_app.app.app_context():
        user = fsu_app.db.session.get(fsu_app.User, ada)
        user.fs_uniquifier = "uq-2"
        fsu_app.db.session.commit()
    with fsu_app.app.app_context():
        user = fsu_app.db.session.get(fsu_app.User, ada)
        user.fs_uniquifier = "uq-1"
        fsu_app.db.session.commit()
    c = fsu_app.app.test_client()
    c.set_cookie(COOKIE, kept)
    assert whoami(c)["user"] is None


def test_a_deleted_user_whose_id_is_reused_on_kitsessions_own_sqlite_engine(
    tmp_path: t.Any, clock: Clock
) -> None:
    """security.md §8 "Deleting a user signs out their sessions"; flask-login.md:
    "the engine kitsession makes from KITSESSION_DATABASE_URL turns [foreign
    keys] on". Control for the Flask-SQLAlchemy case: the same id reuse with
    Flask-SQLAlchemy given KitSession's engine options is not possible, so
    here an app with KITSESSION_DATABASE_URL and its own user table rows."""
    from flask_kitsession import migrate
    from flask_kitsession.models import user_table

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        KITSESSION_DATABASE_URL=f"sqlite:///{tmp_path / 'own.sqlite3'}",
    )
    kit = KitSession(app, clock=clock)
    with app.app_context():
        migrate.upgrade(app)
    add_views(app)
    store = app.extensions["kitsession"].store
    engine = store.engine
    with engine.begin() as db:
        db.execute(user_table.insert(), {"email": "first@example.com"})
        mallory = db.execute(
            user_table.insert(), {"email": "mallory@example.com"}
        ).inserted_primary_key[0]
    client = app.test_client()
    login(client, mallory)
    with engine.begin() as db:
        db.execute(user_table.delete().where(user_table.c.id == mallory))
        victim = db.execute(
            user_table.insert(), {"email": "victim@example.com"}
        ).inserted_primary_key[0]
    r = client.get("/me").get_json()
    store.close()
    assert r["user_id"] is None, (mallory, victim, r)
    assert kit is not None


def test_readme_sign_out_others_with_a_signed_out_device_is_not_a_500(
    backend: Backend, clock: Clock
) -> None:
    """README 'Correct': "a bad cookie gives a fresh anonymous session, never
    an error", and the README quick start's own demo: after `sign-out-others`
    the phone "is not logged in". Attack: the phone (cookie revoked) presses
    the quick start's POST /sign-out-others again, exactly as the README
    writes the view: remove_all_sessions_for_user(current_session.user_id,
    current_session). Seen: ValueError ("user_id is None") -> HTTP 500.
    (Arguably a bug of the README's example rather than of the library.)"""
    app = make_app(backend, clock, TESTING=False, PROPAGATE_EXCEPTIONS=False)
    ada = backend.add_user("ada@example.com")
    laptop, phone = app.test_client(), app.test_client()
    login(laptop, ada)
    login(phone, ada)
    assert laptop.post("/sign-out-others").get_json() == {"count": 1}
    assert info(phone)["user_id"] is None
    response = phone.post("/sign-out-others")
    assert response.status_code < 500, response.status_code


def test_a_devices_page_for_an_anonymous_current_user_lists_nothing(fl: FLApp) -> None:
    """flask-security.md 'A devices page': "get_sessions_for_user(current_user)
    lists the user's sessions with their user agent, IP address ...";
    session-data.md: lookups by an id no user can have find nothing.
    Attack: the devices page reached by an anonymous visitor (no
    @login_required): Flask-Login's AnonymousUserMixin is passed in.
    Seen (see test_listing_the_devices_of_nobody_lists_no_one): every
    anonymous visitor's session, with IP address and data, is listed."""
    from flask_login import current_user

    @fl.app.get("/devices")
    def devices() -> t.Any:
        return jsonify(
            [{"ip": s.ip_address, "data": dict(s)} for s in get_sessions_for_user(current_user)]
        )

    victim = fl.app.test_client()
    victim.post("/set", data={"cart": "victim's cart"}, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    attacker = fl.app.test_client()
    response = attacker.get("/devices")
    assert response.status_code < 500
    if response.status_code == 200:
        assert response.get_json() == [], response.get_json()
