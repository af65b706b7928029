"""Session tokens: what travels in the cookie, and the id stored in their place."""

from __future__ import annotations

import hashlib
import re
import secrets

#: Bytes of randomness in a token: 256 bits, as ``secrets.token_urlsafe(32)``.
TOKEN_BYTES = 32

#: A token is 43 characters of the URL-safe base64 alphabet, without padding.
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")

#: A session id is the hex SHA-256 of its token: 64 lowercase hex characters.
_SESSION_ID_RE = re.compile(r"[0-9a-f]{64}")


def new_token() -> str:
    """Return a fresh random session token (256 bits from :mod:`secrets`)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def session_id_for(token: str) -> str:
    """Return the session id stored for ``token``: the hex SHA-256 of the token.

    Only this hash is ever stored, so a leaked database or log of session ids
    gives nobody a cookie that works.
    """
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def is_token(value: str) -> bool:
    """Tell whether ``value`` has the shape of a token made by :func:`new_token`."""
    return _TOKEN_RE.fullmatch(value) is not None


def is_session_id(value: str) -> bool:
    """Tell whether ``value`` has the shape of a session id (a hex SHA-256)."""
    return _SESSION_ID_RE.fullmatch(value) is not None
