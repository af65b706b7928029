"""``session.user`` with Flask-SQLAlchemy: the app's own instance, never a
copy that overwrites it.
"""

from __future__ import annotations

import typing as t

import pytest
from flask import session

from .support.keyed_users import KeyedLoginApp
from .support.keyed_users import make_keyed_login_app
from .support.servers import RedisKeyspace


@pytest.fixture(params=["sql", "redis"])
def keyed_app(request: pytest.FixtureRequest, empty_database_url: str) -> t.Iterator[KeyedLoginApp]:
    config: dict[str, t.Any] = {}
    prefix = ""
    if request.param == "redis":
        keyspace: RedisKeyspace = request.getfixturevalue("redis_keyspace")
        prefix = keyspace.new_prefix()
        config = {"KITSESSION_REDIS_URL": keyspace.url, "KITSESSION_REDIS_PREFIX": prefix}
    login_app = make_keyed_login_app(empty_database_url, "int", config=config)
    yield login_app
    if prefix:
        keyspace.delete(prefix)
    login_app.close()


def test_reading_session_user_keeps_a_pending_change(keyed_app: KeyedLoginApp) -> None:
    """The app changed its user and has not committed yet; reading
    ``session.user`` (Flask-Login's ``current_user`` does) must not copy the
    session's stale columns over that change.
    """
    app, db, user_model = keyed_app.app, keyed_app.db, keyed_app.user_model
    user_id = keyed_app.add_user(1, "ada")

    @app.post("/rename")
    def rename() -> str:
        user = db.session.get(user_model, user_id)
        user.name = "ada lovelace"
        assert session.user is user  # type: ignore[attr-defined]
        assert session.user.name == "ada lovelace"  # type: ignore[attr-defined]
        db.session.commit()
        return "renamed"

    client = app.test_client()
    client.post("/login/1")
    assert client.post("/rename").text == "renamed"
    with app.app_context():
        assert db.session.get(user_model, user_id).name == "ada lovelace"
    assert client.get("/profile").json == {"name": "ada lovelace", "id": str(user_id)}


def test_the_session_user_is_the_apps_instance_either_way(keyed_app: KeyedLoginApp) -> None:
    """Read first and then loaded by the app, or the other way round: one
    instance, whose changes the app commits.
    """
    app, db, user_model = keyed_app.app, keyed_app.db, keyed_app.user_model
    user_id = keyed_app.add_user(1, "ada")

    @app.post("/touch")
    def touch() -> str:
        user = session.user  # type: ignore[attr-defined]
        assert db.session.get(user_model, user_id) is user
        user.name = "countess"
        db.session.commit()
        return "ok"

    client = app.test_client()
    client.post("/login/1")
    assert client.post("/touch").text == "ok"
    assert client.get("/profile").json == {"name": "countess", "id": str(user_id)}
