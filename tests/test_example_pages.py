"""The example app's error pages, icon, caching and e-mail limits."""

from __future__ import annotations

from pathlib import Path

from example_app import create_app
from example_app.views import MAX_EMAIL_LENGTH
from flask import Flask

from .test_example_app import csrf
from .test_example_app import register_and_log_in

LONGEST_EMAIL = "a" * (MAX_EMAIL_LENGTH - len("@example.com")) + "@example.com"


def test_errors_are_pages_of_the_app(example: Flask) -> None:
    client = example.test_client()
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert '<p class="error-code">404</p>' in missing.text
    assert "There is no page at this address." in missing.text
    assert "style.css" in missing.text and "Back to the start" in missing.text

    # A visit to a form's address: the button's page is meant.
    wrong_method = client.get("/logout")
    assert wrong_method.status_code == 405
    assert set(wrong_method.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert '<p class="error-code">405</p>' in wrong_method.text
    assert "This address is for a form&#39;s button" in wrong_method.text


def test_a_failure_is_a_page_of_the_app(tmp_path: Path) -> None:
    app = create_app(
        {"SECRET_KEY": "example test", "KITSESSION_DATABASE_URL": f"sqlite:///{tmp_path / 'e.db'}"}
    )

    @app.get("/broken")
    def broken() -> str:
        raise RuntimeError("a bug in a view")

    client = app.test_client()
    register_and_log_in(client, "ann@example.com")
    response = client.get("/broken")
    assert response.status_code == 500 and response.mimetype == "text/html"
    assert '<p class="error-code">500</p>' in response.text
    assert "Something went wrong on our side" in response.text
    # The page reads no session (it may be what failed): no account links.
    assert "ann@example.com" not in response.text and "Log out" not in response.text
    app.extensions["kitsession"].store.close()


def test_every_page_names_its_icon_and_the_icon_is_there(example: Flask) -> None:
    client = example.test_client()
    page = client.get("/").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    with client.get("/static/favicon.svg") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        assert icon.data.startswith(b"<svg")
    # Clients that ask for /favicon.ico without reading the page get it too.
    with client.get("/favicon.ico") as legacy:
        assert legacy.status_code == 200 and legacy.data == icon.data


def test_signed_in_pages_are_not_stored(example: Flask) -> None:
    client = example.test_client()
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")
    assert "no-store" not in client.get("/login").headers.get("Cache-Control", "")
    register_and_log_in(client, "cy@example.com")
    for path in ("/", "/devices", "/no/such/page"):
        assert client.get(path).headers["Cache-Control"] == "no-store", path
    # Static files never vary with the session.
    with client.get("/static/style.css") as style:
        assert "no-store" not in style.headers.get("Cache-Control", "")
    token = csrf(client, "/")
    client.post("/logout", data={"csrf_token": token})
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")


def test_an_email_too_long_is_called_too_long(example: Flask) -> None:
    client = example.test_client()
    for email in ("a" * 4990 + "@example.com", "b" + LONGEST_EMAIL):
        token = csrf(client, "/register")
        response = client.post(
            "/register", data={"email": email, "password": "correct horse", "csrf_token": token}
        )
        assert response.status_code == 400
        assert "That email address is too long" in response.text
        assert f"the longest an address can be is {MAX_EMAIL_LENGTH}" in response.text

        token = csrf(client, "/login")
        response = client.post(
            "/login", data={"email": email, "password": "correct horse", "csrf_token": token}
        )
        assert response.status_code == 400 and "too long" in response.text


def test_the_longest_email_registers_and_logs_in(example: Flask) -> None:
    client = example.test_client()
    register_and_log_in(client, LONGEST_EMAIL)
    assert f"Hello, {LONGEST_EMAIL}" in client.get("/").text
