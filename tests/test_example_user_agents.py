"""The example app's device labels, from ua-parser's reading of the user
agents real browsers send."""

from __future__ import annotations

import pytest
from example_app.user_agents import Device
from example_app.user_agents import parse_user_agent

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36"
)
EDGE_WINDOWS = CHROME_WINDOWS + " Edg/124.0.2478.80"
OPERA_WINDOWS = CHROME_WINDOWS + " OPR/109.0.0.0"
VIVALDI_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36 Vivaldi/6.7.3329.31"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4.1 Safari/605.1.15"
)
FIREFOX_UBUNTU = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:115.0) Gecko/20100101 Firefox/115.0"
FIREFOX_WINDOWS_7 = (
    "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0"
)
FIREFOX_ANDROID = "Mozilla/5.0 (Android 14; Mobile; rv:126.0) Gecko/126.0 Firefox/126.0"
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/16.0 Mobile/15E148 Safari/604.1"
)
CHROME_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) CriOS/125.0.6422.80 Mobile/15E148 Safari/604.1"
)
FIREFOX_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) FxiOS/126.0 Mobile/15E148 Safari/605.1.15"
)
CHROME_ANDROID = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Mobile Safari/537.36"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36"
)
SAMSUNG_ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko)"
    " SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36"
)
CHROME_CHROMEOS = (
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36"
)
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " HeadlessChrome/156.0.0.0 Safari/537.36"
)
IE_11 = "Mozilla/5.0 (Windows NT 6.3; Trident/7.0; rv:11.0) like Gecko"


PIXEL_8 = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/147.0.0.0 Mobile Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


@pytest.mark.parametrize(
    ("user_agent", "label", "kind"),
    [
        (CHROME_WINDOWS, "Chrome 124 on Windows", "desktop"),
        (EDGE_WINDOWS, "Edge 124 on Windows", "desktop"),
        (OPERA_WINDOWS, "Opera 109 on Windows", "desktop"),
        (VIVALDI_LINUX, "Vivaldi 6 on Linux", "desktop"),
        (CHROME_MAC, "Chrome 124 on macOS", "desktop"),
        (SAFARI_MAC, "Safari 17 on macOS", "desktop"),
        (FIREFOX_UBUNTU, "Firefox 126 on Ubuntu", "desktop"),
        (FIREFOX_LINUX, "Firefox 115 on Linux", "desktop"),
        (FIREFOX_WINDOWS_7, "Firefox 115 on Windows 7", "desktop"),
        (FIREFOX_ANDROID, "Firefox 126 on Android 14", "phone"),
        (SAFARI_IPHONE, "Safari 17 on iOS 17.4", "phone"),
        (SAFARI_IPAD, "Safari 16 on iPadOS 16", "tablet"),
        (CHROME_IPHONE, "Chrome 125 on iOS 17.5", "phone"),
        (FIREFOX_IPHONE, "Firefox 126 on iOS 17.5", "phone"),
        (CHROME_ANDROID, "Chrome 124 on Android 10", "phone"),
        (CHROME_ANDROID_TABLET, "Chrome 124 on Android 13", "tablet"),
        (SAMSUNG_ANDROID, "Samsung Internet 24 on Android 14", "phone"),
        (PIXEL_8, "Chrome 147 on Android 14", "phone"),
        (CHROME_CHROMEOS, "Chrome 124 on ChromeOS", "desktop"),
        (HEADLESS_CHROME, "Headless Chrome 156 on Linux", "desktop"),
        (IE_11, "Internet Explorer 11 on Windows 8.1", "desktop"),
        (GOOGLEBOT, "Googlebot 2", "other"),
        ("curl/8.5.0", "curl 8", "other"),
        ("python-requests/2.32.3", "Python Requests 2", "other"),
        ("Python-urllib/3.11", "Python urllib 3", "other"),
    ],
)
def test_real_user_agents(user_agent: str, label: str, kind: str) -> None:
    device = parse_user_agent(user_agent)
    assert device.label == label
    assert device.kind == kind


def test_parts_are_separate() -> None:
    device = parse_user_agent(SAFARI_IPHONE)
    assert device == Device("Safari", "17", "iOS", "17.4", "phone")
    assert device.browser_label == "Safari 17"
    assert device.os_label == "iOS 17.4"


@pytest.mark.parametrize(
    ("user_agent", "model"),
    [
        (SAMSUNG_ANDROID, "Samsung SM-S918B"),
        (PIXEL_8, "Google Pixel 8"),
        # Chrome's reduced user agent names no model ("K").
        (CHROME_ANDROID, None),
        # Apple's "iPhone" and "Mac" say no more than the system.
        (SAFARI_IPHONE, None),
        (CHROME_MAC, None),
        (CHROME_WINDOWS, None),
    ],
)
def test_the_model_when_the_user_agent_names_one(user_agent: str, model: str | None) -> None:
    assert parse_user_agent(user_agent).model == model


@pytest.mark.parametrize("user_agent", [None, "", "   ", "garbage", "Mozilla/5.0", "\x00" * 600])
def test_unknown_user_agents_say_so(user_agent: str | None) -> None:
    device = parse_user_agent(user_agent)
    assert device.label == "Unknown device"
    assert device.kind == "other"


def test_only_the_system_known() -> None:
    device = parse_user_agent("SomeBrowser (Windows NT 10.0; Win64; x64)")
    assert device.label == "Windows"
    assert device.browser is None


def test_only_the_browser_known() -> None:
    assert parse_user_agent("Mozilla/5.0 Firefox/99.0").label == "Firefox 99"


def test_long_hostile_input() -> None:
    """The 512 characters a session keeps of a hostile header give an answer.
    (ua-parser-rs runs the rules on Rust's regex engine, in time linear in the
    input: no rule can backtrack catastrophically.)
    """
    hostile = ["iPhone " + "OS " * 170, "Trident/" + " " * 500, "Version/1" + "1" * 500]
    assert [parse_user_agent(user_agent).kind for user_agent in hostile] == [
        "phone",
        "other",
        "other",
    ]
