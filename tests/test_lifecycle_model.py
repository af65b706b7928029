"""The session lifecycle against a model of what it should be (issue 12).

Hypothesis runs random sequences of what browsers and apps do (logins of
every kind, logouts, switching user, remember-cookie restores, plain views
writing user keys, ``regenerate()``, ``credentials_changed()``, sign-out of
other devices, revocations while a request is in flight, time passing, key
rotation, foreign keys) against a real app on each backend, and after every
step compares the app with :class:`Model`, a few dozen lines that say what
docs/lifecycle.md and docs/security.md (section 0) promise. Besides the
comparison, these invariants are checked on the real app after every step:

1. the token changed whenever the linked user changed, and the old cookie is
   dead from then on;
2. no live session is older than the absolute timeout;
3. ``authenticated_at`` moves only on a real authentication (the model says
   when);
4. a dead cookie (revoked, ended, renamed, expired) never comes back;
5. each user has exactly the stored sessions the model has: after a request
   that ends linked, one per browser, named by its cookie;
6. no response expires the session cookie unless its request ended the
   session; a request that writes nothing sends no ``Set-Cookie`` with a
   cookie the app cannot verify.

``KITSESSION_MODEL_EXAMPLES`` sets how many sequences run per backend and
carry-over setting (``.ci/run`` runs the default; see docs/security.md for
the count and time). Sequences that once failed are replayed at the end of
this file, step by step.
"""

from __future__ import annotations

import os
import typing as t
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta

import pytest
from flask import flash
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import run_state_machine_as_test

from flask_kitsession import credentials_changed
from flask_kitsession import current_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import refresh_authentication
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session

from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend

pytest.importorskip("flask_login")

EXAMPLES = int(os.environ.get("KITSESSION_MODEL_EXAMPLES", "40"))
STEPS = 40

IDLE = timedelta(minutes=10)
ABSOLUTE = timedelta(hours=1)
TOUCH = timedelta(minutes=1)
#: Time steps, chosen so that sums rarely land on a boundary exactly.
DELAYS = [7, 47, 131, 613, 1249]
USER_KEYS = ("user_id", "_user_id", "userId", "id")
APP_KEYS = ("cart", "theme")
#: Keys of Flask-Login and Flask-WTF the comparison leaves out: the session
#: identifier, the remember-cookie instruction, the CSRF token.
UNCOMPARED = {"_id", "_remember", "_remember_seconds", "csrf_token"}
CARRY_OVER: dict[str, t.Any] = {"none": [], "cart": ["cart"], "all": "*"}
#: What ran, for the record: sequences, and steps that made a request.
RUNS = {"sequences": 0, "requests": 0}


class LoginUser:
    """A Flask-Login user: just an id."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user_id: int) -> None:
        self.id = user_id

    def get_id(self) -> str:
        return str(self.id)


# -- the model ------------------------------------------------------------------


@dataclass(eq=False)
class Stored:
    """A stored session, as the model has it."""

    user: int | None
    data: dict[str, t.Any]
    created: datetime
    authenticated: datetime | None
    last_seen: datetime
    expires: datetime


@dataclass(eq=False)
class Browser:
    client: FlaskClient
    #: The live session its cookie names, if any.
    session: Stored | None = None
    #: The user of its Flask-Login remember cookie.
    remember: int | None = None
    #: The generation of the key that signed its session cookie.
    key: int = 0


def named_user(data: t.Mapping[str, t.Any]) -> int | None:
    for key in USER_KEYS:
        if data.get(key) is not None:
            return int(data[key])
    return None


@dataclass
class Model:
    """What the session of each browser should be: docs/lifecycle.md, as code."""

    now: datetime
    carry: str
    stored: list[Stored] = field(default_factory=list)

    def carries(self, key: str) -> bool:
        if key in USER_KEYS or key == "_fresh":
            # Who is logged in, and how freshly, is the login's to say.
            return False
        if key == "_flashes":
            # The visitor's own waiting messages, into their account.
            return True
        return self.carry == "all" or (self.carry == "cart" and key == "cart")

    def expire(self, browsers: t.Iterable[Browser]) -> None:
        self.stored = [s for s in self.stored if s.expires > self.now]
        for browser in browsers:
            if browser.session is not None and browser.session not in self.stored:
                browser.session = None

    def delete(self, stored: Stored | None) -> None:
        if stored is not None and stored in self.stored:
            self.stored.remove(stored)

    def slide(self, stored: Stored) -> None:
        """A request used the session: the expiry slides once per touch interval."""
        if self.now - stored.last_seen >= TOUCH:
            stored.last_seen = self.now
            stored.expires = min(self.now + IDLE, stored.created + ABSOLUTE)

    def create(self, browser: Browser, data: dict[str, t.Any], *, fresh: bool) -> Stored:
        """A new session (a new link, or the first write of an anonymous
        visitor), replacing the one the browser had.
        """
        self.delete(browser.session)
        user = named_user(data)
        new = Stored(
            user=user,
            data=data,
            created=self.now,
            authenticated=self.now if user is not None and fresh else None,
            last_seen=self.now,
            expires=min(self.now + IDLE, self.now + ABSOLUTE),
        )
        self.stored.append(new)
        browser.session = new
        return new

    def link(
        self, browser: Browser, written: dict[str, t.Any], *, login: bool, fresh: bool = True
    ) -> str:
        """The request wrote ``written`` (user keys among them). Return what
        happens to the token: "new", "renamed" or "same".
        """
        origin = browser.session
        before = origin.user if origin is not None else None
        data = dict(origin.data) if origin is not None else {}
        # The user key written names the user.
        user = named_user({k: v for k, v in written.items() if k in USER_KEYS})
        if user is None:
            data.update(written)
            user = named_user(data)
        if user != before or (login and user is not None):
            carried = {
                k: v
                for k, v in data.items()
                if (before is None or before == user) and self.carries(k)
            }
            carried.update(written)
            if user != before or origin is None:
                self.create(browser, carried, fresh=fresh and carried.get("_fresh") is not False)
                return "new"
            origin.data = carried
            if fresh and carried.get("_fresh") is not False:
                origin.authenticated = self.now
            self.slide(origin)
            return "renamed"
        assert origin is not None
        origin.data.update(written)
        self.slide(origin)
        return "same"

    def write(self, browser: Browser, key: str, value: t.Any) -> str:
        if browser.session is None:
            self.create(browser, {key: value}, fresh=False)
            return "new"
        browser.session.data[key] = value
        self.slide(browser.session)
        return "same"

    def end(self, browser: Browser, written: dict[str, t.Any]) -> str:
        """A logout: the session is deleted; what the request wrote besides
        the user's link goes into a new anonymous session.
        """
        self.delete(browser.session)
        browser.session = None
        kept = {k: v for k, v in written.items() if k not in USER_KEYS and k != "_fresh"}
        if kept:
            self.create(browser, kept, fresh=False)
            return "new"
        return "ended"

    def read(self, browser: Browser) -> None:
        if browser.session is not None:
            self.slide(browser.session)

    def revoke_user(self, user: int, keep: Stored | None = None) -> None:
        self.stored = [s for s in self.stored if s.user != user or s is keep]


# -- the app --------------------------------------------------------------------


def make_app(backend: Backend, clock: Clock, carry: str, users: list[int]) -> Flask:
    from flask_login import login_user
    from flask_login import LoginManager
    from flask_login import logout_user

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        KITSESSION_IDLE_TIMEOUT=int(IDLE.total_seconds()),
        KITSESSION_ABSOLUTE_TIMEOUT=int(ABSOLUTE.total_seconds()),
        KITSESSION_TOUCH_INTERVAL=int(TOUCH.total_seconds()),
        KITSESSION_CARRY_OVER_KEYS=CARRY_OVER[carry],
    )
    KitSession(app, store=backend.store, clock=clock)
    login_manager = LoginManager(app)
    # Flask-Login's own session protection writes "_fresh" on reads of
    # sessions it did not log in; it has tests of its own.
    login_manager.session_protection = None
    known = set(users)

    @login_manager.user_loader
    def load(user_id: str) -> LoginUser | None:
        return LoginUser(int(user_id)) if int(user_id) in known else None

    def form_user() -> int:
        return int(request.form["user"])

    @app.post("/write")
    def write() -> str:
        session[request.form["key"]] = request.form["value"]
        return "ok"

    @app.post("/link")
    def link() -> str:
        key = request.form["key"]
        session[key] = str(form_user()) if key == "_user_id" else form_user()
        return "ok"

    @app.post("/login-form")
    @with_new_session
    def login_form() -> str:
        if "user" not in request.form:
            flash("Wrong e-mail or password.")
            return "no"
        session["user_id"] = form_user()
        return "in"

    @app.post("/login-welcome")
    @with_new_session
    def login_welcome() -> str:
        flash("Welcome.")
        session["user_id"] = form_user()
        return "in"

    @app.post("/logout-flash")
    @with_delete_session
    def logout_flash() -> str:
        flash("Signed out.")
        return "out"

    @app.post("/login-user")
    def login_user_view() -> str:
        login_user(
            LoginUser(form_user()),
            fresh=request.form["fresh"] == "1",
            remember=request.form["remember"] == "1",
        )
        return "in"

    @app.post("/logout-user")
    def logout_user_view() -> str:
        logout_user()
        return "out"

    @app.post("/logout-decorated")
    @with_delete_session
    def logout_decorated() -> str:
        return "out"

    @app.post("/switch")
    def switch() -> str:
        logout_user()
        flash("Signed out.")
        login_user(LoginUser(form_user()))
        return "switched"

    @app.post("/regenerate")
    def regenerate_view() -> str:
        regenerate()
        return "ok"

    @app.post("/refresh")
    def refresh() -> str:
        refresh_authentication()
        return "ok"

    @app.post("/credentials-changed")
    def credentials_changed_view() -> str:
        return str(credentials_changed())

    @app.post("/sign-out-others")
    def sign_out_others() -> str:
        return str(remove_all_sessions_for_user(current_session.user_id, current_session))

    @app.post("/in-flight")
    def in_flight() -> str:
        # The request has read its session; another device signs the user
        # out everywhere meanwhile; then the request writes (or not).
        user_id = current_session.user_id
        remove_all_sessions_for_user(user_id)
        if request.form.get("value"):
            session["cart"] = request.form["value"]
        return "ok"

    @app.get("/whoami")
    def whoami() -> str:
        from flask_login import current_user

        return str(current_user.get_id())

    @app.get("/observe")
    def observe() -> t.Any:
        created, authenticated = current_session.created_at, current_session.authenticated_at
        return jsonify(
            user_id=current_session.user_id,
            data={k: v for k, v in session.items() if k not in UNCOMPARED},
            created_at=created.isoformat() if created else None,
            authenticated_at=authenticated.isoformat() if authenticated else None,
        )

    return app


def token_of(cookie: str | None) -> str | None:
    return None if not cookie else cookie.split(".", 1)[0]


def expires_cookie(headers: t.Any) -> bool:
    return any(
        h.startswith("session=") and "Expires=Thu, 01 Jan 1970" in h
        for h in headers.getlist("Set-Cookie")
    )


# -- the machine --------------------------------------------------------------------


class LifecycleMachine(RuleBasedStateMachine):
    """Two browsers, three users, one app; a model beside it."""

    backend: t.ClassVar[Backend]
    users: t.ClassVar[list[int]]

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        for user in self.users:
            self.backend.store.delete_all_for_user(user)
        self.keys = [SECRET_KEY]
        self.rotations = 0
        #: Cookies the model says are dead, newest last.
        self.dead: list[str] = []
        self.app: Flask | None = None

    @initialize(carry=st.sampled_from(sorted(CARRY_OVER)))
    def start(self, carry: str) -> None:
        self.app = make_app(self.backend, self.clock, carry, self.users)
        self.model = Model(self.clock(), carry)
        self.browsers = [Browser(self.app.test_client()) for _ in range(2)]

    # -- running a request and checking it ---------------------------------------

    def teardown(self) -> None:
        RUNS["sequences"] += 1

    def cookie(self, browser: Browser) -> str | None:
        cookie = browser.client.get_cookie("session")
        return None if cookie is None else cookie.value

    def request(
        self,
        index: int,
        path: str,
        form: dict[str, str] | None = None,
        *,
        token: str | None = None,
        may_end: bool = False,
    ) -> None:
        """One request of a browser; ``token`` is what the model says became
        of its token ("new", "renamed", "same", "ended", "gone").
        """
        RUNS["requests"] += 1
        browser = self.browsers[index]
        before = self.cookie(browser)
        before_user = browser.session.user if browser.session is not None else None
        if form is None:
            response = browser.client.get(path)
        else:
            response = browser.client.post(path, data=form)
        assert response.status_code == 200, (path, response.status_code, response.text)
        after = self.cookie(browser)
        if after != before:
            browser.key = len(self.keys) - 1
        # 6. Only a request that ends the session expires its cookie.
        if expires_cookie(response.headers):
            assert may_end and token == "ended", (path, response.headers.getlist("Set-Cookie"))
        # 1. The token changed whenever the linked user changed.
        after_user = browser.session.user if browser.session is not None else None
        if token in ("new", "renamed") or (after_user != before_user and token != "gone"):
            assert token_of(after) != token_of(before), (path, token)
        elif token == "same" and before is not None:
            assert token_of(after) == token_of(before), path
        if before is not None and token_of(after) != token_of(before):
            self.dead.append(before)
        elif before is not None and token in ("ended", "gone"):
            self.dead.append(before)
        self.observe(index)

    def observe(self, index: int) -> None:
        """Compare what the app says of a browser's session with the model."""
        browser = self.browsers[index]
        before = self.cookie(browser)
        self.model.read(browser)
        response = browser.client.get("/observe")
        assert response.status_code == 200
        if self.cookie(browser) != before:
            # A cookie signed with an older key is re-signed; same token.
            assert token_of(self.cookie(browser)) == token_of(before)
            browser.key = len(self.keys) - 1
        seen = response.json
        assert isinstance(seen, dict)
        expected = browser.session
        if expected is None:
            assert seen["user_id"] is None and seen["data"] == {}, seen
            return
        assert seen["user_id"] == expected.user, (seen, expected)
        data = dict(seen["data"])
        flashes = data.pop("_flashes", [])
        wanted = dict(expected.data)
        assert len(flashes) == wanted.pop("_flashes", 0), (seen, expected)
        assert data == wanted, (seen, expected)
        assert seen["created_at"] == expected.created.isoformat(), (seen, expected)
        authenticated = expected.authenticated
        assert seen["authenticated_at"] == (authenticated.isoformat() if authenticated else None)
        # 2. The absolute timeout is never exceeded.
        assert self.clock() - expected.created < ABSOLUTE

    def revoked(self, change: t.Callable[[], None]) -> None:
        """Apply ``change`` to the model; the cookies of the sessions it
        ends are dead from then on.
        """
        live = [(b, self.cookie(b)) for b in self.browsers if b.session is not None]
        change()
        self.model.expire(self.browsers)
        self.dead.extend(c for b, c in live if b.session is None and c is not None)

    # -- steps of one browser -------------------------------------------------------

    browser_index = st.integers(min_value=0, max_value=1)

    @rule(index=browser_index, key=st.sampled_from(APP_KEYS), value=st.sampled_from("abc"))
    def anonymous_or_any_write(self, index: int, key: str, value: str) -> None:
        token = self.model.write(self.browsers[index], key, value)
        self.request(index, "/write", {"key": key, "value": value}, token=token)

    @rule(index=browser_index, user=st.integers(0, 2))
    def login_that_succeeds(self, index: int, user: int) -> None:
        uid = self.users[user]
        token = self.model.link(self.browsers[index], {"user_id": uid}, login=True)
        self.request(index, "/login-form", {"user": str(uid)}, token=token)

    @rule(index=browser_index)
    def login_that_fails_and_flashes(self, index: int) -> None:
        browser = self.browsers[index]
        flashes = browser.session.data.get("_flashes", 0) if browser.session else 0
        token = self.model.write(browser, "_flashes", flashes + 1)
        self.request(index, "/login-form", {}, token=token)

    def flashes_that_follow(self, browser: Browser, user: int | None) -> int:
        """How many flashed messages follow a request that flashes one and
        leaves the browser linked to ``user``: a user's pending messages never
        follow the browser to someone else (docs/security.md, section 0).
        """
        stored = browser.session
        pending = stored.data.get("_flashes", 0) if stored is not None else 0
        before = stored.user if stored is not None else None
        return 1 if before is not None and before != user else pending + 1

    @rule(index=browser_index, user=st.integers(0, 2))
    def login_that_flashes_a_welcome(self, index: int, user: int) -> None:
        uid = self.users[user]
        browser = self.browsers[index]
        written = {"_flashes": self.flashes_that_follow(browser, uid), "user_id": uid}
        token = self.model.link(browser, written, login=True)
        self.request(index, "/login-welcome", {"user": str(uid)}, token=token)

    @rule(index=browser_index)
    def logout_that_flashes(self, index: int) -> None:
        browser = self.browsers[index]
        token = self.model.end(browser, {"_flashes": self.flashes_that_follow(browser, None)})
        browser.remember = None
        self.request(index, "/logout-flash", {}, token=token, may_end=True)

    @rule(index=browser_index, user=st.integers(0, 2), fresh=st.booleans(), remember=st.booleans())
    def flask_login_login_user(self, index: int, user: int, fresh: bool, remember: bool) -> None:
        uid = self.users[user]
        browser = self.browsers[index]
        token = self.model.link(
            browser, {"_user_id": str(uid), "_fresh": fresh}, login=True, fresh=fresh
        )
        if remember:
            browser.remember = uid
        form = {"user": str(uid), "fresh": "01"[fresh], "remember": "01"[remember]}
        self.request(index, "/login-user", form, token=token)

    @precondition(lambda self: any(b.remember is not None for b in self.browsers))
    @rule(index=browser_index)
    def remember_cookie_restore(self, index: int) -> None:
        """The browser was closed (its session cookie is gone), then opens a
        page that reads ``current_user``: Flask-Login restores the login.
        """
        browser = self.browsers[index]
        if browser.remember is None:
            return
        browser.client.delete_cookie("session")
        browser.session = None
        token = self.model.link(
            browser, {"_user_id": str(browser.remember), "_fresh": False}, login=False
        )
        self.request(index, "/whoami", token=token)

    @rule(index=browser_index)
    def flask_login_logout_user(self, index: int) -> None:
        browser = self.browsers[index]
        # logout_user() loads the user first (a remember cookie may restore
        # it), then ends the session all the same.
        token = self.model.end(browser, {})
        browser.remember = None
        self.request(index, "/logout-user", {}, token=token, may_end=True)

    @rule(index=browser_index)
    def with_delete_session_logout(self, index: int) -> None:
        token = self.model.end(self.browsers[index], {})
        self.request(index, "/logout-decorated", {}, token=token, may_end=True)

    @rule(index=browser_index, user=st.integers(0, 2))
    def logout_then_login_in_one_request(self, index: int, user: int) -> None:
        uid = self.users[user]
        browser = self.browsers[index]
        self.model.end(browser, {})
        browser.remember = None
        written: dict[str, t.Any] = {"_flashes": 1, "_user_id": str(uid), "_fresh": True}
        self.model.create(browser, written, fresh=True)
        self.request(index, "/switch", {"user": str(uid)}, token="new")

    @rule(index=browser_index, user=st.integers(0, 2), key=st.sampled_from(USER_KEYS))
    def plain_view_writes_a_user_key(self, index: int, user: int, key: str) -> None:
        uid = self.users[user]
        value: t.Any = str(uid) if key == "_user_id" else uid
        token = self.model.link(self.browsers[index], {key: value}, login=False)
        self.request(index, "/link", {"key": key, "user": str(uid)}, token=token)

    @rule(index=browser_index)
    def regenerate(self, index: int) -> None:
        stored = self.browsers[index].session
        if stored is not None:
            self.model.slide(stored)
        self.request(index, "/regenerate", {}, token="renamed" if stored else None)

    @precondition(lambda self: any(b.session and b.session.user for b in self.browsers))
    @rule(index=browser_index)
    def refresh_authentication(self, index: int) -> None:
        stored = self.browsers[index].session
        if stored is None or stored.user is None:
            return
        stored.authenticated = self.model.now
        if "_fresh" in stored.data or "_user_id" in stored.data:
            # A session Flask-Login logged in: refresh_authentication() is
            # its confirm_login() too (_fresh, and _id, which is not compared).
            stored.data["_fresh"] = True
        self.model.slide(stored)
        self.request(index, "/refresh", {}, token="renamed")

    @precondition(lambda self: any(b.session and b.session.user for b in self.browsers))
    @rule(index=browser_index)
    def credentials_changed(self, index: int) -> None:
        stored = self.browsers[index].session
        if stored is None or stored.user is None:
            return
        user = stored.user
        self.revoked(lambda: self.model.revoke_user(user, keep=stored))
        self.model.slide(stored)
        self.request(index, "/credentials-changed", {}, token="renamed")

    @precondition(lambda self: any(b.session and b.session.user for b in self.browsers))
    @rule(index=browser_index)
    def sign_out_others_from_another_device(self, index: int) -> None:
        stored = self.browsers[index].session
        if stored is None or stored.user is None:
            return
        user = stored.user
        self.revoked(lambda: self.model.revoke_user(user, keep=stored))
        self.model.slide(stored)
        self.request(index, "/sign-out-others", {}, token="same")

    @precondition(lambda self: any(b.session and b.session.user for b in self.browsers))
    @rule(index=browser_index, writes=st.booleans())
    def request_in_flight_across_a_revocation(self, index: int, writes: bool) -> None:
        stored = self.browsers[index].session
        if stored is None or stored.user is None:
            return
        user = stored.user
        self.revoked(lambda: self.model.revoke_user(user))
        form = {"value": "x"} if writes else {}
        self.request(index, "/in-flight", form, token="gone")

    @rule(index=browser_index)
    def browser_closes(self, index: int) -> None:
        """The browser drops its session cookie; the stored session stays
        until it expires (one browser, one stored session, but the browser
        forgot it).
        """
        browser = self.browsers[index]
        browser.client.delete_cookie("session")
        browser.session = None
        self.observe(index)

    # -- steps of the world ---------------------------------------------------------

    @rule(seconds=st.sampled_from(DELAYS))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)
        self.model.now = self.clock()
        self.revoked(lambda: self.model.expire(self.browsers))
        for index in range(len(self.browsers)):
            self.observe(index)

    @rule()
    def key_rotation(self) -> None:
        """A new SECRET_KEY, the old ones as fallbacks: every session stays."""
        assert self.app is not None
        self.rotations += 1
        self.keys.append(f"{SECRET_KEY} rotated {self.rotations}")
        self.app.secret_key = self.keys[-1]
        self.app.config["SECRET_KEY_FALLBACKS"] = self.keys[:-1]
        for browser in self.browsers:
            # Flask-Login signs its remember cookie with SECRET_KEY alone.
            browser.remember = None
        for index in range(len(self.browsers)):
            self.observe(index)

    @precondition(lambda self: len(self.keys) > 1)
    @rule()
    def old_keys_removed(self) -> None:
        """The fallbacks go: cookies signed with them are unverified, and
        anonymous, and reads leave them alone.
        """
        assert self.app is not None
        self.app.config["SECRET_KEY_FALLBACKS"] = []
        current = len(self.keys) - 1
        for browser in self.browsers:
            if browser.key != current:
                browser.session = None
        self.keys = [self.keys[-1]]
        for browser in self.browsers:
            browser.key = 0
        for index, browser in enumerate(self.browsers):
            before = self.cookie(browser)
            self.observe(index)
            assert self.cookie(browser) == before

    @rule(index=browser_index)
    def a_worker_with_a_foreign_key_reads(self, index: int) -> None:
        """A worker started with another key (a rolling deploy) serves a
        read: the visitor is anonymous there, and the cookie is left alone.
        """
        assert self.app is not None
        browser = self.browsers[index]
        key, fallbacks = self.app.secret_key, self.app.config.get("SECRET_KEY_FALLBACKS")
        self.app.secret_key = "a key this app never had"
        self.app.config["SECRET_KEY_FALLBACKS"] = []
        try:
            response = browser.client.get("/observe")
        finally:
            self.app.secret_key = key
            self.app.config["SECRET_KEY_FALLBACKS"] = fallbacks
        assert response.json is not None and response.json["user_id"] is None
        assert "Set-Cookie" not in response.headers
        self.observe(index)

    # -- invariants across browsers -------------------------------------------------

    @invariant()
    def dead_cookies_stay_dead(self) -> None:
        """4. A dead cookie is anonymous, every time (the newest few checked)."""
        if self.app is None:
            return
        for cookie in self.dead[-3:]:
            stranger = self.app.test_client()
            stranger.set_cookie("session", cookie)
            seen = stranger.get("/observe").json
            assert seen is not None and seen["user_id"] is None and seen["data"] == {}, cookie

    @invariant()
    def each_user_has_the_sessions_the_model_has(self) -> None:
        """5. One browser, one stored session: the rows of each user are the
        model's (the sessions of both browsers, and those a closed browser
        left behind until they expire).
        """
        if self.app is None:
            return
        with self.app.test_request_context():
            for user in self.users:
                sessions = get_sessions_for_user(user)
                expected = [s for s in self.model.stored if s.user == user]
                assert len(sessions) == len(expected), (user, sessions, expected)
                assert sorted(s.created_at for s in sessions) == sorted(  # type: ignore[type-var]
                    s.created for s in expected
                )


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql", "redis"], indirect=True)
def test_the_lifecycle_follows_the_model(backend: Backend) -> None:
    users = [backend.add_user(f"model-{i}@example.com") for i in range(3)]

    class Machine(LifecycleMachine):
        pass

    Machine.backend = backend
    Machine.users = users
    RUNS.update(sequences=0, requests=0)
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
    print(f"{backend.name}: {RUNS['sequences']} sequences, {RUNS['requests']} steps with a request")


# -- sequences the model once found failing, replayed ---------------------------------

#: Each: the carry-over setting, the steps (as Hypothesis printed them), and
#: what was wrong before the fix.
FOUND: list[tuple[str, list[tuple[str, dict[str, t.Any]]], str]] = [
    (
        "cart",
        [
            ("plain_view_writes_a_user_key", {"index": 0, "key": "user_id", "user": 0}),
            (
                "flask_login_login_user",
                {"index": 0, "user": 1, "fresh": False, "remember": False},
            ),
        ],
        "login_user(Bob) on a session a plain view had linked to Ada by"
        " user_id: the session stayed Ada's with Bob's _user_id in its data,"
        " and the next request ended it (cookie expired, Bob logged out)",
    ),
    (
        "all",
        [
            ("login_that_succeeds", {"index": 0, "user": 0}),
            ("plain_view_writes_a_user_key", {"index": 0, "key": "_user_id", "user": 1}),
        ],
        "a view writing _user_id = Bob on Ada's session (linked by user_id)"
        " kept Ada linked and the token unchanged, while Flask-Login saw Bob",
    ),
    (
        "all",
        [
            ("plain_view_writes_a_user_key", {"index": 0, "key": "user_id", "user": 0}),
            (
                "flask_login_login_user",
                {"index": 0, "user": 0, "fresh": False, "remember": False},
            ),
        ],
        'carry-over "*" carried the old user key (and _fresh) into the re-login',
    ),
]


@pytest.mark.parametrize("backend", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("carry", "steps", "defect"), FOUND, ids=[f"found-{i}" for i in range(len(FOUND))]
)
def test_sequences_the_model_found(
    backend: Backend, carry: str, steps: list[tuple[str, dict[str, t.Any]]], defect: str
) -> None:
    class Machine(LifecycleMachine):
        pass

    Machine.backend = backend
    Machine.users = [backend.add_user(f"found-{i}@example.com") for i in range(3)]
    machine = Machine()
    machine.start(carry=carry)
    for name, arguments in steps:
        getattr(machine, name)(**arguments)
        machine.dead_cookies_stay_dead()
        machine.each_user_has_the_sessions_the_model_has()
    machine.teardown()
