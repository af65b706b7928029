"""Bad input from the app: data JSON cannot hold, oversize data, a user that
does not exist. Each raises an exception that names the problem, where the
app makes the mistake when that can be known there (the assignment), and
the session stored before the request is unchanged.

Run the way production runs (``PROPAGATE_EXCEPTIONS`` off: the visitor
gets a 500 page) and the way tests run (the exception reaches the caller).
See docs/security.md.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask import request
from flask import session
from flask.testing import FlaskClient
from werkzeug.exceptions import InternalServerError

from flask_kitsession import SessionDataError
from flask_kitsession import UnknownUserError
from flask_kitsession import with_new_session

from .support.backends import Backend
from .support.clients import log_in

MAX_SIZE = 1000

pytestmark = [pytest.mark.reliability, pytest.mark.app_config(KITSESSION_MAX_DATA_SIZE=MAX_SIZE)]
UNKNOWN_USER = 987654


class NotJSON:
    def __repr__(self) -> str:
        return "<NotJSON>"


BAD_VALUES = [
    pytest.param(NotJSON(), id="object"),
    pytest.param({1, 2}, id="set"),
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="infinity"),
    pytest.param([1, {"deep": NotJSON()}], id="nested"),
    pytest.param("x" * (MAX_SIZE + 1), id="oversize"),
]


def prepare(app: Flask, backend: Backend, client: FlaskClient) -> list[dict[str, t.Any]]:
    """A signed-in visitor with data; return the stored rows."""
    log_in(client, backend.add_user("ada@example.com"))
    assert client.post("/set", data={"good": "kept"}).status_code == 200
    return backend.rows()


@pytest.mark.parametrize("value", BAD_VALUES)
@pytest.mark.parametrize("how", ["setitem", "update", "setdefault"])
def test_a_value_that_cannot_be_stored_is_refused_where_it_is_set(
    app: Flask, client: FlaskClient, backend: Backend, value: t.Any, how: str
) -> None:
    @app.post("/bad")
    def bad() -> str:
        session["good"] = "changed before the mistake"
        if how == "setitem":
            session["bad"] = value
        elif how == "update":
            session.update(fine=1, bad=value)
        else:
            session.setdefault("bad", value)
        return "not reached"

    before = prepare(app, backend, client)
    data = client.get("/get").json
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(SessionDataError, match=r"session\['bad'\]") as info:
        client.post("/bad")
    # Raised by the assignment, in the view, not at the end of the request.
    assert any(entry.name == "bad" for entry in info.traceback)
    assert "bad" not in client.get("/get").json  # type: ignore[operator]
    assert backend.rows() == before

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post("/bad")
    assert response.status_code == 500
    assert backend.rows() == before
    assert client.get("/get").json == data


def test_a_key_that_is_not_a_string_is_refused_where_it_is_set(app: Flask) -> None:
    @app.post("/bad-key")
    def bad_key() -> str:
        session[1] = "one"  # type: ignore[index]
        return "not reached"

    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(SessionDataError, match="keys must be strings") as info:
        app.test_client().post("/bad-key")
    assert any(entry.name == "bad_key" for entry in info.traceback)


def test_what_only_the_save_can_see_is_refused_there(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    """A value changed in place, and data that is too large only as a whole,
    are found when the session is saved: nothing is written, and the
    message names the key, or the size and the limit.
    """

    @app.post("/in-place")
    def in_place() -> str:
        session["cart"] = ["book"]
        session["cart"].append(NotJSON())
        return "ok"

    @app.post("/many")
    def many() -> str:
        for index in range(10):
            session[f"part{index}"] = "x" * (MAX_SIZE // 5)
        return "ok"

    before = prepare(app, backend, client)
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(SessionDataError, match=r"\['cart'\]"):
        client.post("/in-place")
    with pytest.raises(SessionDataError, match=f"more than the limit of {MAX_SIZE}"):
        client.post("/many")
    assert backend.rows() == before
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for path in ("/in-place", "/many"):
        assert client.post(path).status_code == 500
    assert backend.rows() == before


@pytest.mark.parametrize("where", ["data", "login"])
def test_a_user_that_does_not_exist_is_refused(
    app: Flask, client: FlaskClient, backend: Backend, where: str
) -> None:
    """``session["user_id"] = 987654`` with no such user: the write is
    refused with an error saying so; the stored session, or the one a
    login was replacing, is as it was.
    """

    @app.post("/claim")
    def claim() -> str:
        session["user_id"] = UNKNOWN_USER
        return "ok"

    @app.post("/bad-login")
    @with_new_session
    def bad_login() -> str:
        session["user_id"] = int(request.form["user_id"])
        return "ok"

    @app.errorhandler(500)
    def server_error(error: InternalServerError) -> tuple[str, int]:
        return type(error.original_exception).__name__, 500

    client.post("/set", data={"cart": "book"})
    before = backend.rows()
    path = "/claim" if where == "data" else "/bad-login"
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(UnknownUserError, match="names a user") as info:
        client.post(path, data={"user_id": str(UNKNOWN_USER)})
    # Session data (a user id, too) stays out of messages, which are logged.
    assert str(UNKNOWN_USER) not in str(info.value)
    assert backend.rows() == before
    app.config["PROPAGATE_EXCEPTIONS"] = False
    assert client.post(path, data={"user_id": str(UNKNOWN_USER)}).status_code == 500
    assert backend.rows() == before
    # As docs/lifecycle.md says: raised as the session is saved, it reaches
    # the app's errorhandler(500) as the original exception.
    assert client.post(path, data={"user_id": str(UNKNOWN_USER)}).text == "UnknownUserError"
    assert client.get("/get").json == {"cart": "book"}


def test_a_view_that_fails_halfway_keeps_none_of_its_changes(
    app: Flask, client: FlaskClient, backend: Backend
) -> None:
    """Whatever the error, a request that ends in a 5xx (the app's own error
    page included) stores nothing it changed; one that ends in a 4xx does.
    """

    @app.post("/half")
    def half() -> str:
        session["good"] = "changed"
        raise RuntimeError("the view fails after changing the session")

    @app.post("/refused")
    def refused() -> tuple[str, int]:
        session["tries"] = 1
        return "bad request", 400

    @app.errorhandler(500)
    def oops(error: Exception) -> tuple[str, int]:
        return "our own error page", 500

    before = prepare(app, backend, client)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = client.post("/half")
    assert (response.status_code, response.text) == (500, "our own error page")
    assert backend.rows() == before
    assert client.post("/refused").status_code == 400
    assert client.get("/get").json["tries"] == 1  # type: ignore[index]
