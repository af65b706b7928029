"""Turn a ``User-Agent`` header into "Chrome 124 on Windows" for the devices page.

`ua-parser`_ reads the header, with the rules of the ua-parser project
(``ua-parser-builtins``, kept up to date against real traffic, and
``ua-parser-rs`` to run them fast). This module only words its answer for
people, and leaves out what a user agent cannot tell truthfully:

- Windows 10 and 11 both send ``Windows NT 10.0``: shown as "Windows".
- macOS froze its version at ``10_15_7`` in Safari, Chrome and Firefox:
  shown as "macOS", without a version. ChromeOS sends its build number,
  which means nothing to people: "ChromeOS".
- iPads since iPadOS 13 ask for desktop sites and send a Mac's user agent:
  they show as macOS.

.. _ua-parser: https://pypi.org/project/ua-parser/
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

import ua_parser

Kind = t.Literal["desktop", "phone", "tablet", "other"]

#: ua-parser's names for browsers, where people know them by another one.
_BROWSER_NAMES = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Edge Mobile": "Edge",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "HeadlessChrome": "Headless Chrome",
    "IE": "Internet Explorer",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Opera Mobile": "Opera",
    "Python-urllib": "Python urllib",
}

#: ua-parser's names for systems, where their makers now call them otherwise.
_OS_NAMES = {"Mac OS X": "macOS", "Chrome OS": "ChromeOS"}

#: Systems whose version in a user agent is true and worth showing.
_VERSIONED_SYSTEMS = {"iOS", "Android", "Windows"}

#: Systems of desktop and laptop computers.
_DESKTOP_SYSTEMS = {
    "Windows",
    "Mac OS X",
    "Chrome OS",
    "Linux",
    "Ubuntu",
    "Debian",
    "Fedora",
    "FreeBSD",
    "OpenBSD",
}


@dataclass(frozen=True)
class Device:
    """What a user agent says about the device a session was signed in from.

    :param browser: The browser's name, or ``None`` if unknown.
    :param browser_version: Its major version, if known.
    :param os: The operating system's name, or ``None`` if unknown.
    :param os_version: Its version, if the user agent tells it truthfully.
    :param kind: ``desktop``, ``phone``, ``tablet`` or ``other`` (a script, a bot,
        anything unknown): picks the icon.
    :param model: The maker and model ("Samsung SM-S918B"), when the user agent
        names a real one.
    """

    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    kind: Kind = "other"
    model: str | None = None

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
    if not user_agent or not user_agent.strip():
        return Device()
    result = ua_parser.parse(user_agent)
    browser = browser_version = os = os_version = model = None
    if result.user_agent is not None:
        family = result.user_agent.family
        browser = _BROWSER_NAMES.get(family, family)
        browser_version = result.user_agent.major
    system = result.os.family if result.os is not None else None
    device = result.device
    is_ipad = device is not None and device.family == "iPad"
    if result.os is not None and system is not None:
        os = "iPadOS" if system == "iOS" and is_ipad else _OS_NAMES.get(system, system)
        if system in _VERSIONED_SYSTEMS:
            os_version = _os_version(system, result.os.major, result.os.minor)
    if device is not None and device.brand and device.model:
        # "Generic_Android" and the like say nothing; Apple's models
        # ("iPhone", "Mac") repeat what the system says.
        if not device.brand.startswith(("Generic", "Spider")) and device.brand != "Apple":
            model = f"{device.brand} {device.model}"
    return Device(
        browser, browser_version, os, os_version, _kind(user_agent, system, device), model
    )


def _os_version(system: str, major: str | None, minor: str | None) -> str | None:
    if major is None:
        return None
    if system == "Windows":
        if major == "10":
            return None  # Windows 10 or 11: the user agent cannot tell
        return f"{major}.{minor}" if minor else major
    return f"{major}.{minor}" if minor and minor != "0" else major


def _kind(user_agent: str, system: str | None, device: ua_parser.Device | None) -> Kind:
    if device is not None:
        if device.family == "Spider":
            return "other"  # a crawler or a script
        if device.family == "iPad" or "Tablet" in (device.brand or "") + device.family:
            return "tablet"
    if system == "iOS":
        return "phone"
    if system == "Android":
        # Android phones' browsers say "Mobile"; tablets' leave it out.
        return "phone" if "Mobile" in user_agent else "tablet"
    if system in _DESKTOP_SYSTEMS:
        return "desktop"
    return "other"
