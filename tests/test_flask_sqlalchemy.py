"""Flask-SQLAlchemy apps: one engine, and the session table in the app's own
migration history (Flask-Migrate) or in kitsession's bundled one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask_migrate import Migrate

from flask_kitsession.migrate import exclude_kitsession_tables
from flask_kitsession.migrate import VERSION_TABLE

from .support.apps import make_login_app


# Flask-Migrate's env.py template tries Flask-SQLAlchemy 2's get_engine() first.
@pytest.mark.filterwarnings("ignore:'get_engine' is deprecated:DeprecationWarning")
@pytest.mark.usefixtures("keep_loggers")
def test_flask_migrate_puts_the_session_table_in_the_apps_history(
    empty_database_url: str, tmp_path: Path
) -> None:
    login_app = make_login_app(empty_database_url)
    app, db = login_app.app, login_app.db
    directory = tmp_path / "migrations"
    Migrate(app, db, directory=str(directory))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["db", "init", "-d", str(directory)])
    assert result.exit_code == 0, result.output
    # The one step of docs/flask-login.md: migration scripts import kitsession's column types.
    template = directory / "script.py.mako"
    template.write_text(
        template.read_text().replace(
            "import sqlalchemy as sa\n", "import sqlalchemy as sa\nimport flask_kitsession.models\n"
        )
    )
    result = runner.invoke(args=["db", "migrate", "-m", "users and sessions"])
    assert result.exit_code == 0, result.output
    [revision] = (directory / "versions").glob("*.py")
    script = revision.read_text()
    assert "op.create_table('users'" in script
    assert "op.create_table('session'" in script
    assert "['users.id'], ondelete='CASCADE'" in script
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    try:
        with app.app_context():
            inspector = sa.inspect(db.engine)
            assert {"users", "session", "alembic_version"} <= set(inspector.get_table_names())
            assert VERSION_TABLE not in inspector.get_table_names()
        # kitsession's own commands see tables its migrations did not make.
        result = runner.invoke(args=["kitsession", "db", "current"])
        assert "the session table exists" in result.output, result.output
        result = runner.invoke(args=["kitsession", "db", "check"])
        assert result.exit_code == 0 and "match" in result.output, result.output
        # And it works: log in, read the profile.
        login_app.add_user("u-9", "lin@example.com")
        client = app.test_client()
        client.post("/login/u-9")
        assert client.get("/profile").text == "lin <lin@example.com>"
        # The models and the migrated database agree: autogenerate has nothing
        # left to do. (Flask-Migrate's own `db check` trips over its env.py.)
        with app.app_context(), db.engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), db.metadata) == []
    finally:
        with app.app_context():
            db.drop_all()
            with db.engine.begin() as connection:
                connection.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            db.engine.dispose()


def test_bundled_migrations_beside_the_apps_own(empty_database_url: str) -> None:
    login_app = make_login_app(empty_database_url)
    app, db = login_app.app, login_app.db
    with app.app_context():
        login_app.user_model.__table__.create(db.engine)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["kitsession", "db", "upgrade"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["kitsession", "db", "check"])
    assert result.exit_code == 0, result.output
    try:
        with app.app_context(), db.engine.connect() as connection:
            # The app's own autogenerate, told to leave kitsession's tables to
            # kitsession, finds nothing to do...
            context = MigrationContext.configure(
                connection, opts={"include_object": exclude_kitsession_tables}
            )
            assert compare_metadata(context, db.metadata) == []
            # ...where without it, it would drop kitsession's version table.
            plain = compare_metadata(MigrationContext.configure(connection), db.metadata)
            assert [d[0] for d in plain] == ["remove_table"]
            assert plain[0][1].name == VERSION_TABLE
        login_app.add_user("u-3", "kim@example.com")
        client = app.test_client()
        client.post("/login/u-3")
        assert client.get("/profile").text == "kim <kim@example.com>"
    finally:
        with app.app_context():
            db.drop_all()
            with db.engine.begin() as connection:
                connection.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
            db.engine.dispose()


def test_db_needs_the_user_model_and_init_app_first(empty_database_url: str) -> None:
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_kitsession import KitSession

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = empty_database_url
    db = SQLAlchemy()
    with pytest.raises(ValueError, match="name the app's user model"):
        KitSession(app, db=db)
    with pytest.raises(RuntimeError, match="db.init_app"):
        KitSession(
            app,
            db=db,
            user_model=sa.Table(
                "users", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True)
            ),
        )
