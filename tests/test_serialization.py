"""Session data: what it may hold, and clear errors for what it may not."""

from __future__ import annotations

import uuid
from datetime import datetime
from datetime import timezone

import pytest
from flask import Flask
from flask import session
from flask.testing import FlaskClient
from markupsafe import Markup

from flask_kitsession import SessionDataError
from flask_kitsession.serialization import SessionSerializer

from .support.backends import Backend

WHEN = datetime(2026, 11, 23, 12, 30, tzinfo=timezone.utc)


def test_flask_session_types_round_trip(app: Flask, client: FlaskClient) -> None:
    values = {
        "tuple": (1, "two"),
        "bytes": b"\x00\xff",
        "when": WHEN,
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "markup": Markup("<b>hi</b>"),
        "nested": {"list": [1, {"deep": (3, 4)}], " t": "a key that looks like a tag"},
        "unicode": "ünïcødé ✓",
    }

    @app.post("/store")
    def store() -> str:
        session.update(values)
        return "ok"

    @app.get("/check")
    def check() -> str:
        assert {key: session[key] for key in values} == values
        assert type(session["tuple"]) is tuple and type(session["markup"]) is Markup
        return "same"

    client.post("/store")
    assert client.get("/check").text == "same"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (object(), "cannot be stored as JSON"),
        ({1, 2}, "cannot be stored as JSON"),
        (float("nan"), "cannot be stored as JSON"),
    ],
)
def test_unserializable_data_is_refused_and_stored_data_kept(
    app: Flask, client: FlaskClient, backend: Backend, value: object, message: str
) -> None:
    @app.post("/bad")
    def bad() -> str:
        session["good"] = "changed"
        session["bad"] = value
        return "ok"

    client.post("/set", data={"good": "kept"})
    [before] = backend.rows()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(SessionDataError, match=message) as info:
        client.post("/bad")
    assert "['bad']" in str(info.value)
    assert backend.rows() == [before]
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.get("/get").json == {"good": "kept"}


def test_oversize_data_is_refused_and_stored_data_kept(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    app.extensions["kitsession"].store.serializer.max_size = 1000

    @app.post("/big")
    def big() -> str:
        session["blob"] = "x" * 2000
        return "ok"

    client.post("/set", data={"small": "kept"})
    [before] = backend.rows()
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(SessionDataError, match="more than the limit of 1000"):
        client.post("/big")
    assert backend.rows() == [before]


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(SessionDataError, match="keys must be strings"):
        SessionSerializer().dumps({1: "one"})  # type: ignore[dict-item]


def test_serializer_round_trip_without_a_request() -> None:
    serializer = SessionSerializer()
    data = {"when": WHEN, "pair": (1, 2), "plain": [1, 2, {"a": None}]}
    assert serializer.loads(serializer.dumps(data)) == data
    assert serializer.load({"not": "tagged"}) == {"not": "tagged"}


@pytest.mark.parametrize("stored", ["not json", '"a string"', "[1, 2]", '{"a": {" t": 5}}'])
def test_unreadable_stored_data_gives_empty_data(
    stored: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert SessionSerializer().loads(stored) == {}
    assert "cannot be read" in caplog.text


def test_compact_json() -> None:
    serializer = SessionSerializer()
    assert serializer.dumps({"a": 1}) == '{"a":1}'
