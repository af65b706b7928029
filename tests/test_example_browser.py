"""The example app in a real browser: Debian's Chromium, driven by Playwright.

Each browser context is a device of its own: its own cookies, its own user
agent. The "laptop" presents the user agent the same Chromium sends when it
is not headless; the "phone" emulates an Android phone (its user agent, a
phone's viewport and touch), as Playwright's device emulation does. The
requests of both really come from the one Chromium, through the app's pages,
to a server on 127.0.0.1.
"""

from __future__ import annotations

import os
import typing as t
from pathlib import Path

import pytest

from .support.processes import LocalServer
from .support.processes import REPOSITORY

if t.TYPE_CHECKING:
    from playwright.sync_api import Browser
    from playwright.sync_api import BrowserContext
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery"
#: The README's screenshot; a run rewrites it only when asked to, so that the
#: times on the page do not leave a changed file behind every test run.
SCREENSHOT = REPOSITORY / "docs" / "devices.png"
UPDATE_SCREENSHOT = os.environ.get("KITSESSION_UPDATE_SCREENSHOT", "") == "1"
#: Every wait of a test is bounded by this (milliseconds).
TIMEOUT = 10_000


def laptop(browser: Browser, server: LocalServer) -> BrowserContext:
    """A desktop browser: this Chromium's own user agent, without "Headless"."""
    agent = browser.new_context()
    page = agent.new_page()
    user_agent = str(page.evaluate("navigator.userAgent")).replace("HeadlessChrome", "Chrome")
    agent.close()
    context = browser.new_context(
        base_url=server.url, user_agent=user_agent, viewport={"width": 1040, "height": 660}
    )
    context.set_default_timeout(TIMEOUT)
    return context


def phone(browser: Browser, server: LocalServer) -> BrowserContext:
    """An Android phone: a phone's user agent, viewport and touch screen."""
    version = browser.version.split(".")[0]
    context = browser.new_context(
        base_url=server.url,
        user_agent=(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
            f" Chrome/{version}.0.0.0 Mobile Safari/537.36"
        ),
        viewport={"width": 412, "height": 915},
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(TIMEOUT)
    return context


def register(page: Page, email: str) -> None:
    page.goto("/register")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_url("**/login?email=*")
    assert page.get_by_role("status").inner_text() == "Account created. Please log in."


def log_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")
    assert page.locator("h1").inner_text() == f"Hello, {email}"


def session_cookie(context: BrowserContext) -> dict[str, t.Any] | None:
    cookies = [c for c in context.cookies() if c["name"] == "session"]
    assert len(cookies) <= 1
    return dict(cookies[0]) if cookies else None


def is_logged_out(page: Page) -> bool:
    return page.locator("#logged-out").is_visible()


def test_two_devices_and_sign_out_all_others(
    browser: Browser, example_server: LocalServer, tmp_path: Path
) -> None:
    with laptop(browser, example_server) as laptop_context:
        with phone(browser, example_server) as phone_context:
            on_laptop = laptop_context.new_page()
            register(on_laptop, "ada@example.com")
            log_in(on_laptop, "ada@example.com")
            on_phone = phone_context.new_page()
            log_in(on_phone, "ada@example.com")

            # Both devices are listed, on both; each marks itself.
            for page, here, there in [
                (on_phone, "Android 14", "on Linux"),
                (on_laptop, "on Linux", "Android 14"),
            ]:
                page.goto("/devices")
                devices = page.locator("li.device")
                assert devices.count() == 2
                current = page.locator("li.device.current")
                assert current.count() == 1
                assert here in current.inner_text() and "This device" in current.inner_text()
                other = page.locator("li.device:not(.current)")
                assert there in other.inner_text() and "This device" not in other.inner_text()
                for row in (current, other):
                    text = row.text_content() or ""
                    assert "127.0.0.1" in text and "Signed in" in text and "UTC" in text
                assert "Active now" in current.inner_text()
                assert "just now" in other.inner_text()

            assert "Chrome" in on_laptop.locator("li.device.current .device-name").inner_text()
            screenshot = SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "devices.png"
            on_laptop.screenshot(path=screenshot, full_page=True)
            assert screenshot.read_bytes().startswith(b"\x89PNG")

            on_laptop.get_by_role("button", name="Sign out all other devices").click()
            on_laptop.wait_for_url("**/devices")
            assert on_laptop.get_by_role("status").inner_text() == "Signed out 1 other device."
            assert on_laptop.locator("li.device").count() == 1
            assert on_laptop.get_by_role("button", name="Sign out all other devices").count() == 0

            # The phone is out on its next navigation; its stale cookie is dropped.
            assert session_cookie(phone_context) is not None
            response = on_phone.goto("/")
            assert response is not None and response.status == 200
            assert is_logged_out(on_phone)
            assert session_cookie(phone_context) is None
            on_phone.goto("/devices")
            assert on_phone.url.endswith("/login")

            # The laptop stays in.
            on_laptop.goto("/")
            assert on_laptop.locator("h1").inner_text() == "Hello, ada@example.com"
            assert "1 device" in on_laptop.locator("main").inner_text()


def test_sign_out_one_device_from_the_list(browser: Browser, example_server: LocalServer) -> None:
    with laptop(browser, example_server) as laptop_context:
        with phone(browser, example_server) as phone_context:
            on_laptop = laptop_context.new_page()
            register(on_laptop, "bea@example.com")
            log_in(on_laptop, "bea@example.com")
            on_phone = phone_context.new_page()
            log_in(on_phone, "bea@example.com")

            on_laptop.goto("/devices")
            other = on_laptop.locator("li.device:not(.current)")
            other.get_by_role("button", name="Sign out this device").click()
            on_laptop.wait_for_url("**/devices")
            assert "Signed out Chrome" in on_laptop.get_by_role("status").inner_text()
            assert on_laptop.locator("li.device").count() == 1
            on_phone.reload()
            assert is_logged_out(on_phone)

            # Signing out this very device is logging out.
            on_laptop.locator("li.device.current").get_by_role(
                "button", name="Sign out this device"
            ).click()
            on_laptop.wait_for_url("**/")
            assert is_logged_out(on_laptop)
            assert session_cookie(laptop_context) is None


def test_a_new_sign_in_is_told_on_the_other_devices(
    browser: Browser, example_server: LocalServer, tmp_path: Path
) -> None:
    with laptop(browser, example_server) as laptop_context:
        with phone(browser, example_server) as phone_context:
            on_laptop = laptop_context.new_page()
            register(on_laptop, "ivy@example.com")
            log_in(on_laptop, "ivy@example.com")
            on_phone = phone_context.new_page()
            log_in(on_phone, "ivy@example.com")

            on_laptop.goto("/devices")
            notice = on_laptop.get_by_role("note")
            assert notice.count() == 1
            text = notice.inner_text()
            assert text.startswith("New sign-in: Chrome ") and " on Android 14, " in text
            assert " UTC." in text and "Not you?" in text
            on_laptop.screenshot(path=tmp_path / "new-sign-in.png", full_page=True)
            # Told once.
            on_laptop.reload()
            assert on_laptop.get_by_role("note").count() == 0
            # The phone that signed in is not told of itself.
            on_phone.goto("/devices")
            assert on_phone.get_by_role("note").count() == 0
            assert on_phone.locator("li.device").count() == 2


def test_logout_clears_the_cookie(browser: Browser, example_server: LocalServer) -> None:
    with laptop(browser, example_server) as context:
        page = context.new_page()
        register(page, "cy@example.com")
        log_in(page, "cy@example.com")
        cookie = session_cookie(context)
        assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Lax"

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/")
        assert is_logged_out(page)
        assert session_cookie(context) is None

        # The old cookie, sent again, is worth nothing.
        context.add_cookies([t.cast(t.Any, cookie)])
        page.goto("/")
        assert is_logged_out(page)
        assert session_cookie(context) is None
        context.add_cookies([t.cast(t.Any, cookie)])
        page.goto("/devices")
        assert page.url.endswith("/login")
        # The login form's token lives in a new anonymous session.
        new_cookie = session_cookie(context)
        assert new_cookie is not None and new_cookie["value"] != cookie["value"]


@pytest.mark.parametrize(
    "tamper",
    [
        # A character in the middle of the signature: the last one also holds
        # unused bits, and "A" -> "B" there decodes to the same signature.
        pytest.param(lambda v: v[:-20] + ("A" if v[-20] != "A" else "B") + v[-19:], id="signature"),
        pytest.param(lambda v: ("A" if v[0] != "A" else "B") + v[1:], id="token"),
        pytest.param(lambda v: "garbage", id="garbage"),
        pytest.param(lambda v: v * 20, id="oversized"),
    ],
)
def test_tampered_cookie_shows_the_logged_out_page(
    browser: Browser, example_server: LocalServer, tamper: t.Callable[[str], str]
) -> None:
    with laptop(browser, example_server) as context:
        page = context.new_page()
        register(page, "dan@example.com")
        log_in(page, "dan@example.com")
        cookie = session_cookie(context)
        assert cookie is not None
        tampered = tamper(cookie["value"])
        context.add_cookies([t.cast(t.Any, {**cookie, "value": tampered})])

        response = page.goto("/")
        assert response is not None and response.status == 200
        assert is_logged_out(page)
        # A cookie the app cannot verify is not its to delete on a page that
        # writes nothing (it may be another app's, or signed with a key
        # another worker has), as with Flask's own session.
        kept = session_cookie(context)
        assert kept is not None and kept["value"] == tampered
        # Logging in again works as ever, and replaces it.
        log_in(page, "dan@example.com")
        replaced = session_cookie(context)
        assert replaced is not None and replaced["value"] != tampered


def test_a_form_from_another_site_is_refused(browser: Browser, example_server: LocalServer) -> None:
    with laptop(browser, example_server) as laptop_context:
        with phone(browser, example_server) as phone_context:
            on_laptop = laptop_context.new_page()
            register(on_laptop, "eli@example.com")
            log_in(on_laptop, "eli@example.com")
            log_in(phone_context.new_page(), "eli@example.com")

            # A page elsewhere posts to the app, without the form's token.
            attacker = laptop_context.new_page()
            attacker.set_content(
                f'<form method="post" action="{example_server.url}/devices/sign-out-others">'
                '<button type="submit">Win a prize</button></form>'
            )
            with attacker.expect_navigation():
                attacker.get_by_role("button", name="Win a prize").click()
            assert "The form expired or did not come from this site" in attacker.content()

            on_laptop.goto("/devices")
            assert on_laptop.locator("li.device").count() == 2


#: The longest address the app accepts (254 characters).
LONGEST_EMAIL = "a" * (254 - len("@example.com")) + "@example.com"


def page_width(page: Page) -> tuple[int, int]:
    """How wide the page is drawn, and how wide the window is."""
    width, window = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return int(width), int(window)


def test_the_longest_email_fits_the_layout(
    browser: Browser, example_server: LocalServer, tmp_path: Path
) -> None:
    with laptop(browser, example_server) as laptop_context:
        with phone(browser, example_server) as phone_context:
            on_laptop = laptop_context.new_page()
            register(on_laptop, LONGEST_EMAIL)
            log_in(on_laptop, LONGEST_EMAIL)
            on_phone = phone_context.new_page()
            log_in(on_phone, LONGEST_EMAIL)
            for name, page in (("laptop", on_laptop), ("phone", on_phone)):
                for path in ("/", "/devices"):
                    page.goto(path)
                    width, window = page_width(page)
                    assert width <= window, (name, path, width, window)
                page.goto("/")
                page.screenshot(path=tmp_path / f"long-email-{name}.png", full_page=True)
            # The top bar cuts the address, and keeps it whole in its title.
            who = on_laptop.locator("nav .who")
            assert who.get_attribute("title") == f"Signed in as {LONGEST_EMAIL}"
            box = who.bounding_box()
            assert box is not None and box["width"] < 400


def test_an_email_too_long_is_called_too_long(
    browser: Browser, example_server: LocalServer
) -> None:
    with laptop(browser, example_server) as context:
        page = context.new_page()
        page.goto("/register")
        page.get_by_label("Email").fill("a" * 4988 + "@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        alert = page.get_by_role("alert")
        assert "That email address is too long" in alert.inner_text()
        assert page_width(page)[0] <= page_width(page)[1]


@pytest.mark.parametrize(
    ("path", "code", "heading"),
    [("/no/such/page", 404, "Not Found"), ("/logout", 405, "Method Not Allowed")],
)
def test_error_pages_are_pages_of_the_app(
    browser: Browser,
    example_server: LocalServer,
    tmp_path: Path,
    path: str,
    code: int,
    heading: str,
) -> None:
    with laptop(browser, example_server) as context:
        page = context.new_page()
        response = page.goto(path)
        assert response is not None and response.status == code
        assert page.locator("h1").inner_text() == heading
        # The app's own look: its stylesheet drew the big status code.
        number = page.locator(".error-code")
        assert number.inner_text() == str(code)
        assert number.evaluate("e => getComputedStyle(e).fontSize") == "48px"
        page.get_by_role("link", name="Back to the start").click()
        page.wait_for_url("**/")
        assert is_logged_out(page)
        page.goto(path)
        page.screenshot(path=tmp_path / f"error-{code}.png", full_page=True)


def test_a_failure_is_a_page_of_the_app(browser: Browser, tmp_path: Path) -> None:
    from example_app import create_app

    app = create_app(
        {
            "SECRET_KEY": "browser test",
            "KITSESSION_DATABASE_URL": f"sqlite:///{tmp_path / 'example.sqlite3'}",
        }
    )

    @app.get("/broken")
    def broken() -> str:
        raise RuntimeError("a bug in a view")

    try:
        with LocalServer(app) as server, laptop(browser, server) as context:
            page = context.new_page()
            register(page, "fay@example.com")
            log_in(page, "fay@example.com")
            response = page.goto("/broken")
            assert response is not None and response.status == 500
            assert page.locator(".error-code").inner_text() == "500"
            assert "Something went wrong on our side" in page.locator("main").inner_text()
            page.screenshot(path=tmp_path / "error-500.png", full_page=True)
            assert server.errors() == [(500, "GET", "/broken")]
    finally:
        app.extensions["kitsession"].store.close()


def test_no_request_of_the_pages_fails(browser: Browser, example_server: LocalServer) -> None:
    """Not the icon either: every page links it, and it is there."""
    with laptop(browser, example_server) as context:
        page = context.new_page()
        failed: list[str] = []
        page.on(
            "response",
            lambda response: (
                failed.append(f"{response.status} {response.url}")
                if response.status >= 400
                else None
            ),
        )
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text))
        register(page, "gil@example.com")
        log_in(page, "gil@example.com")
        page.goto("/devices")
        assert failed == [] and problems == []
        icon = page.locator("link[rel=icon]").get_attribute("href")
        assert icon is not None
        answer = page.request.get(icon)
        assert answer.status == 200
        assert answer.headers["content-type"].startswith("image/svg+xml")


def test_back_after_logout_shows_no_signed_in_page(
    browser: Browser, example_server: LocalServer
) -> None:
    with laptop(browser, example_server) as context:
        page = context.new_page()
        register(page, "hal@example.com")
        log_in(page, "hal@example.com")
        response = page.goto("/devices")
        assert response is not None and response.headers["cache-control"] == "no-store"
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url("**/")
        assert is_logged_out(page)
        # The back button asks the server again, which sends a login page.
        page.go_back()
        assert page.url.endswith("/login")
        assert "hal@example.com" not in page.content()
