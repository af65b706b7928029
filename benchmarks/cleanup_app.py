"""The app ``python -m benchmarks.scale`` runs ``flask kitsession cleanup`` on."""

from __future__ import annotations

import os

from flask import Flask

from flask_kitsession import KitSession


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "scale benchmark"
    app.config["KITSESSION_DATABASE_URL"] = os.environ["KITSESSION_DATABASE_URL"]
    KitSession(app)
    return app
