"""Review 6: attacks on what a new Flask user copies and relies on: the
README quick start as written, every key of docs/configuration.md, the
Flask-Login integration of docs/flask-login.md, the ``flask kitsession``
commands of docs/cli.md, the testing helpers of docs/testing.md and the
signals of docs/signals.md.

Each test asserts the PROMISED behaviour, and its docstring quotes the
promise and says what the attack does. A test that fails is a broken
promise; a test that passes is a promise that held. The lifecycle and data
rules, attacked by the earlier reviews, are not repeated here. Every test
builds its own app on a SQLite file in ``tmp_path``; the Redis settings are
only checked at ``init_app`` (nothing is written to the shared Redis).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import typing as t
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from flask.testing import FlaskClient
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import LoginManager
from flask_login import logout_user
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_kitsession import current_session
from flask_kitsession import fresh_login_required
from flask_kitsession import KitSession
from flask_kitsession import migrate
from flask_kitsession import purge_expired
from flask_kitsession import signals
from flask_kitsession import UnknownUserError
from flask_kitsession import with_new_session
from flask_kitsession.models import user_table
from flask_kitsession.testing import KitSessionClient
from flask_kitsession.testing import login
from flask_kitsession.testing import revoke
from flask_kitsession.testing import session_of

README = Path(__file__).resolve().parent.parent / "README.md"


class Clock:
    """A clock moved by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


# --------------------------------------------------------------------------
# helpers


def quickstart_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The README's quick start, saved as quickstart.py and imported from
    its own directory, as ``flask --app quickstart`` would."""
    text = README.read_text()
    block = text.split("<!-- quickstart-start -->")[1].split("<!-- quickstart-end -->")[0]
    code = block.split("```python\n")[1].split("```")[0]
    (tmp_path / "quickstart.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    name = f"quickstart_{tmp_path.name}"
    spec = importlib.util.spec_from_file_location(name, tmp_path / "quickstart.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    app: Flask = module.app
    return app


def plain_app(tmp_path: Path, clock: Clock | None = None, **config: t.Any) -> Flask:
    """An app on kitsession's own SQLite engine and user table, two users."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="review6", KITSESSION_DATABASE_URL=f"sqlite:///{tmp_path}/s.db")
    app.config.update(config)
    KitSession(app, clock=clock or Clock())
    migrate.upgrade(app)
    engine = app.extensions["kitsession"].store.engine
    with engine.begin() as db:
        db.execute(
            user_table.insert(),
            [{"email": "ada@x", "password_hash": "x"}, {"email": "bob@x", "password_hash": "x"}],
        )

    @app.post("/login/<int:user_id>")
    @with_new_session
    def login_view(user_id: int) -> str:
        session["user_id"] = user_id
        return "ok"

    @app.post("/write")
    def write() -> str:
        for key, value in request.form.items():
            session[key] = value
        return "ok"

    @app.get("/me")
    def me() -> t.Any:
        user = current_session.user
        return jsonify(
            user_id=current_session.user_id,
            user=None if user is None else repr(user),
            data=dict(session),
            user_agent=current_session.user_agent,
            ip=current_session.ip_address,
        )

    return app


def bare_app(tmp_path: Path, **config: t.Any) -> Flask:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="review6", KITSESSION_DATABASE_URL=f"sqlite:///{tmp_path}/s.db")
    app.config.update(config)
    return app


# A Flask-SQLAlchemy app, as a user writes it: one module-level ``db`` and
# model, and an app factory (docs/testing.md "In your fixtures").


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)


def create_app(config: dict[str, t.Any]) -> Flask:
    """The factory of docs/testing.md, with Flask-Login and Flask-SQLAlchemy
    wired as docs/flask-login.md writes it."""
    app = Flask(__name__, instance_path=config.pop("instance_path"))
    app.config.update(SECRET_KEY="review6")
    app.config.update(config)
    db.init_app(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "login_page"
    kitsession = KitSession(app, db=db, user_model=User)
    kitsession.init_login_manager(login_manager)

    @app.get("/login")
    def login_page() -> str:
        return "login page"

    @app.post("/login/<int:user_id>")
    def do_login(user_id: int) -> str:
        user = db.session.get(User, user_id)
        login_user(
            user,
            remember=request.args.get("remember") == "1",
            fresh=request.args.get("fresh", "1") == "1",
        )
        return "ok"

    @app.post("/logout")
    def do_logout() -> str:
        logout_user()
        return "bye"

    @app.get("/profile")
    @login_required
    def profile() -> str:
        obj = current_user._get_current_object()
        return f"{obj.email} {isinstance(obj, User)} {obj in db.session}"

    @app.get("/sensitive")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def sensitive() -> str:
        return "sensitive"

    @app.get("/reauth")
    def reauth() -> str:
        return "reauth"

    with app.app_context():
        db.create_all()
        db.session.add_all([User(email="ada@x"), User(email="bob@x")])
        db.session.commit()
    return app


def factory_app(tmp_path: Path, **config: t.Any) -> Flask:
    tmp_path.mkdir(parents=True, exist_ok=True)
    return create_app(
        {
            "instance_path": str(tmp_path / "instance"),
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/app.db",
            **config,
        }
    )


def fresh_login_app(tmp_path: Path, **config: t.Any) -> Flask:
    """The same app on a db and model of its own, so that the tests of
    Flask-Login that held do not depend on the factory bug above."""

    class LocalBase(DeclarativeBase):
        pass

    local_db = SQLAlchemy(model_class=LocalBase)
    tmp_path.mkdir(parents=True, exist_ok=True)

    class LocalUser(UserMixin, local_db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "user"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(255), unique=True)

    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(SECRET_KEY="review6", SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/app.db")
    app.config.update(config)
    local_db.init_app(app)
    login_manager = LoginManager(app)
    login_manager.login_view = "login_page"
    KitSession(app, db=local_db, user_model=LocalUser).init_login_manager(login_manager)

    @app.get("/login")
    def login_page() -> str:
        return "login page"

    @app.post("/login/<int:user_id>")
    def do_login(user_id: int) -> str:
        user = local_db.session.get(LocalUser, user_id)
        login_user(
            user,
            remember=request.args.get("remember") == "1",
            fresh=request.args.get("fresh", "1") == "1",
        )
        return "ok"

    @app.get("/profile")
    @login_required
    def profile() -> str:
        obj = current_user._get_current_object()
        return f"{obj.email} {isinstance(obj, LocalUser)} {obj in local_db.session}"

    @app.get("/sensitive")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def sensitive() -> str:
        return "sensitive"

    @app.get("/reauth")
    def reauth() -> str:
        return "reauth"

    with app.app_context():
        local_db.create_all()
        local_db.session.add_all([LocalUser(email="ada@x"), LocalUser(email="bob@x")])
        local_db.session.commit()
    return app


def error_text(excinfo: pytest.ExceptionInfo[BaseException]) -> str:
    return f"{type(excinfo.value).__name__}: {excinfo.value}"


# --------------------------------------------------------------------------
# README quick start


def test_quickstart_as_written_two_devices_sign_out_others_logout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README.md "Quick start" (lines 98-108): register, log in on a laptop
    and a phone, "signed in on 2 devices", sign-out-others, then the phone
    is "not logged in". Held."""
    app = quickstart_app(tmp_path, monkeypatch)
    laptop, phone = app.test_client(), app.test_client()
    form = {"email": "ada@example.com", "password": "secret"}
    assert laptop.post("/register", data=form).text == "registered\n"
    assert laptop.post("/login", data=form).text == "logged in\n"
    assert phone.post("/login", data=form).text == "logged in\n"
    assert laptop.get("/").text == "ada@example.com, signed in on 2 devices\n"
    assert laptop.post("/sign-out-others").text == "signed out 1 other devices\n"
    assert phone.get("/").text == "not logged in\n"
    assert laptop.post("/logout").text == "logged out\n"
    assert laptop.get("/").text == "not logged in\n"
    # the quickstart's database is the file next to it
    assert (tmp_path / "quickstart.sqlite3").exists()


def test_quickstart_bad_form_input_is_a_4xx_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README.md quick start, "bad input in the forms" as a new user would
    try it: a missing field, a wrong password, an anonymous sign-out-others
    and logout. Held: 400, 401, 200, 200."""
    app = quickstart_app(tmp_path, monkeypatch)
    client = app.test_client()
    client.post("/register", data={"email": "ada@example.com", "password": "secret"})
    assert client.post("/register", data={"email": "x@example.com"}).status_code == 400
    assert client.post("/login", data={"email": "ada@example.com"}).status_code == 400
    wrong = client.post("/login", data={"email": "ada@example.com", "password": "nope"})
    assert wrong.status_code == 401
    nobody = client.post("/login", data={"email": "nobody@example.com", "password": "x"})
    assert nobody.status_code == 401
    assert client.post("/sign-out-others").status_code == 200
    assert client.post("/logout").status_code == 200


def test_quickstart_registering_the_same_email_twice_is_not_a_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/quickstart.md line 164: "It runs as it is"; README.md says the
    library gives "never an error" for bad input it meets. Attack: the curl
    line of README.md line 102 run twice (a user who re-runs the walkthrough,
    or a visitor registering an address that exists).

    Observed: the second /register is a 500 Internal Server Error
    (sqlite3.IntegrityError: UNIQUE constraint failed: user.email), since
    the copied view inserts blindly into kitsession's user table. The app
    code a user copies from the README should answer a 4xx here."""
    app = quickstart_app(tmp_path, monkeypatch)
    client = app.test_client()
    form = {"email": "ada@example.com", "password": "secret"}
    assert client.post("/register", data=form).status_code == 200
    again = client.post("/register", data=form)
    assert again.status_code < 500, again.text


# --------------------------------------------------------------------------
# docs/configuration.md: "init_app checks them and names the key that is
# wrong (a TypeError or ValueError), so a typo fails at start"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("KITSESSION_IDLE_TIMEOUT", "1h"),
        ("KITSESSION_IDLE_TIMEOUT", -5),
        ("KITSESSION_IDLE_TIMEOUT", float("nan")),
        ("KITSESSION_ABSOLUTE_TIMEOUT", timedelta(0)),
        ("KITSESSION_TOUCH_INTERVAL", None),
        ("KITSESSION_TOUCH_INTERVAL", timedelta(days=400)),
        ("KITSESSION_MAX_DATA_SIZE", "big"),
        ("KITSESSION_MAX_DATA_SIZE", 0),
        ("KITSESSION_CARRY_OVER_KEYS", "cart"),
        ("KITSESSION_CARRY_OVER_KEYS", ["cart", 5]),
        ("KITSESSION_USER_ID_KEYS", []),
        ("KITSESSION_USER_ID_KEYS", "user_id"),
        ("KITSESSION_REAUTHENTICATE_VIEW", 5),
        ("KITSESSION_USER_MODEL", 123),
        ("KITSESSION_USER_FIELDS", ["nosuch"]),
        ("PERMANENT_SESSION_LIFETIME", "x"),
    ],
)
def test_bad_values_that_are_refused_at_start_naming_the_key(
    tmp_path: Path, key: str, value: t.Any
) -> None:
    """docs/configuration.md lines 242-243. Held for these keys and values."""
    app = bare_app(tmp_path, **{key: value})
    with pytest.raises((TypeError, ValueError)) as excinfo:
        KitSession(app)
    assert key in str(excinfo.value)


@pytest.mark.parametrize(
    "key", ["KITSESSION_SIGN_COOKIE", "KITSESSION_TRACK_USER_AGENT", "KITSESSION_TRACK_IP"]
)
@pytest.mark.parametrize("value", ["false", "no", None])
def test_boolean_keys_refuse_values_that_are_not_booleans(
    tmp_path: Path, key: str, value: t.Any
) -> None:
    """docs/configuration.md lines 242-243: "init_app checks them and names
    the key that is wrong (a TypeError or ValueError), so a typo fails at
    start". The table: KITSESSION_SIGN_COOKIE "Sign the token with
    SECRET_KEY. Off: the cookie is the bare 256-bit token."

    Observed: "false", "no" and None are all accepted silently. A string
    "false" (from an .env file or a hand-written config) is truthy, so
    ``KITSESSION_SIGN_COOKIE = "false"`` still signs the cookie and
    ``KITSESSION_TRACK_IP = "false"`` still stores every address, the
    opposite of what the user wrote."""
    app = bare_app(tmp_path, **{key: value})
    with pytest.raises((TypeError, ValueError), match=key):
        KitSession(app)


def test_sign_cookie_false_string_does_what_it_says_or_is_refused(tmp_path: Path) -> None:
    """docs/configuration.md, KITSESSION_SIGN_COOKIE: "Off: the cookie is
    the bare 256-bit token." Attack: ``KITSESSION_SIGN_COOKIE="false"``.

    Observed: accepted, and the cookie is still ``token.signature``: the
    setting is silently ignored (it is neither refused nor honoured)."""
    app = bare_app(tmp_path, KITSESSION_SIGN_COOKIE="false")
    try:
        KitSession(app)
    except (TypeError, ValueError) as error:
        assert "KITSESSION_SIGN_COOKIE" in str(error)
        return
    migrate.upgrade(app)

    @app.post("/write")
    def write() -> str:
        session["x"] = 1
        return "ok"

    cookie = app.test_client().post("/write").headers["Set-Cookie"]
    value = cookie.split(";")[0].split("=", 1)[1]
    assert "." not in value, f"a signed cookie although SIGN_COOKIE was 'false': {cookie}"


@pytest.mark.parametrize("value", ["pool_size=5", [("pool_size", 5)]])
def test_engine_options_that_are_not_a_mapping_name_the_key(tmp_path: Path, value: t.Any) -> None:
    """docs/configuration.md lines 242-243 ("names the key that is wrong").
    KITSESSION_ENGINE_OPTIONS: "Keyword arguments for
    sqlalchemy.create_engine".

    Observed: ``TypeError: flask_kitsession.stores.sql.create_store_engine()
    argument after ** must be a mapping, not str``: an internal function is
    named, the key is not."""
    app = bare_app(tmp_path, KITSESSION_ENGINE_OPTIONS=value)
    with pytest.raises((TypeError, ValueError)) as excinfo:
        KitSession(app)
    assert "KITSESSION_ENGINE_OPTIONS" in str(excinfo.value), error_text(excinfo)


@pytest.mark.parametrize("value", [123, "notaurl", ""])
def test_a_bad_database_url_is_a_type_or_value_error_naming_the_key(
    tmp_path: Path, value: t.Any
) -> None:
    """docs/configuration.md lines 242-243: "init_app checks them and names
    the key that is wrong (a TypeError or ValueError)".

    Observed: ``sqlalchemy.exc.ArgumentError: Could not parse SQLAlchemy URL
    from given URL string`` (or "Expected string or URL object, got 123"):
    neither a TypeError nor a ValueError, and KITSESSION_DATABASE_URL is not
    named, so ``except ValueError`` around start-up misses it."""
    app = bare_app(tmp_path)
    app.config["KITSESSION_DATABASE_URL"] = value
    with pytest.raises(Exception) as excinfo:
        KitSession(app)
    assert isinstance(excinfo.value, (TypeError, ValueError)), error_text(excinfo)
    assert "KITSESSION_DATABASE_URL" in str(excinfo.value), error_text(excinfo)


@pytest.mark.parametrize(
    "value", ["myapp_nosuch.models:User", "os:NoSuchUser", "myapp.models.User"]
)
def test_a_user_model_import_string_that_does_not_import_names_the_key(
    tmp_path: Path, value: str
) -> None:
    """docs/configuration.md lines 242-243; KITSESSION_USER_MODEL: "an
    import string ("myapp.models:User")".

    Observed: a bare ``ModuleNotFoundError: No module named
    'myapp_nosuch'`` or ``AttributeError: module 'os' has no attribute
    'NoSuchUser'``: not a TypeError/ValueError, and the key is not named (an
    AttributeError at start looks like a bug in the app's own code). A
    string without the colon gives ``ValueError: 'myapp.models.User' is not
    an import string like 'package.module:User'.``: the right type, but the
    key is not named either."""
    app = bare_app(tmp_path, KITSESSION_USER_MODEL=value)
    with pytest.raises(Exception) as excinfo:
        KitSession(app)
    assert isinstance(excinfo.value, (TypeError, ValueError)), error_text(excinfo)
    assert "KITSESSION_USER_MODEL" in str(excinfo.value), error_text(excinfo)


def test_a_redis_url_that_is_not_a_string_names_the_key(tmp_path: Path) -> None:
    """docs/configuration.md lines 242-243; KITSESSION_REDIS_URL: "Keep
    sessions in Redis at this URL".

    Observed: ``AttributeError: 'int' object has no attribute 'lower'``
    from redis-py, naming no key."""
    app = bare_app(tmp_path, KITSESSION_REDIS_URL=6379)
    with pytest.raises(Exception) as excinfo:
        KitSession(app)
    assert isinstance(excinfo.value, (TypeError, ValueError)), error_text(excinfo)
    assert "KITSESSION_REDIS_URL" in str(excinfo.value), error_text(excinfo)


@pytest.mark.parametrize("value", [b"myapp:", 5, None])
def test_a_redis_prefix_that_is_not_a_string_is_refused(tmp_path: Path, value: t.Any) -> None:
    """docs/configuration.md lines 242-243; KITSESSION_REDIS_PREFIX: "Put
    before every Redis key kitsession writes, so several apps can share a
    Redis database."

    Observed: accepted; requests then write keys such as
    ``b'myapp:'session:{4f}:...``, ``5session:...`` and
    ``Nonesession:...`` (seen once by hand, then deleted): the prefix the
    user meant is not the one used, so two apps can collide."""
    app = bare_app(
        tmp_path,
        KITSESSION_REDIS_URL="redis://127.0.0.1:6379/0",
        KITSESSION_REDIS_PREFIX=value,
    )
    with pytest.raises((TypeError, ValueError), match="KITSESSION_REDIS_PREFIX"):
        KitSession(app)


def test_redis_cluster_false_as_a_string_is_refused_or_means_off(tmp_path: Path) -> None:
    """docs/configuration.md lines 242-243; KITSESSION_REDIS_CLUSTER (default
    False): "KITSESSION_REDIS_URL names a node of a Redis Cluster".

    Observed: ``KITSESSION_REDIS_CLUSTER="false"`` is taken as true; init_app
    tries cluster mode against a standalone server and fails with
    ``RedisClusterException: Redis Cluster cannot be connected...``,
    naming no key."""
    app = bare_app(
        tmp_path,
        KITSESSION_REDIS_URL="redis://127.0.0.1:6379/0",
        KITSESSION_REDIS_CLUSTER="false",
    )
    with pytest.raises(Exception) as excinfo:
        KitSession(app)
    assert isinstance(excinfo.value, (TypeError, ValueError)), error_text(excinfo)
    assert "KITSESSION_REDIS_CLUSTER" in str(excinfo.value), error_text(excinfo)


@pytest.mark.parametrize("value", [26379, "a:b", ["sentinel-without-port"]])
def test_bad_redis_sentinels_name_the_key(tmp_path: Path, value: t.Any) -> None:
    """docs/configuration.md lines 242-243 ("names the key that is wrong");
    KITSESSION_REDIS_SENTINELS: ``["host:26379", ...]`` or one
    comma-separated string.

    Observed: ``TypeError: 'int' object is not iterable`` for 26379, and
    ``ValueError: A Sentinel is named as host:port, got 'a:b'`` for the
    others: the key KITSESSION_REDIS_SENTINELS is never named."""
    app = bare_app(
        tmp_path,
        KITSESSION_REDIS_URL="redis://mymaster/0",
        KITSESSION_REDIS_SENTINELS=value,
    )
    with pytest.raises((TypeError, ValueError)) as excinfo:
        KitSession(app)
    assert "KITSESSION_REDIS_SENTINELS" in str(excinfo.value), error_text(excinfo)


@pytest.mark.parametrize(
    "key", ["KITSESSION_IDLE_TIMOUT", "KITSESSION_CARRY_OVER_KEY", "KITSESSION_SIGN_COOKIES"]
)
def test_a_misspelled_kitsession_key_fails_at_start(tmp_path: Path, key: str) -> None:
    """docs/configuration.md lines 237-243: kitsession "adds only these" keys,
    and "init_app checks them and names the key that is wrong ..., so a
    typo fails at start, not on the first request."

    Observed: a misspelled KITSESSION_* key (``KITSESSION_IDLE_TIMOUT =
    timedelta(minutes=5)``) is accepted in silence and the default (31
    days) applies: the typo never fails."""
    app = bare_app(tmp_path, **{key: timedelta(minutes=5) if "TIMOUT" in key else ["cart"]})
    with pytest.raises((TypeError, ValueError), match=key):
        KitSession(app)


def test_a_misspelled_reauthenticate_view_fails_at_start(tmp_path: Path) -> None:
    """docs/configuration.md line 243: "so a typo fails at start, not on the
    first request"; KITSESSION_REAUTHENTICATE_VIEW: "The endpoint
    fresh_login_required sends a stale login to".

    Observed: ``KITSESSION_REAUTHENTICATE_VIEW="reauthenticat"`` is
    accepted; the first stale login on a sensitive page is a 500
    (werkzeug BuildError: Could not build url for endpoint
    'reauthenticat'). It is not checked at start nor at the first request
    of the app, only when a user meets it."""
    app = plain_app(tmp_path, KITSESSION_REAUTHENTICATE_VIEW="reauthenticat")

    @app.get("/reauthenticate")
    def reauthenticate() -> str:
        return "again"

    @app.get("/sensitive")
    @fresh_login_required(max_age=timedelta(minutes=10))
    def sensitive() -> str:
        return "sensitive"

    client = app.test_client()
    assert client.get("/me").status_code == 200  # the app starts and serves
    app.testing = False
    response = client.get("/sensitive")
    assert response.status_code != 500, (
        "a typo in the endpoint surfaces as a 500 on a user's request"
    )


def test_flask_cookie_settings_shape_the_cookie(tmp_path: Path) -> None:
    """docs/configuration.md line 233: SESSION_COOKIE_NAME, _DOMAIN, _PATH,
    _SECURE, _HTTPONLY, _SAMESITE, _PARTITIONED "as for Flask's own
    session". Held."""
    app = plain_app(
        tmp_path,
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_DOMAIN="example.com",
        SESSION_COOKIE_PATH="/",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
    )
    cookie = app.test_client().post("/write", data={"x": "1"}, base_url="https://www.example.com")
    header = cookie.headers["Set-Cookie"]
    for part in (
        "sid=",
        "Domain=example.com",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Partitioned",
    ):
        assert part in header, header


def test_each_session_key_does_what_its_line_says(tmp_path: Path) -> None:
    """docs/configuration.md table: PERMANENT_SESSION_LIFETIME is the
    default idle timeout; KITSESSION_IDLE_TIMEOUT takes seconds;
    TRACK_USER_AGENT/TRACK_IP off store nothing; the user agent is cut to
    512; USER_FIELDS None leaves out password columns; USER_ID_KEYS without
    "id" does not link by "id"; CARRY_OVER_KEYS keeps a cart at login.
    Held."""
    clock = Clock()
    app = plain_app(tmp_path / "a", clock, PERMANENT_SESSION_LIFETIME=timedelta(minutes=30))
    client = app.test_client()
    client.post("/login/1")
    clock.now += timedelta(minutes=29)
    assert client.get("/me").json["user_id"] == 1  # type: ignore[index]
    clock.now += timedelta(minutes=31)
    assert client.get("/me").json["user_id"] is None  # type: ignore[index]

    clock = Clock()
    app = plain_app(tmp_path / "b", clock, KITSESSION_IDLE_TIMEOUT=600)
    client = app.test_client()
    client.post("/login/1")
    clock.now += timedelta(seconds=601)
    assert client.get("/me").json["user_id"] is None  # type: ignore[index]

    app = plain_app(tmp_path / "c", KITSESSION_TRACK_USER_AGENT=False, KITSESSION_TRACK_IP=False)
    client = app.test_client()
    client.post("/login/1")
    seen = client.get("/me").json
    assert seen is not None and seen["user_agent"] is None and seen["ip"] is None

    app = plain_app(tmp_path / "d")
    client = app.test_client()
    client.post("/login/1", headers={"User-Agent": "U" * 1000})
    seen = client.get("/me").json
    assert seen is not None and len(seen["user_agent"]) == 512
    assert "password" not in seen["user"] and "ada@x" in seen["user"]

    app = plain_app(tmp_path / "e", KITSESSION_USER_ID_KEYS=["user_id"])
    client = app.test_client()
    client.post("/write", data={"id": "1"})
    assert client.get("/me").json["user_id"] is None  # type: ignore[index]

    app = plain_app(tmp_path / "f", KITSESSION_CARRY_OVER_KEYS=["cart"])
    client = app.test_client()
    client.post("/write", data={"cart": "apples", "other": "x"})
    client.post("/login/1")
    assert client.get("/me").json["data"] == {"cart": "apples", "user_id": 1}  # type: ignore[index]


# --------------------------------------------------------------------------
# docs/flask-login.md and docs/testing.md with Flask-SQLAlchemy


def test_the_documented_app_factory_builds_a_second_app(tmp_path: Path) -> None:
    """docs/testing.md "In your fixtures": ``app = create_app({...})`` in a
    function-scoped fixture, i.e. one app per test; docs/flask-login.md
    "Flask-SQLAlchemy": ``db = SQLAlchemy(app)`` / ``KitSession(app, db=db,
    user_model=User)  # after db.init_app(app)``.

    Attack: the usual factory (module-level ``db`` and ``User``,
    ``db.init_app(app)`` and ``KitSession(app, db=db, user_model=User)``
    inside ``create_app``) called twice, as the second test of a user's
    suite does.

    Observed: the second ``create_app`` raises
    ``sqlalchemy.exc.InvalidRequestError: Table 'session' is already defined
    for this MetaData instance.`` Every test after the first fails; so does
    any process that builds two apps (a CLI plus a worker, an app per
    tenant)."""
    first = factory_app(tmp_path / "one")
    assert first.test_client().post("/login/1").status_code == 200
    second = factory_app(tmp_path / "two")
    client = second.test_client()
    assert client.post("/login/1").status_code == 200
    assert client.get("/profile").text == "ada@x True True"


def test_flask_login_current_user_is_the_mapped_user_from_the_session(tmp_path: Path) -> None:
    """docs/flask-login.md lines 22-26: current_user "is an instance of your
    class, attached to db.session"; login_required redirects to the login
    view with ``next``; logout_user ends the session. Held."""
    app = fresh_login_app(tmp_path)
    client = app.test_client()
    anonymous = client.get("/profile")
    assert anonymous.status_code == 302 and anonymous.location == "/login?next=%2Fprofile"
    client.post("/login/1")
    assert client.get("/profile").text == "ada@x True True"


def test_fresh_login_required_refuses_stale_and_remembered_logins(tmp_path: Path) -> None:
    """docs/flask-login.md lines 13-18 and 48-53: login_user(fresh=False)
    and a remember-cookie login are not fresh; stale logins go to
    KITSESSION_REAUTHENTICATE_VIEW with ``next``, or get 401; a
    remember-cookie login gets a new token. Held."""
    app = fresh_login_app(tmp_path / "a")
    client = app.test_client()
    client.post("/login/1?fresh=0")
    assert client.get("/sensitive").status_code == 401
    client.post("/login/1")
    assert client.get("/sensitive").text == "sensitive"

    client.post("/login/2?remember=1")
    client.delete_cookie("session")  # the browser closed
    restored = client.get("/profile")
    assert restored.text == "bob@x True True"
    assert "session=" in restored.headers.get("Set-Cookie", "")
    assert client.get("/sensitive").status_code == 401

    app = fresh_login_app(tmp_path / "b", KITSESSION_REAUTHENTICATE_VIEW="reauth")
    client = app.test_client()
    client.post("/login/1?fresh=0")
    stale = client.get("/sensitive?a=1")
    assert stale.status_code == 302 and stale.location.startswith("/reauth?next=")


# --------------------------------------------------------------------------
# docs/testing.md


def test_testing_login_permanent_gives_a_cookie_that_outlives_the_browser(tmp_path: Path) -> None:
    """docs/testing.md line 159: "``permanent=True`` gives the session a
    cookie that outlives the browser."

    Observed: ``login(client, 1, permanent=True)`` stores a session whose
    data says ``_permanent: True``, but the cookie handed to the client has
    no Expires/Max-Age (``client.get_cookie("session").expires is None``):
    a browser-session cookie, exactly what permanent=False gives. A test of
    "remember me" written with this helper passes although nothing outlives
    the browser."""
    app = plain_app(tmp_path)
    client = app.test_client()
    login(client, 1, permanent=True)
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert cookie.expires is not None, "login(permanent=True) gave a browser-session cookie"


def test_testing_helpers_in_a_users_pytest(tmp_path: Path) -> None:
    """docs/testing.md: login() returns the stored ServerSession with the
    client's address and user agent; session_of() finds it; revoke() ends
    it, returns True and sends session_revoked "admin"; fresh=False is
    refused by fresh_login_required; an unknown user raises
    UnknownUserError; KitSessionClient(user=...) logs in and revoke()s.
    Held."""
    app = fresh_login_app(tmp_path)
    received: list[dict[str, t.Any]] = []

    def receiver(sender: Flask, **kwargs: t.Any) -> None:
        received.append(kwargs)

    client = app.test_client()
    with signals.session_revoked.connected_to(receiver, app):
        stored = login(client, 1)
        assert stored.user_id == 1 and stored.ip_address == "127.0.0.1"
        assert client.get("/profile").text == "ada@x True True"
        assert client.get("/sensitive").text == "sensitive"
        found = session_of(client)
        assert found is not None and found.id == stored.id
        assert revoke(client) is True
    assert client.get("/profile").status_code == 302
    assert [r["reason"] for r in received] == [signals.ADMIN]

    stale = app.test_client()
    login(stale, 2, fresh=False)
    assert stale.get("/profile").text == "bob@x True True"
    assert stale.get("/sensitive").status_code == 401

    with pytest.raises(UnknownUserError):
        login(app.test_client(), 999)

    app.test_client_class = KitSessionClient
    kit = app.test_client(user=1)
    assert isinstance(kit, KitSessionClient)
    assert kit.get("/profile").text == "ada@x True True"
    assert kit.server_session is not None and kit.server_session.user_id == 1
    assert kit.revoke() is True
    assert kit.get("/profile").status_code == 302


# --------------------------------------------------------------------------
# docs/cli.md


def test_cli_list_revoke_cleanup_as_documented(tmp_path: Path) -> None:
    """docs/cli.md: list prints the table with ids cut to 12 and a count;
    revoke --user prints the sessions it revoked; revoke --session refuses
    fewer than 8 characters; cleanup prints "Deleted N expired sessions."
    and sends session_revoked "expired" once per batch; db check fails
    when the tables differ. Held."""
    clock = Clock()
    app = plain_app(tmp_path, clock, KITSESSION_IDLE_TIMEOUT=timedelta(hours=1))
    for _ in range(2):
        app.test_client().post("/login/1")
    for _ in range(3):
        app.test_client().post("/write", data={"x": "1"})
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["kitsession", "list"])
    assert listed.exit_code == 0 and listed.output.splitlines()[-1] == "5 sessions."
    assert re.match(r"^[0-9a-f]{12}  ", listed.output.splitlines()[1])
    short = runner.invoke(args=["kitsession", "revoke", "--session", "abc"])
    assert short.exit_code != 0
    revoked = runner.invoke(args=["kitsession", "revoke", "--user", "1"])
    assert revoked.exit_code == 0 and "Revoked 2 sessions" in revoked.output
    received: list[dict[str, t.Any]] = []

    def receiver(sender: Flask, **kwargs: t.Any) -> None:
        received.append(kwargs)

    clock.now += timedelta(hours=2)
    with signals.session_revoked.connected_to(receiver, app):
        cleaned = runner.invoke(args=["kitsession", "cleanup", "--batch-size", "2"])
    assert cleaned.exit_code == 0
    assert cleaned.output.strip().splitlines()[-1] == "Deleted 3 expired sessions."
    assert [r["count"] for r in received] == [2, 1]
    assert {r["reason"] for r in received} == {signals.EXPIRED}
    with app.app_context():
        assert purge_expired() == 0

    engine = app.extensions["kitsession"].store.engine
    with engine.begin() as db_:
        db_.exec_driver_sql("DROP INDEX ix_session_expires_at")
    assert runner.invoke(args=["kitsession", "db", "check"]).exit_code != 0


# --------------------------------------------------------------------------
# docs/signals.md


def test_signals_are_sent_once_with_their_arguments_after_the_store_changed(tmp_path: Path) -> None:
    """docs/signals.md: a login sends session_created (replaced = the
    visitor's session) then session_authenticated; a re-login of the same
    user sends session_rotated then session_authenticated; a login as
    another user revokes the first one's session with "logout"; every
    signal comes after the store changed (the new session is stored, the
    revoked one gone). Held."""
    app = plain_app(tmp_path)
    store = app.extensions["kitsession"].store
    events: list[tuple[str, dict[str, t.Any], bool]] = []

    def hear(name: str) -> t.Callable[..., None]:
        def receiver(sender: Flask, **kwargs: t.Any) -> None:
            assert sender is app
            if "session" in kwargs:
                done = store.get(kwargs["session"].id, Clock()()) is not None
            else:
                done = store.get(kwargs["session_id"], Clock()()) is None
            events.append((name, kwargs, done))

        return receiver

    receivers = {
        name: hear(name)
        for name in (
            "session_created",
            "session_authenticated",
            "session_rotated",
            "session_revoked",
        )
    }
    for name, receiver in receivers.items():
        getattr(signals, name).connect(receiver, app)
    try:
        client: FlaskClient = app.test_client()
        client.post("/write", data={"cart": "apples"})
        anonymous = events[-1][1]["session"].id
        events.clear()
        client.post("/login/1")
        assert [e[0] for e in events] == ["session_created", "session_authenticated"]
        assert events[0][1]["replaced"] == anonymous
        assert events[1][1]["user_id"] == 1 and events[1][1]["fresh"] is True
        assert all(e[2] for e in events)
        first = events[0][1]["session"].id
        events.clear()
        client.post("/login/1")
        assert [e[0] for e in events] == ["session_rotated", "session_authenticated"]
        assert events[0][1]["previous_id"] == first
        rotated = events[0][1]["session"].id
        events.clear()
        client.post("/login/2")
        assert [e[0] for e in events] == [
            "session_revoked",
            "session_created",
            "session_authenticated",
        ]
        assert events[0][1] == {
            "user_id": 1,
            "session_id": rotated,
            "count": 1,
            "reason": signals.LOGOUT,
        }
        assert all(e[2] for e in events)
    finally:
        for name, receiver in receivers.items():
            getattr(signals, name).disconnect(receiver, app)
