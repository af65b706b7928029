"""The example app's "new sign-in" notice (a session_created receiver), and
its forms (Flask-WTF's CSRFProtect) across logins and logouts.
"""

from __future__ import annotations

import re
from pathlib import Path

from example_app import create_app
from flask import Flask

from flask_kitsession.testing import session_of

from .test_example_app import csrf
from .test_example_app import FIREFOX_UBUNTU
from .test_example_app import log_in
from .test_example_app import register_and_log_in
from .test_example_app import SAFARI_IPHONE


def notices(page: str) -> list[str]:
    return [
        re.sub(r"<[^>]+>", "", found)
        for found in re.findall(r'<p class="notice" role="note">(.*?)\.\n', page)
    ]


def session_token(signed: str) -> str:
    """The session's CSRF token in the signed, time-stamped form of a form."""
    return signed.split(".", 1)[0]


def test_other_devices_are_told_of_a_new_sign_in_once(example: Flask) -> None:
    laptop = example.test_client()
    register_and_log_in(laptop, "ada@example.com", FIREFOX_UBUNTU)
    tablet = example.test_client()
    log_in(tablet, "ada@example.com", FIREFOX_UBUNTU)
    phone = example.test_client()
    log_in(phone, "ada@example.com", SAFARI_IPHONE)

    page = laptop.get("/devices").text
    told = notices(page)
    assert len(told) == 2
    assert told[0].startswith("New sign-in: Firefox 126 on Ubuntu, ")
    assert told[1].startswith("New sign-in: Safari 17 on iOS 17.4, ")
    assert told[1].endswith(" UTC")
    # Once.
    assert notices(laptop.get("/devices").text) == []
    # The device that signed in is not told of itself; the tablet is told
    # of the phone only.
    assert notices(phone.get("/devices").text) == []
    assert [n.split(",")[0] for n in notices(tablet.get("/devices").text)] == [
        "New sign-in: Safari 17 on iOS 17.4"
    ]


def test_a_notice_does_not_make_a_device_look_used(tmp_path: Path) -> None:
    # Every write of a session moves its last-seen time and expiry here.
    app = create_app(
        {
            "SECRET_KEY": "example test",
            "KITSESSION_DATABASE_URL": f"sqlite:///{tmp_path / 'example.sqlite3'}",
            "KITSESSION_TOUCH_INTERVAL": 0.001,
        }
    )
    try:
        laptop = app.test_client()
        register_and_log_in(laptop, "bea@example.com", FIREFOX_UBUNTU)
        before = session_of(laptop)
        assert before is not None
        log_in(app.test_client(), "bea@example.com", SAFARI_IPHONE)
        after = session_of(laptop)
        assert after is not None and after.id == before.id
        assert after.last_seen_at == before.last_seen_at
        assert after.expires_at == before.expires_at
        assert [n["device"] for n in after["new_sign_ins"]] == ["Safari 17 on iOS 17.4"]
    finally:
        app.extensions["kitsession"].store.close()


def test_a_failed_login_tells_nobody(example: Flask) -> None:
    laptop = example.test_client()
    register_and_log_in(laptop, "cy@example.com", FIREFOX_UBUNTU)
    stranger = example.test_client()
    token = csrf(stranger, "/login")
    response = stranger.post(
        "/login", data={"email": "cy@example.com", "password": "wrong", "csrf_token": token}
    )
    assert response.status_code == 401
    assert notices(laptop.get("/devices").text) == []


def test_forms_work_across_login_and_logout(example: Flask) -> None:
    """A login starts the session over under a new cookie, and Flask-WTF's
    token follows the visitor who logs in (docs/security.md, section 9): a
    form opened before the login still posts after it. The token ends with
    the session at logout.
    """
    client = example.test_client()
    register_and_log_in(client, "dee@example.com")
    before_logout = csrf(client, "/")
    client.post("/logout", data={"csrf_token": before_logout})
    # The logged-in session's token died with it at logout. (Forms carry it
    # signed with a time stamp: the session's token is the part before it.)
    assert session_token(csrf(client, "/login")) != session_token(before_logout)

    before_login = csrf(client, "/login")
    response = client.post(
        "/login",
        data={"email": "dee@example.com", "password": "correct horse", "csrf_token": before_login},
    )
    assert response.status_code == 302
    after_login = csrf(client, "/devices")
    assert session_token(after_login) == session_token(before_login)
    # A form opened before the login (in another tab, say) still works.
    response = client.post("/devices/sign-out-others", data={"csrf_token": before_login})
    assert response.status_code == 302
    refused = client.post("/devices/sign-out-others", data={"csrf_token": before_logout})
    assert refused.status_code == 400
    assert "The form expired or did not come from this site" in refused.text
    response = client.post("/logout", data={"csrf_token": csrf(client, "/")})
    assert response.status_code == 302
    assert "not logged in" in client.get("/").text
    # After the logout, the next login's form works too.
    log_in(client, "dee@example.com")
    assert "Hello, dee@example.com" in client.get("/").text
