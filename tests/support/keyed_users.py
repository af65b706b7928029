"""Flask-SQLAlchemy + Flask-Login apps whose ``User`` is keyed by an integer,
a string or a UUID, for the tests of user ids.
"""

from __future__ import annotations

import typing as t
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from .apps import SECRET_KEY

#: The key column's type and a function making the n-th user's id, by name.
KEY_TYPES: dict[str, tuple[t.Any, t.Callable[[int], t.Any]]] = {
    "int": (sa.Integer, lambda n: n),
    "str": (sa.String(36), lambda n: f"user-{n}"),
    "uuid": (sa.Uuid, lambda n: uuid.UUID(int=0x1234_5678_0000_4000_8000_0000_0000_0000 + n)),
}


@dataclass
class KeyedLoginApp:
    """The app, its Flask-SQLAlchemy extension and its ``User`` model."""

    app: Flask
    db: t.Any
    user_model: t.Any
    make_id: t.Callable[[int], t.Any]

    def add_user(self, n: int, name: str) -> t.Any:
        """Add the n-th user; return their id."""
        user_id = self.make_id(n)
        with self.app.app_context():
            self.db.session.add(self.user_model(id=user_id, name=name))
            self.db.session.commit()
        return user_id

    def session_rows(self) -> list[dict[str, t.Any]]:
        with self.app.app_context():
            table = self.db.metadata.tables["session"]
            with self.db.engine.connect() as connection:
                return [dict(row._mapping) for row in connection.execute(sa.select(table))]

    def close(self) -> None:
        with self.app.app_context():
            self.db.drop_all()
            self.db.engine.dispose()
        self.app.extensions["kitsession"].store.close()


def make_keyed_login_app(
    database_url: str, key: str, *, config: dict[str, t.Any] | None = None
) -> KeyedLoginApp:
    """An app as a Flask-Login user writes it, its users keyed by ``key``
    ("int", "str" or "uuid"); the tables are created.
    """
    from flask_login import current_user
    from flask_login import login_required
    from flask_login import login_user
    from flask_login import LoginManager
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy

    from flask_kitsession import KitSession

    column_type, make_id = KEY_TYPES[key]
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        **(config or {}),
    )
    db = SQLAlchemy(app)

    class User(UserMixin, db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "keyed_users"
        id: Mapped[t.Any] = mapped_column(column_type, primary_key=True, autoincrement=False)
        name: Mapped[str] = mapped_column(sa.String(80))

    login_manager = LoginManager(app)
    kitsession = KitSession(app, db=db, user_model=User)
    kitsession.init_login_manager(login_manager)

    @app.post("/login/<n>")
    def login(n: str) -> str:
        login_user(db.session.get(User, make_id(int(n))))
        return "in"

    @app.get("/profile")
    @login_required
    def profile() -> t.Any:
        return jsonify(name=current_user.name, id=str(current_user.id))

    @app.post("/set")
    def set_value() -> str:
        for name, value in request.form.items():
            session[name] = value
        return "set"

    with app.app_context():
        db.create_all()
    return KeyedLoginApp(app, db, User, make_id)
