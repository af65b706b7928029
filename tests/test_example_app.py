"""The example app, driven through its pages on SQLite and PostgreSQL."""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from example_app import create_app
from flask import Flask
from flask.testing import FlaskClient

from .helpers import SchemaFactory


@pytest.fixture(params=["sqlite", "postgresql"])
def example(request: pytest.FixtureRequest, tmp_path: Path) -> t.Iterator[Flask]:
    config: dict[str, t.Any] = {"TESTING": True, "SECRET_KEY": "example test"}
    if request.param == "postgresql":
        schemas: SchemaFactory = request.getfixturevalue("pg_schemas")
        schemas.engine().dispose()
        config["KITSESSION_DATABASE_URL"] = schemas.url_for_last()
    else:
        config["KITSESSION_DATABASE_URL"] = f"sqlite:///{tmp_path / 'example.sqlite3'}"
    from example_app import kitsession

    app = create_app(config)
    yield app
    app.extensions["kitsession"].store.close()
    assert kitsession is not None


def csrf(client: FlaskClient, path: str) -> str:
    page = client.get(path).text
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def register_and_log_in(client: FlaskClient, email: str, user_agent: str = "Firefox") -> None:
    token = csrf(client, "/register")
    response = client.post(
        "/register", data={"email": email, "password": "correct horse", "csrf_token": token}
    )
    assert response.status_code in (200, 302)
    log_in(client, email, user_agent)


def log_in(client: FlaskClient, email: str, user_agent: str = "Firefox") -> None:
    token = csrf(client, "/login")
    response = client.post(
        "/login",
        data={"email": email, "password": "correct horse", "csrf_token": token},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 302, response.text


def test_register_log_in_devices_and_log_out(example: Flask) -> None:
    phone = example.test_client()
    register_and_log_in(phone, "ada@example.com", "Phone")
    assert "Hello, ada@example.com" in phone.get("/").text

    laptop = example.test_client()
    log_in(laptop, "ada@example.com", "Laptop")
    devices = laptop.get("/devices").text
    assert devices.count('<tr class="device') == 2
    assert "Phone" in devices and "Laptop" in devices and "(this device)" in devices

    token = csrf(laptop, "/devices")
    response = laptop.post("/devices/sign-out-others", data={"csrf_token": token})
    assert response.status_code == 302
    assert "Signed out 1 other device." in laptop.get("/devices").text
    assert "not logged in" in phone.get("/").text

    token = csrf(laptop, "/")
    laptop.post("/logout", data={"csrf_token": token})
    assert "not logged in" in laptop.get("/").text


def test_wrong_password_and_csrf(example: Flask) -> None:
    client = example.test_client()
    register_and_log_in(client, "bob@example.com")
    other = example.test_client()
    token = csrf(other, "/login")
    response = other.post(
        "/login", data={"email": "bob@example.com", "password": "wrong", "csrf_token": token}
    )
    assert response.status_code == 401 and "Wrong email or password" in response.text
    response = other.post("/login", data={"email": "bob@example.com", "password": "correct horse"})
    assert response.status_code == 400


def test_tables_come_from_the_bundled_migrations(example: Flask) -> None:
    store = example.extensions["kitsession"].store
    names = set(sa.inspect(store.engine).get_table_names())
    assert {"user", "session", "kitsession_alembic_version"} <= names
