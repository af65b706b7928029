"""Property-based (hypothesis), on every backend: whatever a view puts in the
session is read back exactly by the next request, or refused with
SessionDataError on the line that set it, the stored session unchanged;
whatever names a user links that user, or is UnknownUserError, the stored
session unchanged. Never a 5xx from the store, and never session data in a
log record or a response body.

See docs/session-data.md for the rule these check.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import logging
import math
import re
import typing as t
import uuid
from pathlib import Path

import pytest
from flask import Flask
from flask import session
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st
from markupsafe import Markup

from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import SessionDataError
from flask_kitsession import UnknownUserError
from flask_kitsession.stores.base import USER_ID_KEYS

from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.data import same
from .support.keyed_users import KEY_TYPES
from .support.keyed_users import KeyedLoginApp
from .support.keyed_users import make_keyed_login_app
from .support.servers import RedisKeyspace

#: Put into every session next to the generated data, and inside generated
#: strings: it must never show up in a log record or a response body.
MARKER = "MARKER-9b2e4f-session-data"

#: Bounded, so the suite stays fast; no deadline (a database answers at its
#: own pace, and speed is never asserted). The fixtures (an app, a store)
#: serve every example, each of which uses a client and a session of its own.
DATA_EXAMPLES = 200
USER_ID_EXAMPLES = 50
PROPERTY = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# -- what a view may put in the session -----------------------------------------

#: Names of the tags (Flask's and kitsession's), and near misses.
TAG_NAMES = [" t", " di", " b", " m", " u", " d", " ks", " kk", " kf", " kt", " t__", " di__"]
#: What databases and JSON readers get wrong, mixed into all text.
AWKWARD = ["\x00", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d\ude00", "😀", "\u2028", "\x7f"]

characters = st.one_of(
    st.characters(),
    st.sampled_from([c for c in AWKWARD if len(c) == 1]),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.characters(max_codepoint=0x1F),
)
plain_texts = st.one_of(
    st.text(characters, max_size=12),
    # A surrogate pair: two code points to Python, one character to JSON.
    st.text(characters, max_size=3).map(lambda s: s + "\ud83d\ude00"),
    st.sampled_from(TAG_NAMES + AWKWARD),
)
#: Values carry the marker; keys do not (errors name the key, by design).
texts = st.one_of(
    plain_texts,
    st.just(MARKER),
    st.text(characters, max_size=4).map(lambda s: MARKER + s + "\x00"),
)
keys = plain_texts.filter(lambda k: k not in USER_ID_KEYS)
zones = st.one_of(
    st.none(),
    st.timezones(),
    st.timedeltas(
        min_value=-dt.timedelta(hours=23, minutes=59), max_value=dt.timedelta(hours=23, minutes=59)
    ).map(dt.timezone),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    st.binary(max_size=16),
    st.datetimes(timezones=zones),
    st.uuids(),
    texts.map(Markup),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=12,
)


class Level(enum.IntEnum):
    HIGH = 2


class Point(t.NamedTuple):
    x: int
    y: int


#: What must be refused: it cannot be stored, or would come back as something else.
UNSTORABLE = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    st.just(Level.HIGH),
    st.builds(Point, st.integers(), st.integers()),
    st.dictionaries(keys, scalars, max_size=2).map(collections.OrderedDict),
    st.dictionaries(st.integers(), scalars, min_size=1, max_size=2),
    st.binary(max_size=4).map(bytearray),
    st.frozensets(st.integers(), max_size=2),
    st.sets(st.integers(), max_size=2),
    st.dates(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.builds(object),
)
#: An unstorable value somewhere inside storable ones.
poisoned = st.recursive(
    UNSTORABLE,
    lambda inner: st.one_of(
        st.tuples(st.lists(values, max_size=2), inner).map(lambda pair: [*pair[0], pair[1]]),
        st.tuples(st.dictionaries(keys, values, max_size=2), keys, inner).map(
            lambda triple: {**triple[0], triple[1]: triple[2]}
        ),
        inner.map(lambda value: (value,)),
    ),
    max_leaves=3,
)

# -- the app under test ---------------------------------------------------------------


class Outcome:
    """What the views saw, for the test to check after each request."""

    def __init__(self) -> None:
        self.refused: list[tuple[str, Exception]] = []
        self.read: dict[str, t.Any] | None = None
        self.errors: list[BaseException] = []


def data_app(backend: Backend, outcome: Outcome) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, PROPAGATE_EXCEPTIONS=False)
    KitSession(app, store=backend.store)
    install_views(app, outcome)
    return app


def install_views(app: Flask, outcome: Outcome) -> None:
    pending: dict[str, t.Any] = {}

    @app.post("/baseline")
    def baseline() -> str:
        session["secret"] = MARKER
        session["count"] = 1
        return "ok"

    @app.post("/put/<how>")
    def put(how: str) -> str:
        for key, value in pending["items"]:
            try:
                if how == "setitem":
                    session[key] = value
                elif how == "update":
                    session.update({key: value})
                else:
                    session.setdefault(key, value)
            except SessionDataError as e:
                outcome.refused.append((key, e))
                raise
        return "ok"

    @app.get("/read")
    def read() -> str:
        outcome.read = dict(session)
        return "ok"

    @app.errorhandler(500)
    def failed(error: t.Any) -> tuple[str, int]:
        outcome.errors.append(getattr(error, "original_exception", error))
        return "failed", 500

    app.config["PENDING"] = pending


def leaks(caplog: pytest.LogCaptureFixture, bodies: list[bytes]) -> list[str]:
    """Log records and response bodies that carry the marker."""
    formatter = logging.Formatter()
    found = [formatter.format(r) for r in caplog.records if MARKER in formatter.format(r)]
    found += [body.decode("utf-8", "replace") for body in bodies if MARKER.encode() in body]
    return found


def forget_all(backend: Backend) -> None:
    for record in list(backend.store.iterate()):
        backend.store.delete(record.id)


@pytest.mark.reliability
def test_data_is_read_back_exactly_or_refused_where_set(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    outcome = Outcome()
    app = data_app(backend, outcome)
    caplog.set_level(logging.DEBUG)
    examples = {"stored": 0, "refused": 0}

    @settings(max_examples=DATA_EXAMPLES, **PROPERTY)  # type: ignore[arg-type]
    @given(
        items=st.lists(st.tuples(keys, values), max_size=4),
        poison=st.none() | st.tuples(keys, poisoned),
        how=st.sampled_from(["setitem", "update", "setdefault"]),
    )
    def check(items: list[tuple[str, t.Any]], poison: tuple[str, t.Any] | None, how: str) -> None:
        outcome.__init__()  # type: ignore[misc]
        caplog.clear()
        if how == "setdefault":
            # setdefault keeps the first value of a key.
            items = list({key: (key, value) for key, value in reversed(items)}.values())[::-1]
        expected = {"secret": MARKER, "count": 1}
        for key, value in items:
            if how != "setdefault" or key not in expected:
                expected[key] = value
        app.config["PENDING"]["items"] = items + ([poison] if poison is not None else [])
        client = app.test_client()
        bodies = []
        response = client.post("/baseline")
        assert response.status_code == 200
        before = backend.rows()
        response = client.post(f"/put/{how}")
        bodies.append(response.data)
        if poison is not None and not (how == "setdefault" and poison[0] in expected):
            # Refused on the line that set it, nothing stored.
            assert response.status_code == 500, response.data
            [(key, error)] = outcome.refused
            assert key == poison[0] and outcome.errors == [error]
            assert backend.rows() == before
            expected = {"secret": MARKER, "count": 1}
            examples["refused"] += 1
        else:
            assert response.status_code == 200, (response.data, outcome.errors)
            assert outcome.refused == []
            examples["stored"] += 1
        response = client.get("/read")
        bodies.append(response.data)
        assert response.status_code == 200
        assert outcome.read is not None and same(outcome.read, expected), (outcome.read, expected)
        assert leaks(caplog, bodies) == []
        forget_all(backend)

    check()
    print(f"\n{backend.name}: {examples}")
    assert examples["stored"] > 0 and examples["refused"] > 0


# -- user ids ---------------------------------------------------------------------


def id_forms(kind: str, user_id: t.Any) -> st.SearchStrategy[t.Any]:
    """The ways an app or Flask-Login names an existing user."""
    forms: list[t.Any] = [user_id, str(user_id)]
    if kind == "int":
        forms += [f"+{user_id}", f"0{user_id}"]
    if kind == "uuid":
        forms += [user_id.hex, str(user_id).upper(), f"{{{user_id}}}", f"urn:uuid:{user_id}"]
    return st.sampled_from(forms)


def near_misses(user_id: t.Any) -> st.SearchStrategy[t.Any]:
    text = str(user_id)
    return st.one_of(
        st.text(characters, min_size=1, max_size=2).map(lambda s: text + s),
        st.text(characters, min_size=1, max_size=2).map(lambda s: s + text),
        st.just(text[:-1]),
        # The same to a case-insensitive, trailing-space-blind collation
        # (MariaDB's), another id to every other database.
        st.sampled_from([text.upper(), text + " ", text.title()]),
    )


any_ids = st.one_of(
    st.integers(),
    st.sampled_from([2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 0, -1]),
    st.integers().map(str),
    texts,
    st.uuids(),
    st.uuids().map(str),
    st.floats(),
    st.booleans(),
    st.binary(max_size=16),
    st.lists(st.integers(), max_size=2),
    st.text(characters, min_size=37, max_size=60),
)


def named_user(kind: str, value: t.Any, users: list[t.Any]) -> t.Any:
    """The user ``value`` names under the documented rule, or ``None``."""
    for user_id in users:
        if type(value) is type(user_id) and value == user_id:
            return user_id
        if kind == "int" and type(value) is str and re.fullmatch(r"[+-]?[0-9]{1,40}", value):
            if int(value) == user_id:
                return user_id
        if kind == "str" and type(value) in (int, uuid.UUID) and str(value) == user_id:
            return user_id
        if kind == "uuid" and type(value) is str and len(value) <= 45:
            try:
                if uuid.UUID(value) == user_id:
                    return user_id
            except ValueError:
                pass
    return None


class Users(t.NamedTuple):
    """An app with two users (named "user 1" and "user 2") and its backend name."""

    app: Flask
    kind: str
    ids: list[t.Any]
    name: str
    rows: t.Callable[[], list[dict[str, t.Any]]]
    forget_all: t.Callable[[], None]


@pytest.fixture(
    params=[
        f"{where}-{kind}"
        for where in ("memory", "sqlite", "postgresql", "mariadb", "redis")
        for kind in KEY_TYPES
    ]
)
def users(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[Users]:
    """Two users keyed by int, str or UUID, and sessions in memory, in a SQL
    database (Flask-SQLAlchemy's, with Flask-Login), or in Redis (with users
    on SQLite).
    """
    where, kind = request.param.split("-")
    column_type, make_id = KEY_TYPES[kind]
    ids = [make_id(1), make_id(2)]
    if where == "memory":
        names = {user_id: f"user {n}" for n, user_id in enumerate(ids, 1)}
        store = MemoryStore(
            user_loader=lambda user_id: (
                _NamedUser(user_id, names[user_id]) if user_id in names else None
            ),
            user_id_type=type(ids[0]),
        )
        app = Flask(__name__)
        app.config.update(SECRET_KEY=SECRET_KEY, PROPAGATE_EXCEPTIONS=False)
        KitSession(app, store=store)

        def rows() -> list[dict[str, t.Any]]:
            return [
                {"id": r.id, "data": store.serializer.dumps(r.data), "user_id": r.user_id}
                for r in store.iterate()
            ]

        def forget() -> None:
            for record in list(store.iterate()):
                store.delete(record.id)

        yield Users(app, kind, ids, where, rows, forget)
        return
    config: dict[str, t.Any] = {"PROPAGATE_EXCEPTIONS": False}
    prefix = ""
    if where == "redis":
        keyspace: RedisKeyspace = request.getfixturevalue("redis_keyspace")
        prefix = keyspace.new_prefix()
        config.update(KITSESSION_REDIS_URL=keyspace.url, KITSESSION_REDIS_PREFIX=prefix)
        url = f"sqlite:///{tmp_path / 'users.sqlite3'}"
    elif where == "sqlite":
        url = f"sqlite:///{tmp_path / 'users.sqlite3'}"
    else:
        factory = request.getfixturevalue(
            "pg_schemas" if where == "postgresql" else "mariadb_databases"
        )
        factory.engine().dispose()
        url = str(factory.url_for_last())
    login_app: KeyedLoginApp = make_keyed_login_app(url, kind, config=config)
    for n in (1, 2):
        login_app.add_user(n, f"user {n}")
    store = login_app.app.extensions["kitsession"].store

    def store_rows() -> list[dict[str, t.Any]]:
        return [
            {"id": r.id, "data": store.serializer.dumps(r.data), "user_id": r.user_id}
            for r in store.iterate()
        ]

    def forget_sessions() -> None:
        for record in list(store.iterate()):
            store.delete(record.id)

    try:
        yield Users(login_app.app, kind, ids, where, store_rows, forget_sessions)
    finally:
        if prefix:
            keyspace.delete(prefix)
        login_app.close()


class _NamedUser(t.NamedTuple):
    id: t.Any
    name: str


@pytest.mark.reliability
def test_user_ids_link_their_user_or_are_unknown_users(
    users: Users, caplog: pytest.LogCaptureFixture
) -> None:
    app = users.app
    outcome = Outcome()
    seen: dict[str, t.Any] = {}
    pending: dict[str, t.Any] = {}

    @app.post("/baseline-data")
    def baseline_data() -> str:
        session["secret"] = MARKER
        return "ok"

    @app.post("/claim")
    def claim() -> str:
        session[pending["key"]] = pending["value"]
        return "ok"

    @app.get("/whoami")
    def whoami() -> str:
        seen["user_id"] = session.user_id  # type: ignore[attr-defined]
        user = session.user  # type: ignore[attr-defined]
        seen["name"] = None if user is None else user.name
        seen["data"] = dict(session)
        return "ok"

    @app.errorhandler(500)
    def failed(error: t.Any) -> tuple[str, int]:
        outcome.errors.append(getattr(error, "original_exception", error))
        return "failed", 500

    caplog.set_level(logging.DEBUG)
    examples = {"linked": 0, "unknown": 0}
    forms = st.one_of(*(id_forms(users.kind, user_id) for user_id in users.ids))
    misses = st.one_of(*(near_misses(user_id) for user_id in users.ids))

    @settings(max_examples=USER_ID_EXAMPLES, **PROPERTY)  # type: ignore[arg-type]
    @given(key=st.sampled_from(USER_ID_KEYS), value=st.one_of(forms, misses, any_ids))
    def check(key: str, value: t.Any) -> None:
        outcome.__init__()  # type: ignore[misc]
        seen.clear()
        caplog.clear()
        pending.update(key=key, value=value)
        client = app.test_client()
        bodies = []
        assert client.post("/baseline-data").status_code == 200
        before = users.rows()
        response = client.post("/claim")
        bodies.append(response.data)
        wanted = named_user(users.kind, value, users.ids)
        if wanted is None:
            assert response.status_code == 500, (value, response.data)
            [error] = outcome.errors
            if isinstance(value, float) and not math.isfinite(value):
                # No data at all: refused as data, where it is set.
                assert isinstance(error, SessionDataError), (value, error)
            else:
                assert isinstance(error, UnknownUserError), (value, error)
            assert users.rows() == before
            response = client.get("/whoami")
            assert response.status_code == 200
            assert seen["user_id"] is None and seen["data"] == {"secret": MARKER}
            examples["unknown"] += 1
        else:
            assert response.status_code == 200, (value, outcome.errors)
            response = client.get("/whoami")
            assert response.status_code == 200
            assert same(seen["user_id"], wanted), (value, seen)
            assert seen["name"] == f"user {users.ids.index(wanted) + 1}"
            # Linking a user is a login: which other keys the new session
            # keeps is the lifecycle's rule (KITSESSION_CARRY_OVER_KEYS).
            assert key in seen["data"] and same(seen["data"][key], value)
            examples["linked"] += 1
        bodies.append(response.data)
        assert leaks(caplog, bodies) == []
        users.forget_all()

    check()
    print(f"\n{users.name}-{users.kind}: {examples}")
    assert examples["linked"] > 0 and examples["unknown"] > 0


def test_the_oracle_agrees_with_the_documented_forms() -> None:
    """The test's own reading of the rule, on the examples the docs give."""
    assert named_user("int", "42", [42]) == 42
    assert named_user("int", "4_2", [42]) is None
    assert named_user("int", True, [1]) is None
    assert named_user("str", 42, ["42"]) == "42"
    ada = uuid.UUID(int=5)
    assert named_user("uuid", ada.hex, [ada]) == ada
    assert named_user("uuid", decimal.Decimal(5), [ada]) is None
