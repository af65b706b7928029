"""How the example's pages show times: "5 minutes ago", "23 Nov 2026, 14:05 UTC"."""

from __future__ import annotations

from datetime import datetime
from datetime import timezone

_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))


def time_ago(moment: datetime, now: datetime) -> str:
    """Say how long ago ``moment`` was: "just now", "3 hours ago", "12 days ago".

    Past a month, the date itself says more: "on 23 Nov 2026".

    :param moment: An aware datetime.
    :param now: The current time, aware.
    """
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        # Includes a moment slightly ahead of ``now`` (clocks of two servers).
        return "just now"
    if seconds >= 30 * 86400:
        return f"on {moment.astimezone(timezone.utc):%d %b %Y}"
    for size, unit in _UNITS:
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    raise AssertionError("unreachable: a minute or more matches a unit")


def utc(moment: datetime) -> str:
    """Show an aware datetime in UTC: "23 Nov 2026, 14:05 UTC"."""
    return f"{moment.astimezone(timezone.utc):%d %b %Y, %H:%M} UTC"
