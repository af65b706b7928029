"""The apps the tests run: their secret key, a hand-moved clock, the views a
typical app has, and a Flask-Login app on kitsession.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import sqlalchemy as sa
from flask import Flask
from flask import jsonify
from flask import request
from flask import session
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from flask_kitsession import current_session
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session
from flask_kitsession.models import utc_now

SECRET_KEY = "test secret key, long enough to be a real one: 3f9a1c"


class Clock:
    """A clock the tests move by hand: ``clock.advance(minutes=5)``."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def add_data_views(app: Flask) -> None:
    """``POST /set`` stores the form in the session; ``GET /get`` shows it."""

    @app.post("/set")
    def set_value() -> t.Any:
        for key, value in request.form.items():
            session[key] = value
        return jsonify(dict(session))

    @app.get("/get")
    def get_values() -> t.Any:
        return jsonify(dict(session))


def add_views(app: Flask) -> None:
    """The views a typical app has, used throughout the tests."""

    @app.post("/login")
    @with_new_session
    def login() -> t.Any:
        user_id = request.form.get("user_id")
        if user_id:
            session["user_id"] = int(user_id)
        return jsonify(ok=bool(user_id))

    @app.post("/logout")
    @with_delete_session
    def logout() -> t.Any:
        return jsonify(bye=session.get("user_id"))

    @app.get("/me")
    def me() -> t.Any:
        user = session.user  # type: ignore[attr-defined]
        return jsonify(
            user_id=session.user_id,  # type: ignore[attr-defined]
            email=user.email if user is not None else None,
        )

    add_data_views(app)

    @app.get("/plain")
    def plain() -> str:
        return "no session here"

    @app.post("/sign-out-others")
    def sign_out_others() -> t.Any:
        count = remove_all_sessions_for_user(current_session.user_id, current_session)
        return jsonify(count=count)


@dataclass
class LoginApp:
    """A Flask-SQLAlchemy + Flask-Login app on kitsession, and its parts."""

    app: Flask
    db: t.Any
    user_model: t.Any
    kitsession: t.Any

    def add_user(self, user_id: str, email: str) -> None:
        with self.app.app_context():
            self.db.session.add(
                self.user_model(
                    id=user_id, email=email, name=email.split("@")[0], password_hash="x"
                )
            )
            self.db.session.commit()


def make_login_app(
    database_url: str,
    *,
    clock: t.Callable[[], datetime] | None = None,
    config: dict[str, t.Any] | None = None,
) -> LoginApp:
    """An app as a Flask-Login user writes it; kitsession added with two lines."""
    from flask_login import current_user
    from flask_login import login_required
    from flask_login import login_user
    from flask_login import LoginManager
    from flask_login import logout_user
    from flask_login import UserMixin
    from flask_sqlalchemy import SQLAlchemy

    from flask_kitsession import KitSession

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        TESTING=True,
        SQLALCHEMY_DATABASE_URI=database_url,
        **(config or {}),
    )
    db = SQLAlchemy(app)

    class Member(UserMixin, db.Model):  # type: ignore[name-defined, misc]
        __tablename__ = "users"
        id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(255))
        name: Mapped[str] = mapped_column(sa.String(80))
        password_hash: Mapped[str] = mapped_column(sa.String(255))

    login_manager = LoginManager(app)
    kitsession = KitSession(app, db=db, user_model=Member, clock=clock or utc_now)
    kitsession.init_login_manager(login_manager)

    @app.post("/login/<user_id>")
    def login(user_id: str) -> str:
        remember = request.args.get("remember") == "1"
        if request.args.get("permanent") == "1":
            session.permanent = True
        login_user(db.session.get(Member, user_id), remember=remember)
        return "in"

    @app.post("/logout")
    def logout() -> str:
        logout_user()
        return "out"

    @app.get("/profile")
    @login_required
    def profile() -> str:
        return f"{current_user.name} <{current_user.email}>"

    @app.get("/password-hash")
    @login_required
    def password_hash() -> str:
        # Not loaded with the session: read through db.session on demand.
        return str(current_user.password_hash)

    add_data_views(app)

    @app.post("/sign-out-others")
    def sign_out_others() -> str:
        return str(remove_all_sessions_for_user(current_session.user_id, current_session))

    return LoginApp(app, db, Member, kitsession)
