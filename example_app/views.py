"""The example's pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from datetime import timezone

from flask import abort
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
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
from . import users
from .user_agents import Device
from .user_agents import parse_user_agent

bp = Blueprint("example", __name__)

MIN_PASSWORD_LENGTH = 8

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
        error = None
        if "@" not in email or len(email) > 255:
            error = "Please enter an email address."
        elif len(password) < MIN_PASSWORD_LENGTH:
            error = f"Please choose a password of at least {MIN_PASSWORD_LENGTH} characters."
        elif users.register(email, password) is None:
            error = "That email is registered already. Log in instead?"
        if error is None:
            flash("Account created. Please log in.")
            return redirect(url_for("example.login_form", email=email))
        return render_template("register.html", error=error, email=email), 400
    return render_template("register.html", email=email)


@bp.get("/login")
def login_form() -> str:
    return render_template("login.html", email=request.args.get("email", ""))


@bp.post("/login")
@with_new_session
def login() -> ResponseReturnValue:
    email = request.form.get("email", "")
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
    return render_template("devices.html", rows=rows)


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


@bp.app_errorhandler(400)
@bp.app_errorhandler(401)
@bp.app_errorhandler(404)
def error_page(error: HTTPException) -> ResponseReturnValue:
    """A stale form or a page that is not there, as a page of the app."""
    return render_template("error.html", error=error), error.code or 400
