"""Flask-WTF's CSRF token across login: kept for the user who logs in, as
Flask's cookie session keeps it (docs/security.md, "CSRF tokens across login").

Flask-Security's JSON/SPA clients fetch the token once (``GET /login``) and
send it with every later request, and its login response hands the same
token back; both keep working after the login. The token never passes to
another user, and ends with the session at logout. An app that wants the
token rotated at login (Django's choice) does it in one signal receiver.
"""

from __future__ import annotations

import typing as t

from flask import Flask
from flask import g
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient
from flask_login import login_required
from flask_login import login_user
from flask_login import LoginManager
from flask_login import logout_user
from flask_login import user_logged_in
from flask_login import UserMixin
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFProtect
from flask_wtf.csrf import generate_csrf
from werkzeug.wrappers import Response

from flask_kitsession import KitSession
from flask_kitsession import MemoryStore

from .support.apps import SECRET_KEY


class Member(UserMixin):  # type: ignore[misc]
    def __init__(self, user_id: str) -> None:
        self.id = user_id


class LoginForm(FlaskForm):  # type: ignore[misc]
    """Building it reads the CSRF token (Flask-WTF caches it for the request),
    as Flask-Security's login form does before login_user() runs.
    """


def make_app(config: dict[str, t.Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, **(config or {}))
    CSRFProtect(app)
    login_manager = LoginManager(app)
    login_manager.user_loader(Member)
    KitSession(app, store=MemoryStore())

    @app.get("/token")
    def token() -> Response:
        return jsonify(csrf_token=generate_csrf())

    @app.post("/login")
    def login() -> Response:
        form = LoginForm()
        assert form.validate_on_submit(), form.errors
        login_user(Member(request.args.get("user", "ada")))
        # What Flask-Security's JSON login response carries.
        return jsonify(csrf_token=generate_csrf())

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "out"

    @app.post("/change")
    @login_required
    def change() -> str:
        return "changed"

    return app


def log_in(client: FlaskClient) -> tuple[str, str]:
    """Log in as a JSON client does; return the tokens from before and after."""
    before = client.get("/token").json["csrf_token"]  # type: ignore[index]
    response = client.post("/login", headers={"X-CSRFToken": before})
    assert response.status_code == 200, response.text
    return before, response.json["csrf_token"]  # type: ignore[index]


def test_a_json_client_keeps_a_working_token_across_login() -> None:
    client = make_app().test_client()
    before, after = log_in(client)
    for token in (before, after):
        response = client.post("/change", headers={"X-CSRFToken": token})
        assert response.status_code == 200, response.text


def test_the_token_never_passes_to_another_user() -> None:
    client = make_app().test_client()
    log_in(client)
    ada_token = client.get("/token").json["csrf_token"]  # type: ignore[index]
    # Bob logs in on Ada's browser without her logging out first.
    response = client.post("/login?user=bob", headers={"X-CSRFToken": ada_token})
    assert response.status_code == 200, response.text
    assert client.post("/change", headers={"X-CSRFToken": ada_token}).status_code == 400
    bob_token = client.get("/token").json["csrf_token"]  # type: ignore[index]
    assert client.post("/change", headers={"X-CSRFToken": bob_token}).text == "changed"


def test_the_login_response_hands_another_user_a_working_token() -> None:
    client = make_app().test_client()
    log_in(client)
    ada_token = client.get("/token").json["csrf_token"]  # type: ignore[index]
    response = client.post("/login?user=bob", headers={"X-CSRFToken": ada_token})
    bob_token = response.json["csrf_token"]  # type: ignore[index]
    assert bob_token != ada_token
    assert client.post("/change", headers={"X-CSRFToken": bob_token}).text == "changed"


def test_the_token_ends_with_the_session_at_logout() -> None:
    client = make_app().test_client()
    log_in(client)
    token = client.get("/token").json["csrf_token"]  # type: ignore[index]
    assert client.post("/logout", headers={"X-CSRFToken": token}).text == "out"
    log_in(client)
    assert client.post("/change", headers={"X-CSRFToken": token}).status_code == 400


def test_an_app_can_rotate_the_token_at_login() -> None:
    app = make_app()

    @user_logged_in.connect_via(app)
    def rotate_csrf_token(sender: Flask, **extra: t.Any) -> None:
        # Django's rotate_token(): a token learnt before the login (through a
        # session planted in the victim's browser) is worthless after it.
        field = sender.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        session.pop(field, None)
        g.pop(field, None)

    client = app.test_client()
    before, after = log_in(client)
    assert after != before
    assert client.post("/change", headers={"X-CSRFToken": before}).status_code == 400
    assert client.post("/change", headers={"X-CSRFToken": after}).text == "changed"
