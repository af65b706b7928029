"""KitSession: configuration, app factories, the app's own user model, failures."""

from __future__ import annotations

import logging
import typing as t
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import jsonify
from flask import session
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_kitsession import current_session
from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import migrate
from flask_kitsession import SQLAlchemyStore
from flask_kitsession.migrate import MigrationTarget
from flask_kitsession.stores.sql import create_store_engine
from flask_kitsession.tokens import new_token

from .support.apps import add_views
from .support.apps import SECRET_KEY
from .support.clients import log_in
from .support.clients import me
from .support.clients import session_cookie
from .support.servers import SchemaFactory
from .support.servers import upgrade


def make_app(**config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, **config)
    return app


def test_app_factory_with_the_default_sqlite_database(tmp_path: Path) -> None:
    kitsession = KitSession()

    def create_app() -> Flask:
        app = Flask(__name__, instance_path=str(tmp_path / "instance"))
        app.config["SECRET_KEY"] = SECRET_KEY
        kitsession.init_app(app)
        migrate.upgrade(app)
        add_views(app)
        return app

    app = create_app()
    assert (tmp_path / "instance" / "kitsession.sqlite3").is_file()
    store = kitsession_store(app)
    with store.engine.begin() as connection:
        user_id = connection.execute(
            sa.text("INSERT INTO user (email, created_at) VALUES ('a@example.com', '2026-01-01')")
        ).lastrowid
    client = app.test_client()
    log_in(client, user_id)
    assert me(client) == {"user_id": user_id, "email": "a@example.com"}
    # A second app from the same factory shares nothing but the database file.
    other = create_app()
    assert other.session_interface is not app.session_interface
    other_client = other.test_client()
    other_client.set_cookie("session", session_cookie(client) or "")
    assert me(other_client)["user_id"] == user_id


def kitsession_store(app: Flask) -> SQLAlchemyStore:
    store = app.extensions["kitsession"].store
    assert isinstance(store, SQLAlchemyStore)
    return store


def test_database_url_from_config(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'configured.sqlite3'}"
    app = make_app(KITSESSION_DATABASE_URL=url, KITSESSION_ENGINE_OPTIONS={"echo": False})
    KitSession(app)
    assert str(kitsession_store(app).engine.url) == url


def test_init_app_twice_is_an_error() -> None:
    app = make_app()
    kitsession = KitSession(app, store=MemoryStore())
    with pytest.raises(RuntimeError, match="already initialized"):
        kitsession.init_app(app)


def test_store_and_engine_together_is_an_error() -> None:
    with pytest.raises(TypeError, match="either store="):
        KitSession(store=MemoryStore(), engine=sa.create_engine("sqlite://"))


def test_config_defaults_are_set_and_documented() -> None:
    """Every key has its meaning in settings.DOCUMENTATION, which the
    documentation's configuration page renders (docs/configuration.md).
    """
    from flask_kitsession.settings import DEFAULTS
    from flask_kitsession.settings import DOCUMENTATION

    app = make_app()
    KitSession(app, store=MemoryStore())
    for key, value in DEFAULTS.items():
        assert app.config[key] == value
        assert DOCUMENTATION.get(key, "").strip(), f"{key} has no entry in settings.DOCUMENTATION"
    assert set(DOCUMENTATION) == set(DEFAULTS)
    page = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
    assert "```{kitsession-config}" in page
    settings = app.extensions["kitsession"].settings
    assert settings.idle_timeout == app.permanent_session_lifetime


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("KITSESSION_IDLE_TIMEOUT", "soon", "must be a timedelta or a number of seconds"),
        ("KITSESSION_IDLE_TIMEOUT", -5, "must be positive"),
        ("KITSESSION_TOUCH_INTERVAL", timedelta(days=40), "must be shorter"),
        ("KITSESSION_MAX_DATA_SIZE", 0, "positive int"),
        ("KITSESSION_CARRY_OVER_KEYS", "cart", "list of keys"),
        ("KITSESSION_CARRY_OVER_KEYS", ["*"], "on its own"),
    ],
)
def test_bad_config_names_the_key(key: str, value: t.Any, message: str) -> None:
    app = make_app(**{key: value})
    with pytest.raises((TypeError, ValueError), match=message):
        KitSession(app, store=MemoryStore())


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("KITSESSION_ENGINE_OPTIONS", {"pool_size": "5"}, TypeError),
        ("KITSESSION_ENGINE_OPTIONS", {"echo": "loud"}, TypeError),
        ("KITSESSION_ENGINE_OPTIONS", {"poolclass": "QueuePool"}, TypeError),
        ("KITSESSION_ENGINE_OPTIONS", {"connect_args": "connect_timeout=5"}, ValueError),
        ("KITSESSION_ENGINE_OPTIONS", {"pool_sise": 5}, TypeError),
        ("KITSESSION_USER_FIELDS", [1], TypeError),
        ("KITSESSION_USER_FIELDS", "email", TypeError),
        ("KITSESSION_DATABASE_URL", "postgres://ada@db.example/app", ValueError),
    ],
)
def test_bad_sql_config_names_the_key(
    key: str, value: t.Any, error: type[Exception], tmp_path: Path
) -> None:
    """What only the SQL store reads is refused at start too, naming the key:
    create_engine()'s own KeyError or AttributeError says nothing of where the
    option came from.
    """
    config = {"KITSESSION_DATABASE_URL": f"sqlite:///{tmp_path / 's.sqlite3'}", key: value}
    app = make_app(**config)
    with pytest.raises(error, match=key):
        KitSession(app)


def test_durations_in_seconds() -> None:
    app = make_app(KITSESSION_IDLE_TIMEOUT=600, KITSESSION_ABSOLUTE_TIMEOUT=3600.0)
    KitSession(app, store=MemoryStore())
    settings = app.extensions["kitsession"].settings
    assert settings.idle_timeout == timedelta(minutes=10)
    assert settings.absolute_timeout == timedelta(hours=1)


# -- the app's own user model ------------------------------------------------------


class AppBase(DeclarativeBase):
    pass


class Member(AppBase):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255))
    display_name: Mapped[str] = mapped_column(sa.String(80))
    password_hash: Mapped[str] = mapped_column(sa.String(255))


def test_the_apps_own_user_model(empty_database: sa.Engine) -> None:
    AppBase.metadata.create_all(empty_database)
    with empty_database.begin() as connection:
        connection.execute(
            sa.insert(Member).values(
                id="u-42", email="lin@example.com", display_name="Lin", password_hash="x"
            )
        )
    app = make_app(KITSESSION_USER_MODEL=Member)
    KitSession(app, engine=empty_database)
    migrate.upgrade(app)
    assert migrate.check(app) == []

    @app.post("/login")
    def login() -> str:
        session["user_id"] = "u-42"
        return "in"

    @app.get("/who")
    def who() -> t.Any:
        user = current_session.user
        if user is None:
            return jsonify(id=None)
        assert isinstance(user, Member)
        return jsonify(
            id=user.id, name=user.display_name, unloaded=sorted(sa.inspect(user).unloaded)
        )

    client = app.test_client()
    client.post("/login")
    assert client.get("/who").json == {
        "id": "u-42",
        "name": "Lin",
        # an instance of the app's own class; password columns are not loaded
        # unless asked for
        "unloaded": ["password_hash"],
    }
    # Deleting the user deletes their sessions (ON DELETE CASCADE).
    with empty_database.begin() as connection:
        connection.execute(sa.delete(Member))
        assert connection.execute(sa.text("SELECT count(*) FROM session")).scalar() == 0
    assert client.get("/who").json == {"id": None}


def test_user_model_as_import_string_and_fields(empty_database: sa.Engine) -> None:
    AppBase.metadata.create_all(empty_database)
    app = make_app(
        KITSESSION_USER_MODEL="tests.test_extension:Member",
        KITSESSION_USER_FIELDS=["id", "display_name"],
    )
    KitSession(app, engine=empty_database)
    store = kitsession_store(app)
    assert store.user_table.name == "users"
    assert store.users.fields == ("id", "display_name")
    assert store.owns_user_table is False


def test_unknown_user_fields_are_named() -> None:
    with pytest.raises(ValueError, match="nickname"):
        SQLAlchemyStore(sa.create_engine("sqlite://"), user_fields=["id", "nickname"])


def test_user_model_that_is_not_a_table() -> None:
    with pytest.raises(TypeError, match="KITSESSION_USER_MODEL"):
        SQLAlchemyStore(sa.create_engine("sqlite://"), user_model=object())


# -- failures ---------------------------------------------------------------------


def unreachable_app(tmp_path: Path) -> Flask:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused.
    engine = create_store_engine("postgresql+psycopg://postgres@127.0.0.1:9/test")
    app = make_app()
    KitSession(app, engine=engine)
    add_views(app)
    return app


def test_unreachable_database_gives_503_and_keeps_the_cookie(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = unreachable_app(tmp_path)
    client = app.test_client()
    with caplog.at_level(logging.ERROR, logger="flask_kitsession"):
        response = client.post("/set", data={"a": "1"})
    assert response.status_code == 503
    assert b"Traceback" not in response.data
    assert "Could not save the session" in caplog.text

    # A cookie from before the outage: refused with 503, and kept for later.
    signed = app.session_interface.signer.dumps(app, new_token())  # type: ignore[attr-defined]
    client.set_cookie("session", signed)
    response = client.get("/get")
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers
    assert session_cookie(client) == signed


def test_503_goes_through_the_apps_error_handler(tmp_path: Path) -> None:
    app = unreachable_app(tmp_path)

    @app.errorhandler(503)
    def unavailable(error: Exception) -> tuple[str, int]:
        return "back soon", 503

    client = app.test_client()
    assert client.post("/set", data={"a": "1"}).text == "back soon"
    client.set_cookie("session", app.session_interface.signer.dumps(app, new_token()))  # type: ignore[attr-defined]
    response = client.get("/get")
    assert (response.status_code, response.text) == (503, "back soon")


def test_missing_tables_say_how_to_create_them(
    empty_database: sa.Engine, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    KitSession(app, engine=empty_database)
    add_views(app)
    with caplog.at_level(logging.ERROR, logger="flask_kitsession"):
        response = app.test_client().post("/set", data={"a": "1"})
    assert response.status_code == 503
    assert "flask kitsession db upgrade" in caplog.text


def test_database_comes_back(empty_database: sa.Engine) -> None:
    app = make_app()
    KitSession(app, engine=empty_database)
    add_views(app)
    client = app.test_client()
    assert client.post("/set", data={"a": "1"}).status_code == 503
    upgrade(empty_database, MigrationTarget.for_user_model())
    assert client.post("/set", data={"a": "1"}).status_code == 200
    assert client.get("/get").json == {"a": "1"}


def test_reads_survive_connections_killed_by_the_server(pg_schemas: SchemaFactory) -> None:
    """A pooled connection that the server closed (a restart, an idle timeout
    in a proxy) costs the visitor nothing: the read is repeated on a new one.
    """
    name = f"kitsession-kill-{uuid.uuid4().hex[:8]}"
    engine = pg_schemas.engine(connect_args_extra={"application_name": name})
    upgrade(engine)
    app = make_app()
    KitSession(app, engine=engine)
    add_views(app)
    client = app.test_client()
    client.post("/set", data={"a": "1"})
    assert client.get("/get").json == {"a": "1"}
    with pg_schemas.admin.connect() as admin:
        killed = admin.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name"
            ),
            {"name": name},
        ).scalar()
    assert killed and killed >= 1
    assert client.get("/get").json == {"a": "1"}
    engine.dispose()
