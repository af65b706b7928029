"""The example's users: kitsession's default ``user`` table."""

from __future__ import annotations

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as DatabaseSession
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from flask_kitsession import SQLAlchemyStore
from flask_kitsession.models import User
from flask_kitsession.state import get_state


def _database() -> DatabaseSession:
    store = get_state().store
    assert isinstance(store, SQLAlchemyStore)
    return DatabaseSession(store.engine, expire_on_commit=False)


def register(email: str, password: str) -> User | None:
    """Create a user; ``None`` if the email is taken."""
    user = User(email=email.strip().lower(), password_hash=generate_password_hash(password))
    with _database() as db:
        db.add(user)
        try:
            db.commit()
        except IntegrityError:
            return None
    return user


def authenticate(email: str, password: str) -> User | None:
    """Return the user with this email and password, or ``None``."""
    with _database() as db:
        user = db.scalars(
            select(User).where(func.lower(User.email) == email.strip().lower())
        ).first()
    if user is None or not user.password_hash:
        # Same work as a real check, so timing does not tell which emails exist.
        check_password_hash(generate_password_hash("x"), password)
        return None
    return user if check_password_hash(user.password_hash, password) else None
