"""The example's pages."""

from __future__ import annotations

from flask import abort
from flask import Blueprint
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask.typing import ResponseReturnValue
from werkzeug.wrappers import Response

from flask_kitsession import current_session
from flask_kitsession import get_session
from flask_kitsession import get_sessions_for_user
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import remove_session
from flask_kitsession import with_delete_session
from flask_kitsession import with_new_session

from . import users

bp = Blueprint("example", __name__)

MIN_PASSWORD_LENGTH = 8


@bp.get("/")
def index() -> str:
    return render_template("index.html", user=current_session.user)


@bp.route("/register", methods=["GET", "POST"])
def register() -> str | Response:
    if request.method == "POST":
        email = request.form.get("email", "").strip()
        password = request.form.get("password", "")
        if "@" not in email or len(email) > 255:
            flash("Please enter an email address.")
        elif len(password) < MIN_PASSWORD_LENGTH:
            flash(f"Please choose a password of at least {MIN_PASSWORD_LENGTH} characters.")
        elif users.register(email, password) is None:
            flash("That email is registered already. Log in instead?")
        else:
            flash("Account created. Please log in.")
            return redirect(url_for("example.login"))
    return render_template("register.html")


@bp.get("/login")
def login_form() -> str:
    return render_template("login.html")


@bp.post("/login")
@with_new_session
def login() -> ResponseReturnValue:
    user = users.authenticate(request.form.get("email", ""), request.form.get("password", ""))
    if user is None:
        # Nobody is logged in: the visitor stays anonymous.
        return render_template("login.html", error="Wrong email or password."), 401
    session["user_id"] = user.id
    session.permanent = request.form.get("remember") == "on"
    return redirect(url_for("example.index"))


@bp.post("/logout")
@with_delete_session
def logout() -> Response:
    return redirect(url_for("example.index"))


@bp.get("/devices")
def devices() -> str | Response:
    if current_session.user_id is None:
        return redirect(url_for("example.login_form"))
    sessions = get_sessions_for_user(current_session.user_id)
    return render_template("devices.html", sessions=sessions, current_id=current_session.id)


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
    remove_session(other)
    flash("Signed out that device.")
    if other.id == current_session.id:
        return redirect(url_for("example.index"))
    return redirect(url_for("example.devices"))
