"""What a session keeps of the request: the client address and the user agent,
normalized to what their columns hold, so that they never fail a request.

The address comes from ``request.remote_addr``, which behind ``ProxyFix`` is
whatever the proxy wrote into ``X-Forwarded-For``: an IPv6 address with a
zone id (``fe80::1%eth0``), a bracketed address with a port, an obfuscated
identifier (``unknown``, ``_hidden``), anything. Stored as it came, a value
longer than the column made every save and touch a 503 on PostgreSQL and
MariaDB.

- An address, possibly in brackets, with a port or a zone id, is stored in
  its canonical text (:func:`ipaddress.ip_address`): the zone id and the
  port dropped (the zone names the server's own interface; the port changes
  with every connection), an IPv4-mapped IPv6 address as the IPv4 address.
  At most 39 characters.
- Anything else keeps its printable ASCII characters, cut to the column's
  length (45): it still tells an operator what the proxy sent.
- The user agent loses the characters no text column holds on every
  database (NUL, surrogates) and is cut to its column's length (512).
"""

from __future__ import annotations

import ipaddress
import re

from flask import Request

from .models import IP_ADDRESS_LENGTH
from .models import USER_AGENT_LENGTH

#: What PostgreSQL's text columns cannot hold (and so no column does here).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NOT_PRINTABLE_ASCII = re.compile("[^\x21-\x7e]")


def client_address(request: Request) -> str | None:
    """Return the request's client address as the session stores it, or
    ``None`` when there is none.
    """
    address = request.remote_addr
    return normalize_address(address) if address else None


def user_agent(request: Request) -> str | None:
    """Return the request's user agent as the session stores it, or ``None``
    when it sent none.
    """
    agent = request.user_agent.string
    return normalize_user_agent(agent) if agent else None


def normalize_address(text: str) -> str | None:
    """Return ``text`` (a client address, or what a proxy sent for one) as it
    fits the ``ip_address`` column; ``None`` if nothing printable is left.
    """
    candidate = text.strip()
    if candidate.startswith("["):
        # "[2001:db8::1]:4711", as RFC 7239 and some proxies write IPv6.
        candidate = candidate[1:].partition("]")[0]
    elif candidate.count(":") == 1:
        # "192.0.2.1:4711": an IPv4 address and a port.
        candidate = candidate.partition(":")[0]
    candidate = candidate.partition("%")[0]
    try:
        address = ipaddress.ip_address(candidate)
    except ValueError:
        printable = _NOT_PRINTABLE_ASCII.sub("", text)[:IP_ADDRESS_LENGTH]
        return printable or None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def normalize_user_agent(text: str) -> str | None:
    """Return a user agent as it fits the ``user_agent`` column."""
    agent = _UNSTORABLE.sub("", text)[:USER_AGENT_LENGTH]
    return agent or None
