"""Review 4: attacks on the promises of README.md and docs/security.md
(sections 1-9) that the first three reviews left alone: session data at the
edges of what each database holds, user ids of every key type, the command
line, the testing helpers, signals, several apps on one store, Redis.

Each test asserts the PROMISED behaviour, and its docstring quotes the
promise and says what the attack does. A test that fails is a broken
promise; a test that passes is a promise that held. Only this file is the
reviewer's work; fixtures come from tests/conftest.py and tests/support/.
"""

from __future__ import annotations

import typing as t
import uuid
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pytest
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient
from markupsafe import Markup

from flask_kitsession import current_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import RedisStore
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import SessionDataError
from flask_kitsession import signals
from flask_kitsession import testing as kit_testing
from flask_kitsession import UnknownUserError

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.data import same
from .support.servers import RedisKeyspace

COOKIE = "session"


# -- apps ------------------------------------------------------------------------


def make_app(backend: Backend, clock: Clock, **config: t.Any) -> Flask:
    """The views of tests/support/apps.py, plus /put and /take, which store and
    read back the value the test puts in ``app.config["VALUE"]``, and /json,
    which stores what a client posts as JSON.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
    app.config.update(config)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)
    holder: dict[str, t.Any] = {}
    app.extensions["review4"] = holder

    @app.post("/put")
    def put() -> str:
        session["v"] = holder["value"]
        return "ok"

    @app.get("/take")
    def take() -> str:
        holder["got"] = dict(session)
        return "ok"

    @app.post("/json")
    def store_json() -> str:
        session["doc"] = request.get_json()
        return "ok"

    @app.get("/info")
    def info() -> t.Any:
        s = current_session
        return jsonify(user_id=s.user_id, data=dict(session))

    return app


def login(client: FlaskClient, uid: t.Any) -> str:
    response = client.post("/login", data={"user_id": str(uid)})
    assert response.status_code == 200, response.data
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def round_trip(backend: Backend, clock: Clock, value: t.Any) -> tuple[bool, t.Any]:
    """Store ``value`` in a session through a request and read it back in the
    next one. Returns (refused where set, value read back); a 5xx fails.
    """
    app = make_app(backend, clock, TESTING=False)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    holder = app.extensions["review4"]
    holder["value"] = value
    client = app.test_client()
    try:
        response = client.post("/put")
    except SessionDataError:
        return True, None
    assert response.status_code == 200, (response.status_code, response.data[:300])
    assert client.get("/take").status_code == 200
    return False, holder["got"].get("v")


def nested_lists(depth: int) -> t.Any:
    value: t.Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


# -- 6. session data at the edges of what each database holds -------------------


@pytest.mark.parametrize("depth", [31, 40, 100])
def test_nested_data_is_stored_exactly_or_refused_where_set(
    backend: Backend, clock: Clock, depth: int
) -> None:
    """security.md §6: 'A value is stored and read back exactly (same types,
    text and keys) on every backend, or refused where the app sets it, with
    SessionDataError'; session-data.md refuses 'data nested too deeply'.

    Attack: lists nested 31, 40 and 100 deep (Python itself nests ~1000).
    MariaDB's JSON column is a LONGTEXT with CHECK (json_valid(...)), and
    MariaDB's json_valid() returns 0 from depth 32 on. Seen: on MariaDB the
    assignment is accepted and the save fails with a 503
    (StoreUnavailableError: a CHECK constraint), the other backends store it.
    """
    value = nested_lists(depth)
    refused, got = round_trip(backend, clock, value)
    if not refused:
        assert same(got, value)


def test_client_json_nested_deeply_never_gets_a_503(backend: Backend, clock: Clock) -> None:
    """README/brief: 'never a 503 for what a client or app sends'; security.md §3:
    a 503 is for 'While the store is unreachable'.

    Attack: a client posts a JSON document nested 40 deep (well within what
    Flask's JSON parser reads) and the view keeps it in the session, as an
    app keeping a draft or a form state would. Seen on MariaDB: 503, with
    the store perfectly reachable (MariaDB's json_valid() refuses depth 32+).
    Allowed outcomes: 200 with the document stored, or a refusal the app
    sees where it set the value (SessionDataError, a 500 in production).
    """
    app = make_app(backend, clock, TESTING=False)
    document = nested_lists(40)
    response = app.test_client().post("/json", json=document)
    assert response.status_code != 503, response.data[:300]


def test_tuples_nested_within_the_limit_once_tagged(backend: Backend, clock: Clock) -> None:
    """session-data.md: a tuple is stored as '{" t": [...]}' and 'read back as a
    tuple'; a value is 'stored and read back exactly ... or refused where it
    is set'.

    Attack: tags double the depth: 17 nested tuples are 34 levels of JSON.
    Seen on MariaDB: accepted where set, then a 503 at the save.
    """
    value: t.Any = ()
    for _ in range(16):
        value = (value,)
    refused, got = round_trip(backend, clock, value)
    if not refused:
        assert same(got, value)


class MyInt(int):
    pass


class MyFloat(float):
    pass


class MyBytes(bytes):
    pass


class MyList(list):  # type: ignore[type-arg]
    pass


class MyDict(dict):  # type: ignore[type-arg]
    pass


class MyMarkup(Markup):
    pass


class MyDatetime(datetime):
    pass


class MyUUID(uuid.UUID):
    pass


class MyTuple(tuple):  # type: ignore[type-arg]
    pass


def subclass_values() -> dict[str, t.Any]:
    return {
        "int": MyInt(5),
        "float": MyFloat(1.5),
        "bytes": MyBytes(b"ab"),
        "list": MyList([1]),
        "dict": MyDict(a=1),
        "markup": MyMarkup("<b>x</b>"),
        "datetime": MyDatetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        "uuid": MyUUID(int=7),
        "tuple": MyTuple((1, 2)),
    }


@pytest.mark.parametrize("backend", ["memory", "sqlite"], indirect=True)
@pytest.mark.parametrize("name", list(subclass_values()))
def test_subclasses_of_stored_types_are_refused_or_come_back_as_themselves(
    backend: Backend, clock: Clock, name: str
) -> None:
    """security.md §6: 'Refused: ... subclasses that would come back as the plain
    type (an IntEnum, an OrderedDict, a named tuple)'; session-data.md:
    'subclasses of the stored types, which would come back as the plain type'.

    Attack: the review-1 file tried a str subclass; here a subclass of every
    other stored type (int, float, bytes, list, dict, Markup, datetime,
    UUID, tuple), as an app's own types or a library's (pendulum's
    DateTime is a datetime subclass). Each must be refused where set, or
    come back of its own type.
    """
    value = subclass_values()[name]
    refused, got = round_trip(backend, clock, value)
    if not refused:
        assert type(got) is type(value), (type(got), type(value))


@pytest.mark.parametrize(
    "offset",
    [timedelta(seconds=1), timedelta(hours=-23, minutes=-59, seconds=-59, microseconds=-1)],
    ids=["one second", "almost minus a day"],
)
def test_datetimes_with_odd_utc_offsets_round_trip(
    backend: Backend, clock: Clock, offset: timedelta
) -> None:
    """session-data.md: a datetime is read back as 'the same datetime:
    microseconds, naive or aware, the same UTC offset'.

    Attack: offsets Python allows but few expect: one of a single second, and
    one of -23:59:59.999999 (isoformat writes seconds and microseconds).
    """
    value = datetime(2026, 6, 1, 12, 30, 15, 123456, tzinfo=timezone(offset))
    refused, got = round_trip(backend, clock, value)
    if not refused:
        assert same(got, value), (got, value)


@pytest.mark.parametrize("backend", ["memory", "postgresql", "mariadb"], indirect=True)
def test_a_zoneinfo_without_a_key_is_refused_where_set_or_round_trips(
    backend: Backend, clock: Clock
) -> None:
    """session-data.md: 'with a zoneinfo zone, {" kt": [wall time, zone, fold]}';
    a value is stored exactly 'or refused where it is set'.

    Attack: a ZoneInfo read from a file (ZoneInfo.from_file), whose key is
    None: there is no zone name to write.
    """
    import zoneinfo

    path = Path("/usr/share/zoneinfo/Europe/Berlin")
    if not path.exists():
        pytest.skip("no tzdata file")
    with path.open("rb") as f:
        zone = zoneinfo.ZoneInfo.from_file(f)
    value = datetime(2026, 7, 1, 12, tzinfo=zone)
    refused, got = round_trip(backend, clock, value)
    if not refused:
        assert got == value and got.utcoffset() == value.utcoffset()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb", "redis"], indirect=True)
def test_numbers_at_the_edges_round_trip(backend: Backend, clock: Clock) -> None:
    """session-data.md: int and float are read back 'as written'; floats 'JSONB
    would change' are encoded.

    Attack: integers beyond 64 bits and the extreme floats (subnormal,
    largest, tiny without exponent in repr), together.
    """
    value = [
        2**64,
        -(2**63) - 1,
        10**300,
        -(10**3000),
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        0.1,
        123456789.123,
        1e15,
        -1e-05,
        [0.30000000000000004, -0.0],
    ]
    refused, got = round_trip(backend, clock, value)
    assert not refused
    assert same(got, value), (got, value)


# -- 8. user ids of every key type -------------------------------------------------


def uuid_app(store: t.Any, clock: Clock) -> Flask:
    """An app whose users have UUID keys; /login takes the id as text."""
    from flask_kitsession import with_new_session

    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
    KitSession(app, store=store, clock=clock)

    @app.post("/login")
    @with_new_session
    def uuid_login() -> str:
        session["user_id"] = request.form["user_id"]
        return "in"

    @app.get("/who")
    def who() -> str:
        return str(current_session.user_id)

    return app


def uuid_store(kind: str, request: pytest.FixtureRequest, users: dict[t.Any, t.Any]) -> t.Any:
    if kind == "memory":
        return MemoryStore(user_loader=users.get, user_id_type=uuid.UUID)
    keyspace: RedisKeyspace = request.getfixturevalue("redis_keyspace")
    return RedisStore.from_url(
        keyspace.url, prefix=keyspace.new_prefix(), user_loader=users.get, user_id_type=uuid.UUID
    )


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_uuid_users_in_any_spelling_are_one_user_everywhere(
    kind: str, request: pytest.FixtureRequest, clock: Clock
) -> None:
    """session-data.md: a Uuid key accepts 'a UUID, or any text uuid.UUID() reads
    (hex, upper case, braces, urn:uuid:)'; 'Ids are converted once, where they
    come in'; security.md §2: once remove_all_sessions_for_user returns 'no
    revoked session is alive'.

    Attack: one user logs in on four devices, each writing the id in another
    spelling (as different clients or an API would send it), on the memory
    and Redis stores with user_id_type=uuid.UUID; then the devices page and
    "sign out everywhere" are asked with the canonical text.
    """
    user = uuid.UUID("6f1c1a1e-8d2b-4c3a-9e4f-0123456789ab")
    users = {user: {"id": user}}
    store = uuid_store(kind, request, users)
    app = uuid_app(store, clock)
    spellings = [str(user).upper(), user.hex, "{" + str(user) + "}", "urn:uuid:" + str(user)]
    clients = []
    for spelling in spellings:
        client = app.test_client()
        assert client.post("/login", data={"user_id": spelling}).status_code == 200
        assert client.get("/who").data.decode() == str(user)
        clients.append(client)
    with app.test_request_context():
        assert len(get_sessions_for_user(str(user))) == 4
        assert remove_all_sessions_for_user(str(user)) == 4
    for client in clients:
        assert client.get("/who").data.decode() == "None"
    store.close()


# -- the command line (docs/cli.md) -----------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql", "redis"], indirect=True)
def test_cli_takes_user_ids_as_text_in_every_accepted_spelling(
    backend: Backend, clock: Clock
) -> None:
    """docs/cli.md: 'revoke --user ID signs a user out everywhere'; 'list and
    revoke work on every store'; session-data.md: 'a command line passes
    text', and an integer key accepts 'its text in ASCII digits ("42",
    "+42", "042")'; 'Lookups by an id no user can have (load_user,
    delete_all_for_user, iterate) find nothing.'

    Attack: `list --user +N` and `revoke --user 0N` for an integer user N, and
    `list`/`revoke --user` with ids no integer key holds ("abc", " 1", a
    number beyond 64 bits): the latter find nothing, and say so, without a
    traceback.
    """
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    clients = [app.test_client() for _ in range(2)]
    for client in clients:
        login(client, ada)
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["kitsession", "list", "--user", f"+{ada}"])
    assert listed.exit_code == 0, listed.output
    assert "2 sessions." in listed.output
    for nobody in ["abc", f" {ada}", str(2**70)]:
        result = runner.invoke(args=["kitsession", "list", "--user", nobody])
        assert result.exit_code == 0 and "No sessions." in result.output, (nobody, result)
        result = runner.invoke(args=["kitsession", "revoke", "--user", nobody])
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            nobody,
            result.exception,
        )
        assert "Revoked 0 sessions" in result.output, (nobody, result.output)
    revoked = runner.invoke(args=["kitsession", "revoke", "--user", f"0{ada}"])
    assert revoked.exit_code == 0, revoked.output
    assert "Revoked 2 sessions" in revoked.output
    for client in clients:
        assert client.get("/info").get_json()["user_id"] is None


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"], indirect=True)
def test_cli_list_shows_nothing_a_terminal_would_act_on(backend: Backend, clock: Clock) -> None:
    """docs/cli.md: `list` prints a table, 'the user agent to 40' characters;
    the stored user agent comes from the client (security.md §6: request
    metadata).

    Attack: user agents carrying terminal escape sequences, a bidi override,
    a backspace and a line separator: a hostile client writes into an
    operator's terminal. Nothing but printable text may reach the output.
    """
    app = make_app(backend, clock)
    agents = ["\x1b]0;pwned\x07\x1b[2J", "ok\u202egnp.exe", "a\x08\x08b", "x\u2028y\x85z"]
    for agent in agents:
        response = app.test_client().post(
            "/set", data={"k": "v"}, environ_base={"HTTP_USER_AGENT": agent}
        )
        assert response.status_code == 200
    result = app.test_cli_runner().invoke(args=["kitsession", "list"])
    assert result.exit_code == 0, result.output
    assert "4 sessions." in result.output
    for line in result.output.splitlines():
        assert all(c.isprintable() for c in line), repr(line)
    assert result.output.count("\n") == 2 + 4  # header, four rows, the count


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"], indirect=True)
def test_cli_revoke_session_by_any_prefix_as_list_shows_it(backend: Backend, clock: Clock) -> None:
    """docs/cli.md: '`revoke --session` takes the whole id or its first 8 or
    more characters, as `list` shows them'.

    Attack: the 12 characters `list` shows, the same in upper case (pasted
    from a tool that shouts), and the whole id with surrounding whitespace;
    then the revoked device is anonymous.
    """
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    for form in ["short", "upper", "whole"]:
        client = app.test_client()
        login(client, ada)
        (record,) = [r for r in backend.rows() if r["user_id"] == ada]
        given = {
            "short": record["id"][:12],
            "upper": record["id"][:12].upper(),
            "whole": f"  {record['id']}\n",
        }[form]
        result = app.test_cli_runner().invoke(args=["kitsession", "revoke", "--session", given])
        assert result.exit_code == 0, (form, result.output)
        assert client.get("/info").get_json()["user_id"] is None, form


# -- the testing helpers (docs/testing.md) ----------------------------------------


class Received:
    """What the signals sent for one app: (signal name, keyword arguments)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.events: list[tuple[str, dict[str, t.Any]]] = []
        self._receivers: list[tuple[t.Any, t.Any]] = []

    def __enter__(self) -> Received:
        for name in ["session_created", "session_rotated", "session_authenticated"]:
            self._connect(name)
        self._connect("session_revoked")
        return self

    def _connect(self, name: str) -> None:
        signal = getattr(signals, name)

        def receiver(sender: t.Any, **kwargs: t.Any) -> None:
            self.events.append((name, kwargs))

        signal.connect(receiver, self.app, weak=False)
        self._receivers.append((signal, receiver))

    def __exit__(self, *exc: object) -> None:
        for signal, receiver in self._receivers:
            signal.disconnect(receiver, self.app)

    def names(self) -> list[str]:
        return [name for name, _ in self.events]


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"], indirect=True)
def test_testing_login_is_heard_as_a_login_and_revoke_as_an_admin_revocation(
    backend: Backend, clock: Clock
) -> None:
    """docs/testing.md: after login(client, user) 'Your app then sees what it
    sees after one of its own logins: ... the app's signals receivers hear of
    it'; 'fresh=False makes it a login that is not fresh'; revoke(client)
    'sends session_revoked with the reason "admin"'. docs/signals.md:
    session_authenticated's `fresh` is False 'for a login from Flask-Login's
    remember cookie or login_user(fresh=False)'; session_revoked carries
    user_id, session_id, count 'at least 1'.

    Attack: log a client in with fresh=False, then revoke it, and revoke it
    again (nothing left: nothing may be told).
    """
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    with Received(app) as received:
        stored = kit_testing.login(client, ada, fresh=False)
        assert received.names() == ["session_created", "session_authenticated"]
        authenticated = received.events[1][1]
        assert authenticated["user_id"] == ada and authenticated["fresh"] is False
        received.events.clear()
        assert kit_testing.revoke(client) is True
        assert kit_testing.revoke(client) is False
    assert received.names() == ["session_revoked"]
    revoked = received.events[0][1]
    assert revoked["reason"] == signals.ADMIN
    assert revoked["user_id"] == ada and revoked["count"] == 1
    assert revoked["session_id"] == stored.id


@pytest.mark.parametrize("backend", ["memory", "sqlite", "postgresql", "redis"], indirect=True)
def test_testing_login_with_data_naming_another_user_never_names_two_users(
    backend: Backend, clock: Clock
) -> None:
    """docs/testing.md: login(client, user, data={...}) 'puts more data in the
    session', and the app 'sees what it sees after one of its own logins';
    security.md §0: 'The key written names the user (user keys naming anyone
    else are dropped), so the session's link and Flask-Login's current_user
    never name two different users'.

    Attack: a test logs in as Ada with data={"user_id": bob} (a fixture that
    copies a user's session data, say). Allowed: refused outright, or a
    session whose link is Ada and whose data names nobody else.
    """
    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    client = app.test_client()
    try:
        kit_testing.login(client, ada, data={"user_id": bob, "cart": [1]})
    except (ValueError, TypeError, UnknownUserError):
        return
    seen = client.get("/info").get_json()
    assert seen["data"].get("cart") == [1]
    assert seen["user_id"] == ada
    assert seen["data"].get("user_id") in (None, ada), seen


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"], indirect=True)
def test_session_of_is_none_once_the_session_expired(backend: Backend, clock: Clock) -> None:
    """docs/testing.md: session_of(client) 'returns the stored session the
    client's cookie names, or None when the cookie names no live session
    (none yet, logged out, revoked, expired, tampered with)'.

    Attack: log in with the helper, move the app's clock past the idle
    timeout (an hour), ask session_of; then past the absolute timeout of a
    session kept in use.
    """
    app = make_app(
        backend,
        clock,
        KITSESSION_IDLE_TIMEOUT=timedelta(hours=1),
        KITSESSION_ABSOLUTE_TIMEOUT=timedelta(hours=3),
    )
    ada = backend.add_user("ada@example.com")
    client = app.test_client()
    kit_testing.login(client, ada)
    clock.advance(minutes=61)
    assert kit_testing.session_of(client) is None
    assert client.get("/info").get_json()["user_id"] is None
    kit_testing.login(client, ada)
    for _ in range(7):
        clock.advance(minutes=30)
        client.get("/info")
    assert kit_testing.session_of(client) is None
    assert client.get("/info").get_json()["user_id"] is None


@pytest.mark.parametrize("backend", ["memory", "redis"], indirect=True)
def test_testing_login_of_a_user_the_loader_does_not_find_fails_as_a_login_would(
    backend: Backend, clock: Clock
) -> None:
    """docs/testing.md: 'On a SQL store, a user id that no user has raises
    UnknownUserError, as a real login would fail.' security.md §6: 'Memory
    and Redis stores with a user_loader: SessionStore.check_user asks it
    before a session is first linked to the user' (so their real logins
    fail too).

    Attack: the helper on the memory and Redis stores with a user_loader,
    for a user that loader does not know. The app's own login refuses it
    (UnknownUserError); the helper must not leave a client that believes it
    is signed in while the app sees nobody.
    """
    app = make_app(backend, clock)
    with pytest.raises(UnknownUserError):
        app.test_client().post("/login", data={"user_id": "999"})
    client = app.test_client()
    try:
        kit_testing.login(client, 999)
    except UnknownUserError:
        return
    # Not refused: then the client must at least be signed in as 999.
    assert client.get("/info").get_json()["user_id"] == 999


# -- 6. no session data in error messages -------------------------------------------


@pytest.mark.parametrize("key", [b"4111-1111-1111-1111", ("4111-1111-1111-1111",), 41111111])
def test_a_refused_top_level_key_is_not_quoted_in_the_error(clock: Clock, key: t.Any) -> None:
    """security.md §6: refused 'with SessionDataError naming the path to it and
    why, never its value'; 'No session data appears in a log line or an
    exception message'; session-data.md: 'Messages name keys and types, never
    values.'

    Attack: a key that is not a string, at the top level (session[b"..."] =
    1, session[(card,)] = 1, session[4111...] = 1): the key is what the app
    meant to store (a card number, an e-mail as bytes). A non-string key one
    level down is described by its type only ('this one is a tuple'). Seen:
    at the top level the message quotes the key itself, "Session keys must
    be strings, got ('4111-1111-1111-1111',) (tuple)."
    """
    from .support.backends import MemoryBackend

    app = make_app(MemoryBackend(), clock)
    with app.test_request_context():
        s = app.session_interface.open_session(app, request)
        assert s is not None
        with pytest.raises(SessionDataError) as caught:
            s[key] = 1
    assert "4111" not in str(caught.value), str(caught.value)


# -- signals (docs/signals.md) -------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"], indirect=True)
def test_revocations_that_change_nothing_tell_nothing(backend: Backend, clock: Clock) -> None:
    """docs/signals.md: 'A helper that changes the store at once
    (remove_session, remove_all_sessions_for_user, ...) tells once its change
    is made, only if it changed something'; session_revoked's count is 'at
    least 1'; `flask kitsession revoke` sends reason "admin".

    Attack: `flask kitsession revoke --user` of a user with no session, then
    of one with two (one signal, count 2), then remove_session() of an id
    that is gone already.
    """
    from flask_kitsession import remove_session

    app = make_app(backend, clock)
    ada = backend.add_user("ada@example.com")
    bob = backend.add_user("bob@example.com")
    for _ in range(2):
        login(app.test_client(), ada)
    runner = app.test_cli_runner()
    with Received(app) as received:
        assert runner.invoke(args=["kitsession", "revoke", "--user", str(bob)]).exit_code == 0
        assert received.events == []
        assert runner.invoke(args=["kitsession", "revoke", "--user", str(ada)]).exit_code == 0
        assert received.names() == ["session_revoked"]
        assert received.events[0][1]["count"] == 2
        assert received.events[0][1]["reason"] == signals.ADMIN
        with app.app_context():
            assert remove_session("a" * 64) is False
    assert len(received.events) == 1


# -- several apps on one store -------------------------------------------------------


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"], indirect=True)
def test_apps_sharing_a_store_keep_their_own_size_limits(backend: Backend, clock: Clock) -> None:
    """serialization: 'An app's own limit (KITSESSION_MAX_DATA_SIZE) is passed
    here, so that a store shared by several apps keeps each app's.'
    security.md §6 refuses 'a value larger on its own than
    KITSESSION_MAX_DATA_SIZE'.

    Attack: one store object, two apps: a strict one (500 characters) and a
    lax one (100,000). The lax one stores 2,000 characters; the strict one
    refuses them where they are set, whichever app was set up last.
    """
    strict = make_app(backend, clock, KITSESSION_MAX_DATA_SIZE=500)
    lax = make_app(backend, clock, KITSESSION_MAX_DATA_SIZE=100_000)
    big = "x" * 2000
    assert lax.test_client().post("/set", data={"big": big}).status_code == 200
    with pytest.raises(SessionDataError):
        strict.test_client().post("/set", data={"big": big})
    strict_again = make_app(backend, clock, KITSESSION_MAX_DATA_SIZE=500)
    assert lax.test_client().post("/set", data={"big": big}).status_code == 200
    with pytest.raises(SessionDataError):
        strict_again.test_client().post("/set", data={"big": big})


# -- Redis (docs/redis.md) -----------------------------------------------------------


def test_redis_string_user_ids_with_key_syntax_sign_out_only_their_user(
    redis_keyspace: RedisKeyspace, clock: Clock
) -> None:
    """docs/redis.md: a user's sessions are indexed in '<prefix>user:{xy}:<user
    id>', so 'remove_all_sessions_for_user never scans the key space';
    security.md §2: 'once remove_all_sessions_for_user returns, no revoked
    session is alive ... and the kept session is intact'.

    Attack: string user ids made of the index key's own syntax: "a", "a}",
    "{a}", "a:b", ":", and an id that is another's index suffix
    ("{00}:a"). Signing out each must end exactly that user's sessions.
    """
    names = ["a", "a}", "{a}", "a:b", ":", "{00}:a", "*"]
    users = {name: {"id": name} for name in names}
    store = RedisStore.from_url(
        redis_keyspace.url,
        prefix=redis_keyspace.new_prefix(),
        user_loader=users.get,
        user_id_type=str,
    )
    from flask_kitsession import with_new_session

    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True)
    KitSession(app, store=store, clock=clock)

    @app.post("/login")
    @with_new_session
    def str_login() -> str:
        session["user_id"] = request.form["user_id"]
        return "in"

    @app.get("/who")
    def who() -> t.Any:
        return jsonify(user=current_session.user_id)

    clients: dict[str, list[FlaskClient]] = {}
    for name in names:
        clients[name] = []
        for _ in range(3):
            client = app.test_client()
            assert client.post("/login", data={"user_id": name}).status_code == 200
            clients[name].append(client)
    for name in names:
        with app.test_request_context():
            assert remove_all_sessions_for_user(name) == 3, name
        for other, its_clients in clients.items():
            expected = None if names.index(other) <= names.index(name) else other
            for client in its_clients:
                assert client.get("/who").get_json()["user"] == expected, (name, other)
    store.close()


@pytest.mark.parametrize("backend", ["memory", "sqlite", "redis"], indirect=True)
def test_cli_list_follows_the_apps_clock_on_expiry(backend: Backend, clock: Clock) -> None:
    """security.md §4: 'Idle and absolute timeouts are decided on the server'
    against the app's clock ('Redis never decides expiry'); docs/cli.md:
    `list [--include-expired]`.

    Attack: a session past its idle timeout on the app's clock but still
    within its Redis TTL (the app's clock is ahead): plain `list` must not
    show it, `--include-expired` shows it as expired, and `revoke --user`
    of its user signs out the live one only counting what it deletes.
    """
    app = make_app(backend, clock, KITSESSION_IDLE_TIMEOUT=timedelta(hours=1))
    ada = backend.add_user("ada@example.com")
    login(app.test_client(), ada)
    clock.advance(minutes=90)
    live = app.test_client()
    login(live, ada)
    runner = app.test_cli_runner()
    plain = runner.invoke(args=["kitsession", "list", "--user", str(ada)])
    assert plain.exit_code == 0 and "1 session." in plain.output, plain.output
    every = runner.invoke(args=["kitsession", "list", "--user", str(ada), "--include-expired"])
    if "2 sessions." in every.output:
        assert "expired" in every.output
    assert live.get("/info").get_json()["user_id"] == ada
