"""Flask-Login apps on kitsession: unchanged app code, one statement per request."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from benchmarks.queries import QueryRecorder
from flask.testing import FlaskClient

from .support.apps import LoginApp
from .support.apps import make_login_app
from .support.backends import SQLBackend
from .support.clients import session_cookie
from .support.servers import RedisKeyspace


def rows(login_app: LoginApp) -> list[dict[str, object]]:
    with login_app.app.app_context():
        table = login_app.db.metadata.tables["session"]
        with login_app.db.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.select(table))]


def test_login_user_links_the_session_and_gives_a_new_token(login_app: LoginApp) -> None:
    login_app.add_user("u-1", "ada@example.com")
    client = login_app.app.test_client()
    client.post("/set", data={"theme": "dark"})
    before = session_cookie(client)
    [anonymous] = rows(login_app)

    assert client.post("/login/u-1").text == "in"
    after = session_cookie(client)
    assert after is not None and after != before
    [row] = rows(login_app)
    assert row["id"] != anonymous["id"]
    assert row["user_id"] == "u-1"
    assert row["authenticated_at"] is not None
    # The planted (old) cookie is worthless now.
    other = login_app.app.test_client()
    other.set_cookie("session", before or "")
    assert other.get("/profile").status_code == 401


@pytest.mark.parametrize("protection", ["basic", "strong"])
def test_session_protection_acts_on_the_one_stored_session(
    login_app: LoginApp, protection: str
) -> None:
    """docs/flask-login.md: a request from another browser than the login's
    makes the stored session not fresh for every browser ("basic"), or ends
    it, signing out the owner too ("strong").
    """
    from flask_login import login_fresh

    app = login_app.app
    app.login_manager.session_protection = protection  # type: ignore[attr-defined]

    @app.get("/fresh")
    def fresh() -> str:
        return str(login_fresh())

    login_app.add_user("u-1", "ada@example.com")
    owner = app.test_client()
    owner.post("/login/u-1", headers={"User-Agent": "Owner/1.0"})
    assert owner.get("/fresh", headers={"User-Agent": "Owner/1.0"}).text == "True"
    thief = app.test_client()
    thief.set_cookie("session", session_cookie(owner) or "")
    thief.get("/profile", headers={"User-Agent": "Thief/1.0"})
    if protection == "basic":
        assert owner.get("/profile", headers={"User-Agent": "Owner/1.0"}).status_code == 200
        assert owner.get("/fresh", headers={"User-Agent": "Owner/1.0"}).text == "False"
    else:
        assert owner.get("/profile", headers={"User-Agent": "Owner/1.0"}).status_code == 401
        assert thief.get("/profile", headers={"User-Agent": "Thief/1.0"}).status_code == 401


def test_logout_user_deletes_the_session(login_app: LoginApp) -> None:
    login_app.add_user("u-1", "ada@example.com")
    client = login_app.app.test_client()
    client.post("/login/u-1")
    cookie = session_cookie(client)
    response = client.post("/logout")
    assert "session=;" in response.headers["Set-Cookie"]
    assert rows(login_app) == []
    client.set_cookie("session", cookie or "")
    assert client.get("/profile").status_code == 401


def test_current_user_costs_no_second_query(login_app: LoginApp) -> None:
    login_app.add_user("u-1", "ada@example.com")
    client = login_app.app.test_client()
    client.post("/login/u-1")
    with login_app.app.app_context():
        engine = login_app.db.engine
    with QueryRecorder(engine) as recorder:
        response = client.get("/profile")
    assert response.text == "ada <ada@example.com>"
    [statement] = recorder.reads()
    assert "JOIN" in statement and "users" in statement
    if engine.dialect.name in ("sqlite", "postgresql"):
        assert recorder.statements == [statement]
        assert recorder.round_trips == 1
    else:
        # MySQL drivers: the ordinary SQLAlchemy path ends with a ROLLBACK.
        assert recorder.statements == [statement, "ROLLBACK"]


def test_current_user_is_the_apps_own_model_attached_to_db_session(login_app: LoginApp) -> None:
    login_app.add_user("u-1", "ada@example.com")
    client = login_app.app.test_client()
    client.post("/login/u-1")
    # password_hash is not loaded with the session; the instance is attached
    # to db.session, so reading it loads it (one more query, only then).
    assert client.get("/password-hash").text == "x"


def test_one_connection_pool(login_app: LoginApp) -> None:
    store = login_app.app.extensions["kitsession"].store
    with login_app.app.app_context():
        assert store.engine is login_app.db.engine
    assert store.session_table is login_app.db.metadata.tables["session"]
    assert store.owns_user_table is False


def test_carry_over_with_login_user(empty_database_url: str) -> None:
    from .support.apps import make_login_app

    login_app = make_login_app(empty_database_url, config={"KITSESSION_CARRY_OVER_KEYS": ["cart"]})
    with login_app.app.app_context():
        login_app.db.create_all()
    try:
        login_app.add_user("u-1", "ada@example.com")
        login_app.add_user("u-2", "bob@example.com")
        client = login_app.app.test_client()
        client.post("/set", data={"cart": "3 apples", "tracking": "yes"})
        client.post("/login/u-1")
        data = client.get("/get").json
        assert data is not None
        assert data["cart"] == "3 apples" and "tracking" not in data
        assert data["_user_id"] == "u-1"
        # Nothing crosses from one user to the next.
        client.post("/login/u-2")
        data = client.get("/get").json
        assert data is not None and "cart" not in data and data["_user_id"] == "u-2"
    finally:
        with login_app.app.app_context():
            login_app.db.drop_all()
            login_app.db.engine.dispose()


def test_remember_me_recipe_keeps_sign_out_everywhere_real(login_app: LoginApp) -> None:
    """A permanent session instead of Flask-Login's remember cookie: "sign out
    all other devices" then signs out all of them. With the remember cookie,
    a signed-out device logs itself back in: the recipe is what makes it real.
    """
    login_app.add_user("u-1", "ada@example.com")
    app = login_app.app
    phone, laptop = app.test_client(), app.test_client()
    phone.post("/login/u-1?permanent=1")
    laptop.post("/login/u-1?permanent=1")
    phone_cookie = phone.get_cookie("session")
    assert phone_cookie is not None and phone_cookie.expires is not None
    assert laptop.post("/sign-out-others").text == "1"
    assert phone.get("/profile").status_code == 401
    assert laptop.get("/profile").status_code == 200

    # The anti-recipe: Flask-Login's remember cookie outlives the revocation.
    tablet = app.test_client()
    tablet.post("/login/u-1?remember=1")
    assert laptop.post("/sign-out-others").text == "1"
    assert tablet.get("/profile").status_code == 200  # back in, by the remember cookie


def test_login_manager_with_kitsessions_own_user_table(sql_backend: SQLBackend) -> None:
    """kitsession's own user table works with Flask-Login too: session.user is
    a named tuple that answers Flask-Login's questions.
    """
    from flask import Flask
    from flask_login import current_user
    from flask_login import login_required
    from flask_login import login_user
    from flask_login import LoginManager

    from flask_kitsession import KitSession

    from .support.apps import SECRET_KEY

    user_id = sql_backend.add_user("grace@example.com")
    app = Flask(__name__)
    app.config["SECRET_KEY"] = SECRET_KEY
    kitsession = KitSession(app, store=sql_backend.store)
    login_manager = LoginManager(app)
    kitsession.init_login_manager(login_manager)

    class LoginUser:
        is_active = True

        def get_id(self) -> str:
            return str(user_id)

    @app.post("/login")
    def login() -> str:
        login_user(LoginUser())
        return "in"

    @app.get("/me")
    @login_required
    def me() -> str:
        assert current_user.get_id() == str(user_id)
        return str(current_user.email)

    client: FlaskClient = app.test_client()
    client.post("/login")
    assert client.get("/me").text == "grace@example.com"


def test_sessions_in_redis_users_from_the_apps_model(
    empty_database_url: str, redis_keyspace: RedisKeyspace
) -> None:
    """KITSESSION_REDIS_URL with db=: sessions in Redis, current_user an
    instance of the app's model attached to db.session.
    """
    prefix = redis_keyspace.new_prefix()
    login_app = make_login_app(
        empty_database_url,
        config={"KITSESSION_REDIS_URL": redis_keyspace.url, "KITSESSION_REDIS_PREFIX": prefix},
    )
    with login_app.app.app_context():
        login_app.db.create_all()
    try:
        login_app.add_user("u-1", "ada@example.com")
        client = login_app.app.test_client()
        client.post("/login/u-1")
        assert client.get("/profile").text == "ada <ada@example.com>"
        assert client.get("/password-hash").text == "x"  # loaded on demand
        assert redis_keyspace.keys(prefix)
    finally:
        redis_keyspace.delete(prefix)
        with login_app.app.app_context():
            login_app.db.drop_all()
            login_app.db.engine.dispose()
