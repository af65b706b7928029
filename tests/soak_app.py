"""The app the soak test serves under gunicorn: counters kept in sessions.

Configured from the environment (``KITSESSION_DATABASE_URL``,
``FLASK_SECRET_KEY``); the test creates the tables and the users first.
"""

from __future__ import annotations

import os

from flask import Flask
from flask import request
from flask import session

from flask_kitsession import KitSession
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=os.environ["FLASK_SECRET_KEY"],
        KITSESSION_DATABASE_URL=os.environ["KITSESSION_DATABASE_URL"],
    )
    KitSession(app)

    @app.get("/")
    def index() -> str:
        return "soak"

    @app.post("/login")
    @with_new_session
    def login() -> str:
        session["user_id"] = int(request.form["user_id"])
        return "in"

    @app.post("/increment")
    def increment() -> str:
        session["n"] = session.get("n", 0) + 1
        return str(session["n"])

    @app.get("/count")
    def count() -> str:
        return str(session.get("n", 0))

    @app.post("/logout")
    @with_delete_session
    def logout() -> str:
        return "out"

    return app
