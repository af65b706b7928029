"""Sessions link users by the id Flask-Login stores: ``fs_uniquifier`` with no
setting (Flask-Security), another column with ``KITSESSION_USER_ID_COLUMN``
(a Flask-Login "alternative token"), and changing that id signs them out.
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from alembic import command
from benchmarks.queries import QueryRecorder
from flask import Flask
from flask import request
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import LoginManager
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_kitsession import current_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import KitSession
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import SQLAlchemyStore
from flask_kitsession import UnknownUserError
from flask_kitsession.migrate import alembic_config
from flask_kitsession.migrate import MigrationTarget
from flask_kitsession.migrate import schema_differences
from flask_kitsession.stores.sql import create_store_engine

from .support.apps import SECRET_KEY


@dataclass
class LinkApp:
    app: Flask
    db: t.Any
    user_model: t.Any

    def add_user(self, email: str) -> t.Any:
        """Add a user; return their primary key."""
        with self.app.app_context():
            user = self.user_model(email=email, fs_uniquifier=uuid.uuid4().hex)
            if hasattr(self.user_model, "session_token"):
                user.session_token = uuid.uuid4().hex
            self.db.session.add(user)
            self.db.session.commit()
            return user.id

    def login_id(self, user_id: int) -> str:
        """What get_id() gives for the user."""
        with self.app.app_context():
            return str(self.db.session.get(self.user_model, user_id).get_id())

    def session_rows(self) -> list[dict[str, t.Any]]:
        with self.app.app_context(), self.db.engine.connect() as connection:
            table = self.db.metadata.tables["session"]
            return [dict(row._mapping) for row in connection.execute(sa.select(table))]


def make_link_app(
    database_url: str, *, token_column: bool = False, config: dict[str, t.Any] | None = None
) -> LinkApp:
    """A Flask-SQLAlchemy + Flask-Login app whose users' get_id() is not their
    primary key: ``fs_uniquifier`` as Flask-Security has it, or (``token_column``)
    a ``session_token`` column as Flask-Login's docs suggest.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY, TESTING=True, SQLALCHEMY_DATABASE_URI=database_url, **(config or {})
    )
    db = SQLAlchemy(app)

    class Member(UserMixin, db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "members"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(255), unique=True)
        # Unique in Flask-Security's models; here only where sessions link by it.
        fs_uniquifier: Mapped[str] = mapped_column(sa.String(64), unique=not token_column)
        if token_column:
            session_token: Mapped[str] = mapped_column(sa.String(64), unique=True)

        def get_id(self) -> str:
            return str(self.session_token if token_column else self.fs_uniquifier)

    user_model: t.Any = Member

    login_manager = LoginManager(app)
    kitsession = KitSession(app, db=db, user_model=user_model)
    kitsession.init_login_manager(login_manager)

    @app.post("/login/<int:user_id>")
    def login(user_id: int) -> str:
        login_user(db.session.get(user_model, user_id))
        return "in"

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return str(current_user.email)

    @app.post("/change-password")
    @login_required
    def change_password() -> str:
        # What Flask-Security does: a new uniquifier signs out every session
        # of the user, and the one changing it logs in again.
        user = current_user._get_current_object()
        user.fs_uniquifier = uuid.uuid4().hex
        if token_column:
            user.session_token = uuid.uuid4().hex
        db.session.commit()
        if request.args.get("stay") == "1":
            login_user(user)
        return "changed"

    @app.get("/devices")
    @login_required
    def devices() -> str:
        by_object = get_sessions_for_user(current_user)
        by_id = get_sessions_for_user(current_user.get_id())
        assert [s.id for s in by_object] == [s.id for s in by_id]
        return str(len(by_object))

    @app.post("/sign-out-others")
    @login_required
    def sign_out_others() -> str:
        return str(remove_all_sessions_for_user(current_user, current_session))

    with app.app_context():
        db.create_all()
    return LinkApp(app, db, user_model)


@pytest.fixture
def link_app(empty_database_url: str) -> t.Iterator[LinkApp]:
    link_app = make_link_app(empty_database_url)
    yield link_app
    with link_app.app.app_context():
        link_app.db.drop_all()
        link_app.db.engine.dispose()


@pytest.fixture
def token_app(empty_database_url: str) -> t.Iterator[LinkApp]:
    link_app = make_link_app(
        empty_database_url, token_column=True, config={"KITSESSION_USER_ID_COLUMN": "session_token"}
    )
    yield link_app
    with link_app.app.app_context():
        link_app.db.drop_all()
        link_app.db.engine.dispose()


def store_of(app: Flask) -> SQLAlchemyStore:
    store = app.extensions["kitsession"].store
    assert isinstance(store, SQLAlchemyStore)
    return store


def test_fs_uniquifier_links_with_no_setting(link_app: LinkApp) -> None:
    store = store_of(link_app.app)
    assert store.user_link.name == "fs_uniquifier"
    [foreign_key] = store.session_table.c.user_id.foreign_keys
    assert foreign_key.column is store.user_link
    assert (foreign_key.ondelete, foreign_key.onupdate) == ("CASCADE", "SET NULL")

    ada = link_app.add_user("ada@example.com")
    client = link_app.app.test_client()
    assert client.post(f"/login/{ada}").text == "in"
    assert [row["user_id"] for row in link_app.session_rows()] == [link_app.login_id(ada)]
    with link_app.app.app_context(), QueryRecorder(link_app.db.engine) as recorder:
        assert client.get("/profile").text == "ada@example.com"
    # The session and its user, in one statement (the JOIN on fs_uniquifier).
    assert len(recorder.reads()) == 1, recorder.statements
    assert "fs_uniquifier" in recorder.reads()[0]


def test_an_alternative_token_column_named_by_the_setting(token_app: LinkApp) -> None:
    assert store_of(token_app.app).user_link.name == "session_token"
    ada = token_app.add_user("ada@example.com")
    client = token_app.app.test_client()
    client.post(f"/login/{ada}")
    assert client.get("/profile").text == "ada@example.com"
    assert [row["user_id"] for row in token_app.session_rows()] == [token_app.login_id(ada)]
    other = token_app.app.test_client()
    other.post(f"/login/{ada}")
    # A new token signs out every session of the user, the changing one too.
    assert client.post("/change-password").text == "changed"
    assert client.get("/profile").status_code == 401
    assert other.get("/profile").status_code == 401


def test_changing_the_link_signs_out_every_session(link_app: LinkApp) -> None:
    ada = link_app.add_user("ada@example.com")
    bob = link_app.add_user("bob@example.com")
    laptop, phone, bobs = (link_app.app.test_client() for _ in range(3))
    for client, user in ((laptop, ada), (phone, ada), (bobs, bob)):
        client.post(f"/login/{user}")
    old = link_app.login_id(ada)

    # No foreign-key error on the user's update; the changing session logs in again.
    assert laptop.post("/change-password?stay=1").text == "changed"
    new = link_app.login_id(ada)
    assert new != old
    assert laptop.get("/profile").text == "ada@example.com"
    assert phone.get("/profile").status_code == 401
    assert bobs.get("/profile").text == "bob@example.com"
    # The phone's session is gone, not merely unused; none names the old value.
    assert sorted(row["user_id"] for row in link_app.session_rows()) == sorted(
        [new, link_app.login_id(bob)]
    )
    assert phone.get("/profile").status_code == 401


def test_a_session_signed_out_by_the_change_never_comes_back(link_app: LinkApp) -> None:
    ada = link_app.add_user("ada@example.com")
    phone = link_app.app.test_client()
    phone.post(f"/login/{ada}")
    old = link_app.login_id(ada)
    with link_app.app.app_context():
        user = link_app.db.session.get(link_app.user_model, ada)
        user.fs_uniquifier = uuid.uuid4().hex
        link_app.db.session.commit()
        # Even if the old value came back (it never does in Flask-Security).
        user.fs_uniquifier = old
        link_app.db.session.commit()
    assert phone.get("/profile").status_code == 401
    assert link_app.session_rows() == []


def test_an_update_that_bypasses_the_orm_signs_out_too(link_app: LinkApp) -> None:
    ada = link_app.add_user("ada@example.com")
    phone = link_app.app.test_client()
    phone.post(f"/login/{ada}")
    old = link_app.login_id(ada)
    members = link_app.user_model.__table__
    with link_app.app.app_context(), link_app.db.engine.begin() as connection:
        # No foreign-key error: ON UPDATE SET NULL (or, where SQLite does not
        # enforce foreign keys, nothing).
        connection.execute(
            sa.update(members).where(members.c.id == ada).values(fs_uniquifier="rotated")
        )
    sqlite = link_app.app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    assert [row["user_id"] for row in link_app.session_rows()] == [old if sqlite else None]
    assert phone.get("/profile").status_code == 401
    assert link_app.session_rows() == []


def test_deleting_the_user_signs_out_their_sessions(link_app: LinkApp) -> None:
    ada = link_app.add_user("ada@example.com")
    client = link_app.app.test_client()
    client.post(f"/login/{ada}")
    with link_app.app.app_context():
        link_app.db.session.delete(link_app.db.session.get(link_app.user_model, ada))
        link_app.db.session.commit()
    assert client.get("/profile").status_code == 401
    assert link_app.session_rows() == []


def test_devices_and_sign_out_others_take_the_user_or_the_id(link_app: LinkApp) -> None:
    ada = link_app.add_user("ada@example.com")
    bob = link_app.add_user("bob@example.com")
    clients = [link_app.app.test_client() for _ in range(3)]
    for client in clients:
        client.post(f"/login/{ada}")
    link_app.app.test_client().post(f"/login/{bob}")
    assert clients[0].get("/devices").text == "3"
    assert clients[0].post("/sign-out-others").text == "2"
    assert clients[0].get("/devices").text == "1"
    assert clients[1].get("/profile").status_code == 401
    with link_app.app.app_context():
        user = link_app.db.session.get(link_app.user_model, bob)
        assert len(get_sessions_for_user(user)) == 1
        assert remove_all_sessions_for_user(user) == 1
        assert get_sessions_for_user(user.get_id()) == []


@pytest.mark.parametrize("empty_database_url", ["sqlite"], indirect=True)
def test_an_id_that_cannot_link_fails_at_login_naming_the_setting(
    empty_database_url: str,
) -> None:
    # get_id() returns session_token, and nothing says so: sessions link by
    # the primary key, which "3f2a..." is not.
    link_app = make_link_app(empty_database_url, token_column=True)
    try:
        ada = link_app.add_user("ada@example.com")
        client = link_app.app.test_client()
        with pytest.raises(UnknownUserError) as raised:
            client.post(f"/login/{ada}")
        message = str(raised.value)
        assert "KITSESSION_USER_ID_COLUMN = '<column>'" in message
        assert "members.id" in message
        assert link_app.login_id(ada) not in message  # ids end up in logs
        assert link_app.session_rows() == []
        # Outside testing, the login's own error page, and nothing stored.
        link_app.app.config["TESTING"] = False
        assert client.post(f"/login/{ada}").status_code == 500
        assert link_app.session_rows() == []
    finally:
        with link_app.app.app_context():
            link_app.db.drop_all()
            link_app.db.engine.dispose()


def test_an_id_of_another_integer_column_fails_at_login_naming_it(tmp_path: t.Any) -> None:
    # get_id() returns the badge number: it converts to the key's type, so
    # only the login can tell that it is not the user's id.
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'badges.sqlite3'}",
    )
    db = SQLAlchemy(app)

    class Badge(UserMixin, db.Model):  # type: ignore[name-defined, misc]
        id: Mapped[int] = mapped_column(primary_key=True)
        number: Mapped[int] = mapped_column(unique=True)

        def get_id(self) -> str:
            return str(self.number)

    LoginManager(app)
    KitSession(app, db=db, user_model=Badge)

    @app.post("/login")
    def login() -> str:
        login_user(db.session.get(Badge, 1))
        return "in"

    with app.app_context():
        db.create_all()
        db.session.add_all([Badge(id=1, number=2), Badge(id=2, number=1)])
        db.session.commit()
    try:
        with pytest.raises(UnknownUserError) as raised:
            app.test_client().post("/login")
        message = str(raised.value)
        assert "its get_id() is not its badge.id" in message
        assert "Set KITSESSION_USER_ID_COLUMN = 'number'" in message
        with app.app_context(), db.engine.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM session")).scalar() == 0
    finally:
        with app.app_context():
            db.drop_all()
            db.engine.dispose()


class AppBase(DeclarativeBase):
    pass


class Person(AppBase):
    """An app's user table with Flask-Security's columns."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255))
    fs_uniquifier: Mapped[str] = mapped_column(sa.String(64), unique=True)
    nickname: Mapped[str] = mapped_column(sa.String(64))


def test_the_setting_must_name_a_unique_column_of_the_user_table(tmp_path: t.Any) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with pytest.raises(ValueError, match="KITSESSION_USER_ID_COLUMN names 'token'"):
        SQLAlchemyStore(engine, user_model=Person, user_id_column="token")
    with pytest.raises(ValueError, match="people.nickname, which is not unique"):
        SQLAlchemyStore(engine, user_model=Person, user_id_column="nickname")
    with pytest.raises(ValueError, match="set KITSESSION_USER_MODEL too"):
        SQLAlchemyStore(engine, user_id_column="email")
    # Naming the primary key turns the detection of fs_uniquifier off.
    assert SQLAlchemyStore(engine, user_model=Person, user_id_column="id").user_link.name == "id"
    assert SQLAlchemyStore(engine, user_model=Person).user_link.name == "fs_uniquifier"
    engine.dispose()


def _migrate(engine: sa.Engine, target: MigrationTarget, revision: str, up: bool = True) -> None:
    with engine.begin() as connection:
        config = alembic_config(connection=connection, target=target)
        (command.upgrade if up else command.downgrade)(config, revision)


def test_migration_0002_relinks_stored_sessions_both_ways(empty_database: sa.Engine) -> None:
    """From sessions linked by the primary key (revision 0001) to sessions
    linked by fs_uniquifier (0002) and back, on every database, keeping each
    session's user.
    """
    engine = empty_database
    by_uniquifier = MigrationTarget.for_user_model(Person)
    by_key = MigrationTarget.for_user_model(Person, "id")
    assert by_uniquifier.link.name == "fs_uniquifier" and by_key.link.name == "id"
    AppBase.metadata.create_all(engine)
    people = t.cast(sa.Table, Person.__table__)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(people),
            [
                {"id": 1, "email": "ada@example.com", "fs_uniquifier": "u-ada", "nickname": "a"},
                {"id": 2, "email": "bob@example.com", "fs_uniquifier": "u-bob", "nickname": "b"},
            ],
        )
    _migrate(engine, by_uniquifier, "0001")
    now = "2026-11-29 12:00:00"
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO session (id, user_id, data, created_at, updated_at,"
                " last_seen_at, expires_at) VALUES (:id, :user_id, :data, :t, :t, :t, :t)"
            ),
            [
                {"id": "s-ada", "user_id": 1, "data": '{"_user_id": "u-ada"}', "t": now},
                {"id": "s-bob", "user_id": 2, "data": '{"_user_id": "u-bob"}', "t": now},
                {"id": "s-anon", "user_id": None, "data": '{"cart": "pears"}', "t": now},
            ],
        )

    def links() -> dict[str, t.Any]:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, user_id FROM session")).all()
        return {row[0]: row[1] for row in rows}

    def foreign_key() -> t.Any:
        [found] = sa.inspect(engine).get_foreign_keys("session")
        return found

    assert foreign_key()["referred_columns"] == ["id"]

    _migrate(engine, by_uniquifier, "0002")
    assert links() == {"s-ada": "u-ada", "s-bob": "u-bob", "s-anon": None}
    with engine.connect() as connection:
        assert schema_differences(connection, by_uniquifier) == []
    found = foreign_key()
    assert (found["referred_table"], found["referred_columns"]) == ("people", ["fs_uniquifier"])
    assert found["options"].get("ondelete") == "CASCADE"
    if engine.dialect.name != "sqlite":
        # SQLite's reflection does not report ON UPDATE; the behaviour below shows it.
        assert found["options"].get("onupdate") == "SET NULL"
    # The user's update goes through, and unlinks their sessions.
    # (kitsession's SQLite engines enforce foreign keys.)
    with engine.begin() as connection:
        connection.execute(
            sa.update(people).where(people.c.id == 2).values(fs_uniquifier="u-bob-2")
        )
    assert links() == {"s-ada": "u-ada", "s-bob": None, "s-anon": None}

    # Down, as the app that linked by fs_uniquifier undoes it.
    _migrate(engine, by_uniquifier, "0001", up=False)
    assert links() == {"s-ada": 1, "s-bob": None, "s-anon": None}
    with engine.connect() as connection:
        assert schema_differences(connection, by_key) == []
    assert foreign_key()["referred_columns"] == ["id"]
    _migrate(engine, by_uniquifier, "base", up=False)
    assert set(sa.inspect(engine).get_table_names()) <= {"people", "kitsession_alembic_version"}
    AppBase.metadata.drop_all(engine)


def test_migration_0002_leaves_primary_key_links_alone(empty_database: sa.Engine) -> None:
    engine = empty_database
    target = MigrationTarget.for_user_model(Person, "id")
    AppBase.metadata.create_all(engine)
    _migrate(engine, target, "0001")
    before = sa.inspect(engine).get_foreign_keys("session")
    _migrate(engine, target, "head")
    assert sa.inspect(engine).get_foreign_keys("session") == before
    with engine.connect() as connection:
        assert schema_differences(connection, target) == []
    _migrate(engine, target, "base", up=False)
    AppBase.metadata.drop_all(engine)
