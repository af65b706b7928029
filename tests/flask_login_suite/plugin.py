"""A pytest plugin that puts kitsession under every Flask app a test creates.

Loaded with ``-p tests.flask_login_suite.plugin`` by ``run.py``: every
``Flask(...)`` gets ``KitSession(app)`` right after it is made, so each test
of Flask-Login's suite runs on server-side sessions instead of Flask's cookie
session, with no change to the tests. The store is a MemoryStore: the suite's
users live in a dict of its own, not in a ``user`` table.

``KITSESSION_SUITE_CARRY_OVER`` sets ``KITSESSION_CARRY_OVER_KEYS`` ("*" to
keep every key of the session across ``login_user``, as Flask's cookie
session does; unset for kitsession's default, which keeps none).
"""

from __future__ import annotations

import os
import typing as t

import flask

from flask_kitsession import KitSession
from flask_kitsession import MemoryStore
from flask_kitsession import ServerSession

_original_init = flask.Flask.__init__


def _init_with_kitsession(self: flask.Flask, *args: t.Any, **kwargs: t.Any) -> None:
    _original_init(self, *args, **kwargs)
    carry_over = os.environ.get("KITSESSION_SUITE_CARRY_OVER")
    if carry_over:
        self.config["KITSESSION_CARRY_OVER_KEYS"] = (
            "*" if carry_over == "*" else carry_over.split(",")
        )
    KitSession(self, store=MemoryStore())


def pytest_configure(config: t.Any) -> None:
    flask.Flask.__init__ = _init_with_kitsession  # type: ignore[method-assign]


def pytest_runtest_call(item: t.Any) -> None:
    # Each test really runs on kitsession: checked, not assumed.
    assert flask.Flask.__init__ is _init_with_kitsession
    assert ServerSession is not None
