"""Secrets: key rotation, where tokens come from, and that only their hash
is kept anywhere (the store, raw; the logs). See docs/security.md.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import regenerate
from flask_kitsession import tokens

from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.backends import MemoryBackend
from .support.backends import RedisBackend
from .support.backends import SQLBackend
from .support.clients import log_in
from .support.clients import session_cookie

pytestmark = pytest.mark.reliability


def token_of(client: FlaskClient) -> str:
    cookie = session_cookie(client)
    assert cookie is not None
    return cookie.rsplit(".", 1)[0]


def data_of(app: Flask, cookie: str) -> dict[str, t.Any]:
    client = app.test_client(use_cookies=False)
    data = client.get("/get", headers={"Cookie": f"session={cookie}"}).json
    assert isinstance(data, dict)
    return data


# -- rotation ----------------------------------------------------------------------


def test_rotating_keys_keeps_sessions_until_their_key_is_removed(
    app: Flask, backend: Backend
) -> None:
    """Three keys in turn: each cookie works while the key that signed it is
    SECRET_KEY or in SECRET_KEY_FALLBACKS, and no longer once it is removed;
    a cookie handed out again is signed with the newest key.
    """

    def signed_with(key: str, fallbacks: list[str]) -> str:
        app.config.update(SECRET_KEY=key, SECRET_KEY_FALLBACKS=fallbacks)
        client = app.test_client()
        assert client.post("/set", data={"key": key}).status_code == 200
        cookie = session_cookie(client)
        assert cookie is not None
        return cookie

    first = signed_with(SECRET_KEY, [])
    second = signed_with("second key", [SECRET_KEY])
    # The first session writes again under the second key: it gets its cookie
    # signed anew, with the newest key.
    client = app.test_client()
    client.set_cookie("session", first)
    client.post("/set", data={"again": "yes"})
    first_resigned = session_cookie(client)
    assert first_resigned is not None and first_resigned != first
    assert first_resigned.rsplit(".", 1)[0] == first.rsplit(".", 1)[0]
    third = signed_with("third key", ["second key", SECRET_KEY])

    for cookie, key in ((first, SECRET_KEY), (second, "second key"), (third, "third key")):
        assert data_of(app, cookie)["key"] == key

    app.config["SECRET_KEY_FALLBACKS"] = ["second key"]
    assert data_of(app, first) == {}
    assert data_of(app, first_resigned)["again"] == "yes"
    assert data_of(app, second)["key"] == "second key"

    app.config["SECRET_KEY_FALLBACKS"] = []
    assert data_of(app, second) == {}
    assert data_of(app, first_resigned) == {}
    assert data_of(app, third)["key"] == "third key"
    # Putting a key back makes its cookies work again: they were refused for
    # their signature, and their sessions were never deleted.
    app.config["SECRET_KEY_FALLBACKS"] = ["second key"]
    assert data_of(app, second)["key"] == "second key"


# -- tokens ------------------------------------------------------------------------


def test_tokens_come_from_secrets_with_256_bits(
    app: Flask, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every token a session gets (a new session, a login, regenerate())
    is secrets.token_urlsafe(32): 256 bits from the OS's CSPRNG.
    """
    made: list[tuple[int, str]] = []
    token_urlsafe = secrets.token_urlsafe

    def spy(nbytes: int | None = None) -> str:
        token = token_urlsafe(nbytes)
        made.append((t.cast(int, nbytes), token))
        return token

    # flask_kitsession.tokens looks the function up on the module at each call.
    monkeypatch.setattr(secrets, "token_urlsafe", spy)

    @app.post("/regenerate")
    def regenerate_view() -> str:
        regenerate()
        return "ok"

    client = app.test_client()
    client.post("/set", data={"a": "1"})
    log_in(client, backend.add_user("ada@example.com"))
    client.post("/regenerate")
    issued = [token_of(client)]
    assert len(made) == 3
    assert all(nbytes == 32 for nbytes, _ in made)
    assert issued == [made[-1][1]]
    for _, token in made:
        raw = base64.urlsafe_b64decode(token + "=")
        assert len(raw) * 8 == 256 >= 128


def test_tokens_look_random(app: Flask) -> None:
    """A weak sanity check (it cannot prove randomness, only catch a broken
    source): 2,000 tokens, all different, every one of the 256 bit positions
    set in roughly half of them.
    """
    made = [base64.urlsafe_b64decode(tokens.new_token() + "=") for _ in range(2000)]
    assert len(set(made)) == len(made)
    for bit in range(256):
        ones = sum((token[bit // 8] >> (bit % 8)) & 1 for token in made)
        # Binomial(2000, 1/2): mean 1000, sd about 22; 7 sd either side.
        assert 845 < ones < 1155, (bit, ones)


# -- only the hash is kept --------------------------------------------------------


def raw_store_contents(backend: Backend) -> bytes:
    """Everything the store holds, as raw as the test can read it: every row
    of every table (SQL), the database files themselves (SQLite), every key
    and value under the store's prefix (Redis), the memory store's rows.
    """
    if isinstance(backend, SQLBackend):
        parts: list[bytes] = []
        engine = backend.engine
        with engine.connect() as connection:
            quote = connection.dialect.identifier_preparer.quote
            for table in sa.inspect(connection).get_table_names():
                rows = connection.execute(sa.text(f"SELECT * FROM {quote(table)}"))
                parts.extend(repr(tuple(row)).encode() for row in rows)
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database:
            for suffix in ("", "-wal", "-shm"):
                path = Path(database + suffix)
                if path.exists():
                    parts.append(path.read_bytes())
        return b"\n".join(parts)
    if isinstance(backend, RedisBackend):
        admin = backend.keyspace.admin
        parts_text: list[str] = []
        for key in backend.keyspace.keys(backend.store.prefix):
            parts_text.append(key)
            kind = admin.type(key)
            if kind == "hash":
                fields = t.cast(dict[str, str], admin.hgetall(key))
                parts_text.extend(f"{name}={value}" for name, value in fields.items())
            elif kind == "set":
                parts_text.extend(t.cast(set[str], admin.smembers(key)))
            else:  # pragma: no cover - the store writes hashes and sets only
                parts_text.append(repr(admin.dump(key)))
        return "\n".join(parts_text).encode()
    assert isinstance(backend, MemoryBackend)
    return repr(backend.store._rows).encode()


def forms_of(token: str, cookie: str) -> list[bytes]:
    raw = base64.urlsafe_b64decode(token + "=")
    return [
        token.encode(),
        cookie.encode(),
        raw,
        raw.hex().encode(),
        token.encode().hex().encode(),
        base64.b64encode(raw).rstrip(b"="),
        # A long slice: a token cut or re-encoded partly is still found.
        token[5:30].encode(),
        token[5:30].encode().hex().encode(),
    ]


def test_only_the_sha256_of_a_token_is_stored_or_logged(
    app: Flask, backend: Backend, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A session's whole life (created, read, touched, changed, a login,
    regenerate(), a logout) and bad cookies: afterwards the raw store holds
    the SHA-256 of each token, and no token, no cookie, in any form; nor do
    the logs.
    """

    @app.post("/regenerate")
    def regenerate_view() -> str:
        regenerate()
        session["after"] = "regenerate"
        return "ok"

    client = app.test_client()
    issued: list[tuple[str, str]] = []

    def note() -> None:
        cookie = session_cookie(client)
        if cookie is not None and (cookie.rsplit(".", 1)[0], cookie) not in issued:
            issued.append((cookie.rsplit(".", 1)[0], cookie))

    with caplog.at_level(logging.DEBUG):
        client.post("/set", data={"visitor": "yes"})
        note()
        client.get("/get")
        clock.advance(minutes=5)
        client.get("/get")
        log_in(client, backend.add_user("ada@example.com"))
        note()
        client.post("/set", data={"more": "data"})
        client.post("/regenerate")
        note()
        kept = app.test_client()
        log_in(kept, backend.add_user("bob@example.com"))
        issued.append((token_of(kept), t.cast(str, session_cookie(kept))))
        stale = issued[0][1]
        other = app.test_client()
        other.set_cookie("session", stale)
        other.get("/get")
        other.set_cookie("session", stale[:-3] + "abc")
        other.get("/get")
        client.post("/logout")

    assert len(issued) == 4
    contents = raw_store_contents(backend)
    # The session still alive (bob's) is stored under the SHA-256 of its
    # token, computed here independently of the library.
    assert hashlib.sha256(issued[-1][0].encode()).hexdigest().encode() in contents
    for token, cookie in issued:
        for form in forms_of(token, cookie):
            assert form not in contents, (backend.name, form)
            assert form.decode("latin-1") not in caplog.text
    assert caplog.text.count("Ignored a session cookie") == 1
