"""The example's pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timezone

from flask import abort
from flask import Blueprint
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import send_from_directory
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.wrappers import Response

from flask_kitsession import current_session
from flask_kitsession import get_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import remove_session
from flask_kitsession import ServerSession
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session

from . import formatting
from . import notices
from . import users
from .user_agents import Device
from .user_agents import parse_user_agent

bp = Blueprint("example", __name__)

MIN_PASSWORD_LENGTH = 8
#: The longest address mail can be sent to (RFC 5321's 256-octet path, less
#: its angle brackets); the user table's column holds 255.
MAX_EMAIL_LENGTH = 254

bp.add_app_template_filter(formatting.utc, "utc")
bp.add_app_template_filter(parse_user_agent, "device")


@dataclass(frozen=True)
class DeviceRow:
    """One line of the devices page."""

    session: ServerSession
    device: Device
    current: bool


@bp.get("/")
def index() -> str:
    count = 0
    if current_session.user_id is not None:
        count = len(get_sessions_for_user(current_session.user_id))
    return render_template("index.html", user=current_session.user, device_count=count)


@bp.route("/register", methods=["GET", "POST"])
def register() -> ResponseReturnValue:
    email = request.form.get("email", "").strip()
    if request.method == "POST":
        password = request.form.get("password", "")
        error = email_error(email)
        if error is None and len(password) < MIN_PASSWORD_LENGTH:
            error = f"Please choose a password of at least {MIN_PASSWORD_LENGTH} characters."
        if error is None and users.register(email, password) is None:
            error = "That email is registered already. Log in instead?"
        if error is None:
            flash("Account created. Please log in.")
            return redirect(url_for("example.login_form", email=email))
        return render_template("register.html", error=error, email=email), 400
    return render_template("register.html", email=email)


def email_error(email: str) -> str | None:
    """What is wrong with ``email`` as an account's address, or ``None``."""
    if len(email) > MAX_EMAIL_LENGTH:
        return (
            f"That email address is too long: {len(email):,} characters, and the"
            f" longest an address can be is {MAX_EMAIL_LENGTH}."
        )
    if "@" not in email:
        return "Please enter an email address."
    return None


@bp.get("/login")
def login_form() -> str:
    return render_template("login.html", email=request.args.get("email", ""))


@bp.post("/login")
@with_new_session
def login() -> ResponseReturnValue:
    email = request.form.get("email", "")
    if len(email.strip()) > MAX_EMAIL_LENGTH:
        # No account has such an address; say what is wrong with it.
        error = email_error(email.strip())
        return render_template("login.html", error=error, email=""), 400
    user = users.authenticate(email, request.form.get("password", ""))
    if user is None:
        # Nobody is logged in: the visitor stays anonymous.
        error = "Wrong email or password."
        return render_template("login.html", error=error, email=email), 401
    session["user_id"] = user.id
    session.permanent = request.form.get("remember") == "on"
    return redirect(url_for("example.index"))


@bp.post("/logout")
@with_delete_session
def logout() -> Response:
    return redirect(url_for("example.index"))


@bp.get("/devices")
def devices() -> ResponseReturnValue:
    if current_session.user_id is None:
        return redirect(url_for("example.login_form"))
    rows = [
        DeviceRow(s, parse_user_agent(s.user_agent), s.id == current_session.id)
        for s in get_sessions_for_user(current_session.user_id)
    ]
    # The current device first, then the others, most recently seen first.
    rows.sort(key=lambda row: not row.current)
    return render_template("devices.html", rows=rows, notices=notices.take_notices())


@bp.post("/devices/sign-out-others")
def sign_out_others() -> Response:
    if current_session.user_id is None:
        abort(401)
    count = remove_all_sessions_for_user(current_session.user_id, current_session)
    flash(f"Signed out {count} other device{'s' if count != 1 else ''}.")
    return redirect(url_for("example.devices"))


@bp.post("/devices/<session_id>/sign-out")
def sign_out_device(session_id: str) -> Response:
    if current_session.user_id is None:
        abort(401)
    other = get_session(session_id)
    if other is None or other.user_id != current_session.user_id:
        abort(404)
    is_current = other.id == current_session.id
    remove_session(other)
    if is_current:
        # The current session is gone at the end of this request: so is its cookie.
        return redirect(url_for("example.index"))
    flash(f"Signed out {parse_user_agent(other.user_agent).label}.")
    return redirect(url_for("example.devices"))


@bp.app_template_filter("ago")
def time_ago(moment: datetime) -> str:
    """``{{ session.last_seen_at | ago }}``: "5 minutes ago"."""
    return formatting.time_ago(moment, datetime.now(timezone.utc))


@bp.app_errorhandler(HTTPException)
def error_page(error: HTTPException) -> ResponseReturnValue:
    """Every error as a page of the app: a stale form, a page that is not
    there, a method the page does not take, a failure of the app or of its
    database. A failure's page does not read the session (it may be what
    failed), so it shows no account links.
    """
    code = error.code or 500
    response = error.get_response()
    response.set_data(render_template("error.html", error=error, failed=code >= 500))
    response.content_type = "text/html; charset=utf-8"
    response.status_code = code
    return response


@bp.app_errorhandler(CSRFError)
def stale_form(error: CSRFError) -> ResponseReturnValue:
    """A form whose token is not the session's (Flask-WTF's ``CSRFProtect``):
    another site's, or one shown to a session that has ended since. Flask-WTF
    says which ("The CSRF tokens do not match."); a person needs what to do.
    """
    error.description = "The form expired or did not come from this site. Please try again."
    return error_page(error)


@bp.app_errorhandler(500)
def failure_page(error: InternalServerError) -> ResponseReturnValue:
    """An unexpected exception (a bug): Flask hands it over as a 500."""
    return error_page(error)


@bp.get("/favicon.ico")
def favicon() -> Response:
    """For clients that ask for the icon without reading the page's link."""
    return send_from_directory(
        current_app.static_folder or "static", "favicon.svg", mimetype="image/svg+xml"
    )


@bp.after_app_request
def no_store_for_signed_in_pages(response: Response) -> Response:
    """A signed-in page must not be kept by the browser or a proxy: after
    logout on a shared computer, the back button would show it again.
    """
    if (
        request.endpoint != "static"
        and response.status_code < 500
        and current_session.user_id is not None
    ):
        response.headers["Cache-Control"] = "no-store"
    return response
