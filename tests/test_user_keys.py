"""User ids: one conversion to the user key's type, and UnknownUserError for
anything that cannot be a user's key -- never a 503, an OverflowError or
another error from the database or its driver.
"""

from __future__ import annotations

import typing as t
import uuid

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import MemoryStore
from flask_kitsession import SQLAlchemyStore
from flask_kitsession import UnknownUserError
from flask_kitsession.userkey import UserKeyType

from .support.backends import Backend
from .support.keyed_users import make_keyed_login_app
from .support.servers import RedisKeyspace


@pytest.mark.parametrize("where", ["sql", "redis"])
def test_uuid_keys_with_flask_login(
    empty_database_url: str, redis_keyspace: RedisKeyspace, where: str
) -> None:
    """Flask-Login keeps the id as a string; kitsession converts it to the
    UUID once: the login works (SQLite crashed on 'str'.hex), the session row
    names the user, and a later write is not a fresh login (PostgreSQL and
    MariaDB compared "str" with UUID and said it was).
    """
    config: dict[str, t.Any] = {}
    if where == "redis":
        prefix = redis_keyspace.new_prefix()
        config = {"KITSESSION_REDIS_URL": redis_keyspace.url, "KITSESSION_REDIS_PREFIX": prefix}
    login_app = make_keyed_login_app(empty_database_url, "uuid", config=config)
    try:
        ada = login_app.add_user(1, "ada")
        client = login_app.app.test_client()
        assert client.post("/login/1").status_code == 200
        assert client.get("/profile").json == {"name": "ada", "id": str(ada)}
        store = login_app.app.extensions["kitsession"].store
        [record] = list(store.iterate(user_id=str(ada)))
        assert record.user_id == ada and type(record.user_id) is uuid.UUID
        logged_in_at = record.authenticated_at
        assert client.post("/set", data={"theme": "dark"}).status_code == 200
        [record] = list(store.iterate(user_id=ada))
        assert record.authenticated_at == logged_in_at
        assert record.data["theme"] == "dark"
        assert client.get("/profile").json == {"name": "ada", "id": str(ada)}
    finally:
        if where == "redis":
            redis_keyspace.delete(prefix)
        login_app.close()


OUT_OF_RANGE = [2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, str(2**63), "9" * 30]
NOT_INTEGERS = ["abc", "1.5", "٤٢", " 42", "4_2", 1.0, True, b"42", uuid.UUID(int=42)]


@pytest.mark.parametrize("value", OUT_OF_RANGE + NOT_INTEGERS, ids=repr)
def test_ids_no_integer_key_holds_are_unknown_users(
    app: Flask, client: FlaskClient, backend: Backend, value: t.Any
) -> None:
    """On every backend: UnknownUserError, nothing stored; never a 503
    (PostgreSQL, MariaDB) nor an OverflowError (SQLite). Where the key type
    refuses the id, the message names the key; where the id is a possible
    key (2**40 on SQLite, any int for a loader without a column), the user
    is not found. The id itself is never in the message: it is session data.
    """
    backend.add_user("ada@example.com")

    @app.post("/claim")
    def claim() -> str:
        session["user_id"] = value
        return "claimed"

    client.post("/set", data={"cart": "book"})
    before = backend.rows()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(UnknownUserError) as info:
        client.post("/claim")
    assert repr(value) not in str(info.value) and str(value) not in str(info.value)
    assert backend.rows() == before
    assert client.get("/get").json == {"cart": "book"}


def test_the_range_is_the_key_columns_on_its_database(sql_backend: Backend) -> None:
    store = sql_backend.store
    assert isinstance(store, SQLAlchemyStore)
    kind = store.user_key_type
    assert kind.min_value is not None and kind.max_value is not None
    # kitsession's own user table: Integer, 32 bits (64 on SQLite).
    bits = 64 if sql_backend.name == "sqlite" else 32
    assert (kind.min_value, kind.max_value) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    assert store.coerce_user_id(str(kind.max_value)) == kind.max_value
    with pytest.raises(UnknownUserError):
        store.coerce_user_id(kind.max_value + 1)
    # Lookups by an id no user can have find nothing, as for any unknown id.
    assert store.load_user(kind.max_value + 1) is None
    assert store.load_user("abc") is None
    assert store.delete_all_for_user(2**70) == 0
    assert list(store.iterate(user_id="abc")) == []


@pytest.mark.parametrize(
    ("column", "dialect", "expected"),
    [
        (sa.BigInteger, "postgresql", (-(2**63), 2**63 - 1)),
        (sa.SmallInteger, "postgresql", (-(2**15), 2**15 - 1)),
        (sa.Integer, "sqlite", (-(2**63), 2**63 - 1)),
        (sa.dialects.mysql.INTEGER(unsigned=True), "mysql", (0, 2**32 - 1)),
        (sa.dialects.mysql.TINYINT(), "mysql", (-128, 127)),
    ],
)
def test_integer_ranges(column: t.Any, dialect: str, expected: tuple[int, int]) -> None:
    from sqlalchemy.dialects import mysql
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.dialects import sqlite

    dialects = {"postgresql": postgresql, "sqlite": sqlite, "mysql": mysql}
    key = sa.Column("id", column, primary_key=True)
    kind = UserKeyType.for_column(key, dialects[dialect].dialect())
    assert (kind.min_value, kind.max_value) == expected


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("str", ["user-1", 42, uuid.UUID(int=1)], ["x" * 37, "a\x00b", "\ud800", 1.5, b"user-1"]),
        (
            "uuid",
            [str(uuid.UUID(int=1)), uuid.UUID(int=1).hex, uuid.UUID(int=1)],
            ["not-a-uuid", uuid.UUID(int=1).int, "x" * 100, b"1" * 16],
        ),
    ],
)
def test_string_and_uuid_keys(
    empty_database_url: str, key: str, good: list[t.Any], bad: list[t.Any]
) -> None:
    login_app = make_keyed_login_app(empty_database_url, key)
    try:
        store = login_app.app.extensions["kitsession"].store
        for value in good:
            coerced = store.coerce_user_id(value)
            assert type(coerced) is store.user_id_type
            assert store.coerce_user_id(coerced) == coerced
        for value in bad:
            with pytest.raises(UnknownUserError):
                store.coerce_user_id(value)
            assert store.load_user(value) is None
    finally:
        login_app.close()


def test_flask_logins_loader_turns_away_ids_no_user_has(empty_database_url: str) -> None:
    """A remember cookie (or a stale session) naming "abc" for integer keys:
    anonymous, not a 500.
    """
    login_app = make_keyed_login_app(empty_database_url, "int")
    try:
        from flask_kitsession.login import load_user

        with login_app.app.test_request_context():
            for value in ("abc", str(2**63), "1" * 50, "1"):
                assert load_user(value) is None
    finally:
        login_app.close()


def test_memory_store_with_uuid_users() -> None:
    ada = uuid.UUID(int=7)
    store = MemoryStore(user_loader={ada: "ada"}.get, user_id_type=uuid.UUID)
    assert store.user_id_from({"_user_id": str(ada)}) == ada
    assert store.load_user(str(ada)) == "ada"
    with pytest.raises(UnknownUserError, match=r"session\['_user_id'\]"):
        store.user_id_from({"_user_id": "nope"})


@pytest.mark.parametrize("key", ["str", "int"])
def test_only_the_exact_id_links_a_user(empty_database_url: str, key: str) -> None:
    """MariaDB's collation finds "user-1" for "USER-1" and "user-1 ", and
    SQLite under Flask-SQLAlchemy's engine enforces no foreign key: on every
    database, an id that is not exactly a user's is UnknownUserError.
    """
    login_app = make_keyed_login_app(empty_database_url, key)
    app = login_app.app
    try:
        ada = login_app.add_user(1, "ada")
        store = app.extensions["kitsession"].store
        wrong = ["USER-1", "user-1 ", "user-2"] if key == "str" else [999, 2]
        pending: list[t.Any] = []

        @app.post("/claim")
        def claim() -> str:
            session["_user_id"] = pending[-1]
            return "claimed"

        app.config["PROPAGATE_EXCEPTIONS"] = True
        for value in wrong:
            pending.append(value)
            client = app.test_client()
            with pytest.raises(UnknownUserError):
                client.post("/claim")
            assert store.load_user(value) is None
        assert login_app.session_rows() == []
        pending.append(ada)
        assert app.test_client().post("/claim").text == "claimed"
        [row] = login_app.session_rows()
        assert row["user_id"] == ada
    finally:
        login_app.close()
