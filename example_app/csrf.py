"""A session-bound CSRF token for the example's forms.

Every form carries a random token that is also kept in the visitor's
session; a ``POST`` whose token does not match is refused with 400. The
session cookie is ``SameSite=Lax`` as well, a second layer, not the defence.

Why our own token rather than Flask-WTF's ``CSRFProtect``:

- **No dependency.** The README's command that runs the example installs
  only the library; the example must run on the library's own dependencies,
  and twenty lines do the job. In an app that has Flask-WTF already, use its
  ``CSRFProtect``: it keeps its token in the session too, so with kitsession
  that token also dies with the session.
- **The token dies with the session.** It lives in the server-side session,
  so signing a device out (or logging out) also voids every form that device
  still has open. Flask-WTF signs its token with a time limit because a
  cookie session cannot be revoked; with kitsession the server decides, so a
  plain random token compared in constant time is enough.
- **It runs before the view's decorators.** The check is a ``before_request``
  hook, so the login view, wrapped in ``@with_new_session`` (which hands the
  view a brand-new, empty session), is still checked against the token of
  the session that showed the form. (Flask-WTF's ``CSRFProtect`` also checks
  in ``before_request`` and would work here too; its ``validate_on_submit``
  inside the view would not.)

The cost: an anonymous visitor who opens a form gets a stored session (one
row) to hold the token; ``flask kitsession cleanup`` deletes it once expired,
and a login replaces it.
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
    """Refuse a state-changing request whose form token is not the session's."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    expected = session.get(SESSION_KEY)
    sent = request.form.get(FORM_FIELD, "")
    # Compared as bytes: compare_digest refuses str with non-ASCII characters.
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), sent.encode()):
        abort(400, "The form expired or did not come from this site. Please try again.")


def init_app(app: Flask) -> None:
    """Check every unsafe request and offer ``csrf_token()`` to templates."""
    app.before_request(_check)
    app.jinja_env.globals["csrf_token"] = csrf_token
