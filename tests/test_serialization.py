"""Session data: what it may hold, and clear errors for what it may not."""

from __future__ import annotations

import collections
import enum
import typing as t
import uuid
import zoneinfo
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from flask import Flask
from flask import session
from flask.testing import FlaskClient
from markupsafe import Markup

from flask_kitsession import SessionDataError
from flask_kitsession.serialization import SessionSerializer

from .support.backends import Backend
from .support.data import same

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


# -- one rule: stored and read back exactly, on every backend -----------------


def round_trip(app: Flask, client: FlaskClient, values: dict[str, t.Any]) -> dict[str, t.Any]:
    """Store ``values`` in one request; return what the next request reads."""
    found: dict[str, t.Any] = {}

    @app.post("/store-values")
    def store_values() -> str:
        session.update(values)
        return "stored"

    @app.get("/read-values")
    def read_values() -> str:
        found.update(session)
        return "read"

    response = client.post("/store-values")
    assert response.status_code == 200, response.text
    response = client.get("/read-values")
    assert response.status_code == 200, response.text
    return found


@pytest.mark.parametrize("tag", [" t", " di", " b", " m", " u", " d", " t__"])
def test_a_top_level_key_named_like_a_tag_round_trips(
    app: Flask, client: FlaskClient, tag: str
) -> None:
    """Alone at the top, and at every depth below it."""
    value = {tag: [1, "two"], "deeper": [{tag: (3,)}]}
    assert same(round_trip(app, client, {tag: value}), {tag: value})


STRINGS_DATABASES_REFUSE = {
    "nul": "before\x00after",
    "only nul": "\x00",
    "lone high surrogate": "a\ud800b",
    "lone low surrogate": "\udfff",
    # Two code points in Python; one emoji to a JSON reader.
    "surrogate pair": "\ud83d\ude00",
    "emoji": "😀 ✓",
    "controls": "\x01\x1f\x7f\u2028",
}


def test_strings_databases_cannot_hold_round_trip(app: Flask, client: FlaskClient) -> None:
    values: dict[str, t.Any] = dict(STRINGS_DATABASES_REFUSE)
    values["in a list"] = list(STRINGS_DATABASES_REFUSE.values())
    values["markup"] = Markup("<b>\x00</b>")
    values["nested keys"] = {text: text for text in STRINGS_DATABASES_REFUSE.values()}
    values.update({f"key {text}": 1 for text in STRINGS_DATABASES_REFUSE.values()})
    assert same(round_trip(app, client, values), values)


def test_floats_keep_their_type_and_sign(app: Flask, client: FlaskClient) -> None:
    # PostgreSQL's JSONB turns 1e16 into the integer 10000000000000000, -0.0 into 0.0.
    values = {"big": 1e16, "huge": 1.5e300, "negative zero": -0.0, "small": 1e-7, "one": 1.0}
    assert same(round_trip(app, client, values), values)


def test_datetimes_keep_microseconds_and_time_zone(app: Flask, client: FlaskClient) -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    values = {
        "utc": datetime(2026, 11, 23, 12, 30, 1, 123456, tzinfo=timezone.utc),
        "naive": datetime(2026, 11, 23, 12, 30, 1, 5),
        "offset": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
        "zone": datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=paris),
    }
    found = round_trip(app, client, values)
    assert same(found, values)
    assert found["zone"].tzinfo is paris and found["zone"].utcoffset() == timedelta(hours=1)


class Color(enum.IntEnum):
    RED = 1


class Pair(t.NamedTuple):
    a: int
    b: int


@pytest.mark.parametrize(
    ("value", "where", "why"),
    [
        ({"a": {1: "one"}}, r"\['cart'\]\['a'\]", "keys must be strings"),
        (collections.OrderedDict(a=1), r"\['cart'\]", "OrderedDict"),
        ([Color.RED], r"\['cart'\]\[0\]", "Color"),
        (Pair(1, 2), r"\['cart'\]", "Pair"),
        (bytearray(b"x"), r"\['cart'\]", "bytearray"),
    ],
)
def test_values_that_would_come_back_different_are_refused(
    app: Flask, value: t.Any, where: str, why: str
) -> None:
    """Read back as another type (a plain dict, an int, a tuple), or with other
    keys: refused where set, naming where and why.
    """

    @app.post("/bad")
    def bad() -> str:
        session["cart"] = value
        return "not reached"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(SessionDataError, match=where) as info:
        app.test_client().post("/bad")
    assert why in str(info.value)


def test_data_written_in_flasks_format_is_read() -> None:
    """Sessions stored before kitsession wrote its own tags (datetimes as
    Flask's HTTP dates, whole seconds) are read as they were written.
    """
    from flask.json.tag import TaggedJSONSerializer

    data = {
        "pair": (1, "two"),
        "bytes": b"\x00\xff",
        "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "markup": Markup("<b>hi</b>"),
        "when": WHEN,
        "nested": {" t": [1], "deep": {" di": {"x": 1}}},
    }
    stored = TaggedJSONSerializer().tag(data)
    assert same(SessionSerializer().load(stored), data)
    # A lone tag-named key at the top, as Flask's format writes it.
    assert SessionSerializer().load(TaggedJSONSerializer().tag({" t": [1]})) == {" t": [1]}


def test_unreadable_data_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    stored = '{"when": {" kt": "not a time: MARKER-7f3a"}}'
    assert SessionSerializer().loads(stored) == {}
    assert "cannot be read (ValueError)" in caplog.text
    assert "MARKER-7f3a" not in caplog.text
