"""The example app, driven through its pages on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from example_app import create_app
from flask import Flask
from flask.testing import FlaskClient


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
    assert devices.count("data-session-id=") == 2
    assert "Phone" in devices and "Laptop" in devices and "This device" in devices

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


FIREFOX_UBUNTU = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)


def device_ids(page: str) -> list[str]:
    return re.findall(r'data-session-id="([0-9a-f]+)"', page)


def test_devices_page_shows_browser_and_system(example: Flask) -> None:
    laptop = example.test_client()
    register_and_log_in(laptop, "cy@example.com", FIREFOX_UBUNTU)
    phone = example.test_client()
    log_in(phone, "cy@example.com", SAFARI_IPHONE)

    page = phone.get("/devices").text
    assert "Safari 17 on iOS 17.4" in page and "Firefox 126 on Ubuntu" in page
    assert "127.0.0.1" in page and "Active now" in page
    # The current device comes first and is the one marked.
    current = re.search(r'<li class="device current" data-session-id="([0-9a-f]+)"', page)
    assert current is not None and device_ids(page)[0] == current.group(1)
    assert page.count("This device") == 1
    assert "You are signed in on <strong>2 devices</strong>" in phone.get("/").text


def test_sign_out_one_device(example: Flask) -> None:
    laptop = example.test_client()
    register_and_log_in(laptop, "dee@example.com", FIREFOX_UBUNTU)
    phone = example.test_client()
    log_in(phone, "dee@example.com", SAFARI_IPHONE)

    page = laptop.get("/devices").text
    laptop_id, phone_id = device_ids(page)
    token = csrf(laptop, "/devices")
    response = laptop.post(f"/devices/{phone_id}/sign-out", data={"csrf_token": token})
    assert response.status_code == 302
    page = laptop.get("/devices").text
    assert "Signed out Safari 17 on iOS 17.4." in page
    assert device_ids(page) == [laptop_id]
    assert "not logged in" in phone.get("/").text

    # Signing out the current device logs it out and expires its cookie.
    response = laptop.post(f"/devices/{laptop_id}/sign-out", data={"csrf_token": token})
    assert response.status_code == 302 and response.location == "/"
    assert laptop.get_cookie("session") is None
    assert "not logged in" in laptop.get("/").text


def test_cannot_sign_out_someone_elses_device(example: Flask) -> None:
    eve = example.test_client()
    register_and_log_in(eve, "eve@example.com")
    fay = example.test_client()
    register_and_log_in(fay, "fay@example.com")
    (fay_id,) = device_ids(fay.get("/devices").text)

    token = csrf(eve, "/devices")
    for session_id in (fay_id, "0" * 64, "not-an-id"):
        response = eve.post(f"/devices/{session_id}/sign-out", data={"csrf_token": token})
        assert response.status_code == 404
        assert "Not Found" in response.text and "<main>" in response.text
    assert "Hello, fay@example.com" in fay.get("/").text


def test_every_form_needs_the_session_token(example: Flask) -> None:
    client = example.test_client()
    register_and_log_in(client, "gus@example.com")
    (session_id,) = device_ids(client.get("/devices").text)
    other_session = csrf(example.test_client(), "/login")
    paths = ["/logout", "/devices/sign-out-others", f"/devices/{session_id}/sign-out"]
    paths += ["/register", "/login"]
    for path in paths:
        for sent in (None, "", "wrong", "é" * 43, other_session):
            data = {"email": "x@example.com", "password": "correct horse"}
            if sent is not None:
                data["csrf_token"] = sent
            response = client.post(path, data=data)
            assert response.status_code == 400, (path, sent)
            assert "The form expired or did not come from this site" in response.text
    assert "Hello, gus@example.com" in client.get("/").text
    assert len(device_ids(client.get("/devices").text)) == 1


def test_forms_of_a_signed_out_device_stop_working(example: Flask) -> None:
    laptop = example.test_client()
    register_and_log_in(laptop, "hal@example.com")
    phone = example.test_client()
    log_in(phone, "hal@example.com")
    phone_token = csrf(phone, "/devices")

    token = csrf(laptop, "/devices")
    laptop.post("/devices/sign-out-others", data={"csrf_token": token})
    response = phone.post("/devices/sign-out-others", data={"csrf_token": phone_token})
    assert response.status_code == 400
    assert "Hello, hal@example.com" in laptop.get("/").text


def test_retry_after_a_wrong_password(example: Flask) -> None:
    client = example.test_client()
    register_and_log_in(client, "ida@example.com")
    other = example.test_client()
    token = csrf(other, "/login")
    response = other.post(
        "/login", data={"email": "ida@example.com", "password": "wrong", "csrf_token": token}
    )
    assert response.status_code == 401
    assert 'value="ida@example.com"' in response.text
    retry = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert retry is not None
    response = other.post(
        "/login",
        data={"email": "ida@example.com", "password": "correct horse", "csrf_token": retry[1]},
    )
    assert response.status_code == 302
    assert "Hello, ida@example.com" in other.get("/").text


def test_register_errors(example: Flask) -> None:
    client = example.test_client()
    register_and_log_in(client, "jo@example.com")
    anonymous = example.test_client()
    for email, password, message in [
        ("not an email", "correct horse", "Please enter an email address."),
        ("kim@example.com", "short", "at least 8 characters"),
        ("JO@example.com", "correct horse", "registered already"),
    ]:
        token = csrf(anonymous, "/register")
        response = anonymous.post(
            "/register", data={"email": email, "password": password, "csrf_token": token}
        )
        assert response.status_code == 400 and message in response.text


def test_time_ago() -> None:
    from datetime import datetime
    from datetime import timedelta
    from datetime import timezone

    from example_app.formatting import time_ago
    from example_app.formatting import utc

    now = datetime(2026, 11, 23, 14, 5, tzinfo=timezone.utc)
    for delta, said in [
        (timedelta(seconds=-5), "just now"),
        (timedelta(seconds=59), "just now"),
        (timedelta(minutes=1), "1 minute ago"),
        (timedelta(minutes=59, seconds=59), "59 minutes ago"),
        (timedelta(hours=2), "2 hours ago"),
        (timedelta(days=1), "1 day ago"),
        (timedelta(days=29), "29 days ago"),
        (timedelta(days=30), "on 24 Oct 2026"),
    ]:
        assert time_ago(now - delta, now) == said
    assert utc(now.astimezone(timezone(timedelta(hours=2)))) == "23 Nov 2026, 14:05 UTC"


def test_workers_starting_together_share_one_secret_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from example_app import _instance_secret_key

    start = threading.Barrier(8)

    def read_key(_: int) -> str:
        start.wait(timeout=10)
        return _instance_secret_key(tmp_path / "instance")

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(read_key, range(8)))
    assert len(keys) == 1 and len(keys.pop()) == 64
    assert [p.name for p in (tmp_path / "instance").iterdir()] == ["secret_key"]
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_secret_key_from_the_environment_or_the_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'example.sqlite3'}"
    monkeypatch.setenv("FLASK_SECRET_KEY", "from the environment")
    app = create_app({"KITSESSION_DATABASE_URL": url})
    assert app.config["SECRET_KEY"] == "from the environment"
    app.extensions["kitsession"].store.close()

    monkeypatch.delenv("FLASK_SECRET_KEY")
    instance = str(tmp_path / "instance")
    monkeypatch.setattr(Flask, "auto_find_instance_path", lambda self: instance)
    first = create_app({"KITSESSION_DATABASE_URL": url})
    again = create_app({"KITSESSION_DATABASE_URL": url})
    assert first.config["SECRET_KEY"] == again.config["SECRET_KEY"]
    assert (tmp_path / "instance" / "secret_key").read_text() == first.config["SECRET_KEY"]
    for app in (first, again):
        app.extensions["kitsession"].store.close()


def test_worker_header_only_when_asked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'example.sqlite3'}"
    plain = create_app({"SECRET_KEY": "k", "KITSESSION_DATABASE_URL": url})
    assert "X-Worker-Pid" not in plain.test_client().get("/").headers
    marked = create_app(
        {"SECRET_KEY": "k", "KITSESSION_DATABASE_URL": url, "EXAMPLE_WORKER_HEADER": True}
    )
    assert marked.test_client().get("/").headers["X-Worker-Pid"] == str(os.getpid())
    for app in (plain, marked):
        app.extensions["kitsession"].store.close()
