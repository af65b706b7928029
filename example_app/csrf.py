"""A session-bound CSRF token for the example's forms.

Checked in ``before_request``, before any view decorator runs, so a login view
wrapped in ``@with_new_session`` (which sees a brand-new session) is still
checked against the token of the session that showed the form.
"""

from __future__ import annotations

import hmac
import secrets

from flask import abort
from flask import Flask
from flask import request
from flask import session

SESSION_KEY = "csrf_token"
FORM_FIELD = "csrf_token"


def csrf_token() -> str:
    """Return the session's CSRF token, making one if needed."""
    token = session.get(SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[SESSION_KEY] = token
    return token


def _check() -> None:
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get(SESSION_KEY)
    sent = request.form.get(FORM_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
        abort(400, "The form expired or did not come from this site. Please try again.")


def init_app(app: Flask) -> None:
    app.before_request(_check)
    app.jinja_env.globals["csrf_token"] = csrf_token
