"""Turn a ``User-Agent`` header into "Chrome 124 on Windows" for the devices page.

A deliberately small parser, standard library only: the example must run on
the library's own dependencies (its run command installs nothing else). It
knows the browsers and systems that send nearly all real traffic and says
"Unknown" for the rest; it never raises. An app that needs more (device
models, bots, rare browsers) should use ``ua-parser`` with its
``ua-parser-builtins`` rules instead: they are kept up to date against real
traffic, which a parser of a hundred lines is not.

What a user agent cannot tell, it does not guess:

- Windows 10 and 11 both send ``Windows NT 10.0``: shown as "Windows".
- macOS froze its version at ``10_15_7`` in Safari, Chrome and Firefox:
  shown as "macOS", without a version.
- iPads since iPadOS 13 ask for desktop sites and send a Mac's user agent:
  they show as macOS.

Browsers are matched in order, most specific first, because Chromium-based
browsers also say ``Chrome/`` and ``Safari/``, and Chrome on iOS says
``Safari/`` too.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass

Kind = t.Literal["desktop", "phone", "tablet", "other"]

#: (pattern, browser name). The first group, when there is one, is the version.
_BROWSERS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\bEdg(?:e|A|iOS)?/(\d+)", "Edge"),
        (r"\b(?:OPR|OPiOS)/(\d+)", "Opera"),
        (r"\bSamsungBrowser/(\d+)", "Samsung Internet"),
        (r"\bVivaldi/(\d+)", "Vivaldi"),
        (r"\bYaBrowser/(\d+)", "Yandex Browser"),
        (r"\b(?:Firefox|FxiOS)/(\d+)", "Firefox"),
        (r"\bHeadlessChrome/(\d+)", "Headless Chrome"),
        (r"\bChromium/(\d+)", "Chromium"),
        (r"\b(?:Chrome|CriOS)/(\d+)", "Chrome"),
        (r"\bVersion/(\d+(?:\.\d+)?).*\bSafari/", "Safari"),
        (r"\bMSIE (\d+)", "Internet Explorer"),
        (r"\bTrident/.*\brv:(\d+)", "Internet Explorer"),
        (r"^curl/(\d+(?:\.\d+)?)", "curl"),
        (r"^Wget/(\d+(?:\.\d+)?)", "Wget"),
        (r"^python-requests/(\d+(?:\.\d+)?)", "Python Requests"),
        (r"^Python-urllib/(\d+(?:\.\d+)?)", "Python urllib"),
    )
)

#: Windows NT versions that name one Windows release.
_WINDOWS_RELEASES = {
    "5.1": "XP",
    "5.2": "XP",
    "6.0": "Vista",
    "6.1": "7",
    "6.2": "8",
    "6.3": "8.1",
}


@dataclass(frozen=True)
class Device:
    """What a user agent says about the device a session was signed in from.

    :param browser: The browser's name, or ``None`` if unknown.
    :param browser_version: Its major version (major.minor for Safari), if known.
    :param os: The operating system's name, or ``None`` if unknown.
    :param os_version: Its version, if the user agent tells it truthfully.
    :param kind: ``desktop``, ``phone``, ``tablet`` or ``other`` (a script, a bot,
        anything unknown): picks the icon.
    """

    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    kind: Kind = "other"

    @property
    def browser_label(self) -> str | None:
        """The browser and its version: "Firefox 126"."""
        return _join(self.browser, self.browser_version)

    @property
    def os_label(self) -> str | None:
        """The system and its version: "Android 14"."""
        return _join(self.os, self.os_version)

    @property
    def label(self) -> str:
        """One line for people: "Firefox 126 on Ubuntu", or "Unknown device"."""
        browser, system = self.browser_label, self.os_label
        if browser and system:
            return f"{browser} on {system}"
        return browser or system or "Unknown device"


def _join(name: str | None, version: str | None) -> str | None:
    if name is None:
        return None
    return f"{name} {version}" if version else name


def parse_user_agent(user_agent: str | None) -> Device:
    """Describe the device behind a ``User-Agent`` header.

    :param user_agent: The header's value, as stored with the session (``None``
        when the app does not track user agents).
    :return: What could be told; unknown parts are ``None``. Never raises.
    """
    if not user_agent:
        return Device()
    browser, browser_version = _browser(user_agent)
    os, os_version, kind = _system(user_agent)
    return Device(browser, browser_version, os, os_version, kind)


def _browser(user_agent: str) -> tuple[str | None, str | None]:
    for pattern, name in _BROWSERS:
        match = pattern.search(user_agent)
        if match is not None:
            version = match.group(1)
            return name, version.removesuffix(".0") if version else None
    return None, None


def _system(user_agent: str) -> tuple[str | None, str | None, Kind]:
    # Apple's mobile systems first: their user agents also say "like Mac OS X".
    match = re.search(r"\b(iPhone|iPod|iPad)\b.*?\bOS (\d+)(?:_(\d+))?", user_agent)
    if match is not None:
        device, major, minor = match.groups()
        version = f"{major}.{minor}" if minor and minor != "0" else major
        if device == "iPad":
            return "iPadOS", version, "tablet"
        return "iOS", version, "phone"
    match = re.search(r"\bAndroid(?: (\d+(?:\.\d+)?))?", user_agent)
    if match is not None:
        # Android tablets leave out "Mobile".
        kind: Kind = "phone" if "Mobile" in user_agent else "tablet"
        return "Android", match.group(1), kind
    match = re.search(r"\bWindows NT (\d+\.\d+)", user_agent)
    if match is not None:
        return "Windows", _WINDOWS_RELEASES.get(match.group(1)), "desktop"
    if "CrOS" in user_agent:
        return "ChromeOS", None, "desktop"
    if "Macintosh" in user_agent or "Mac OS X" in user_agent:
        return "macOS", None, "desktop"
    for distribution in ("Ubuntu", "Fedora", "Debian"):
        if distribution in user_agent:
            return distribution, None, "desktop"
    if "Linux" in user_agent or "X11" in user_agent:
        return "Linux", None, "desktop"
    return None, None, "other"
