"""The client address and user agent kept with a session never fail a
request: normalized to what their columns hold, on every backend.
"""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_kitsession.models import IP_ADDRESS_LENGTH
from flask_kitsession.models import USER_AGENT_LENGTH
from flask_kitsession.requestinfo import normalize_address

from .support.apps import Clock
from .support.backends import Backend

LONG_ZONE = "fe80::1%" + "a-very-long-interface-name-from-the-proxy" * 2


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (LONG_ZONE, "fe80::1"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("192.0.2.7:4711", "192.0.2.7"),
        ("::ffff:192.0.2.9", "192.0.2.9"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("unknown", "unknown"),
        ("x" * 200, "x" * IP_ADDRESS_LENGTH),
        ("\x00\x01", None),
    ],
)
def test_addresses_are_normalized(sent: str, stored: str | None) -> None:
    assert normalize_address(sent) == stored


def test_an_address_longer_than_the_column_never_fails_a_request(
    app: Flask, client: FlaskClient, backend: Backend, clock: Clock
) -> None:
    """Saves and touches (the two writes that record the address) succeed
    whatever the address; the column holds its normalized form.
    """
    environ = {"REMOTE_ADDR": LONG_ZONE}
    assert client.post("/set", data={"a": "1"}, environ_base=environ).status_code == 200
    [row] = backend.rows()
    assert row["ip_address"] == "fe80::1"
    environ = {"REMOTE_ADDR": "[2001:db8::1]:4711" + "%" * 100}
    assert client.post("/set", data={"a": "2"}, environ_base=environ).status_code == 200
    clock.advance(minutes=5)  # past the touch interval: a read writes the address
    environ = {"REMOTE_ADDR": "proxy-sent-this-" * 10}
    assert client.get("/get", environ_base=environ).json == {"a": "2"}
    [row] = backend.rows()
    assert row["ip_address"] == ("proxy-sent-this-" * 10)[:IP_ADDRESS_LENGTH]


def test_addresses_from_a_proxy(backend: Backend, app: Flask) -> None:
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    client = app.test_client()
    headers = {"X-Forwarded-For": LONG_ZONE}
    assert client.post("/set", data={"a": "1"}, headers=headers).status_code == 200
    [row] = backend.rows()
    assert row["ip_address"] == "fe80::1"


def test_user_agents_are_cut_and_cleaned(client: FlaskClient, backend: Backend) -> None:
    agent = "Agent\x00/1.0 " + "é" * 1000
    response = client.post("/set", data={"a": "1"}, headers={"User-Agent": agent})
    assert response.status_code == 200
    [row] = backend.rows()
    assert row["user_agent"] == ("Agent/1.0 " + "é" * 1000)[:USER_AGENT_LENGTH]
