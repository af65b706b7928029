"""The session cookie's value: a token, signed with the app's secret keys.

The token alone already carries 256 random bits, so the signature is a second
line of defence: a cookie that was not made with one of the app's keys is
turned away before the store is asked, and rotating ``SECRET_KEY`` (keeping the
old one in ``SECRET_KEY_FALLBACKS``) signs every session out of any client that
kept a cookie from a key since removed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import typing as t
import warnings

from itsdangerous import Signer

from . import tokens

if t.TYPE_CHECKING:
    from flask import Flask

#: Longer cookie values are refused before any hashing: a signed token is 87
#: characters, and nothing a client sends makes the server work harder.
MAX_COOKIE_VALUE_LENGTH = 256


class _SigningKeys(t.NamedTuple):
    #: The signing keys derived from the app's keys, newest first.
    derived: tuple[bytes, ...]
    #: An HMAC keyed with each of them, copied for each signature.
    macs: tuple[hmac.HMAC, ...]


class CookieSigner:
    """Signs tokens into cookie values and checks them on the way back.

    :param salt: Mixed into the signing key, so the signature cannot be
        confused with any other use of ``SECRET_KEY``.
    :param digest_method: Hash function of the HMAC.
    :param key_derivation: itsdangerous key derivation name.
    :param sign: When false, the cookie value is the bare token.
    """

    def __init__(
        self,
        *,
        salt: str,
        digest_method: t.Any = hashlib.sha256,
        key_derivation: str = "hmac",
        sign: bool = True,
    ) -> None:
        self.salt = salt
        self.digest_method = digest_method
        self.key_derivation = key_derivation
        self.sign = sign
        self._cache: tuple[tuple[t.Any, ...], _SigningKeys] | None = None

    def get_signer(self, app: Flask) -> Signer | None:
        """Return an itsdangerous signer for the app's current keys, or
        ``None`` without a ``SECRET_KEY``. It makes and checks exactly the
        signatures this class does.

        itsdangerous takes the keys oldest first and signs with the last one:
        ``[*SECRET_KEY_FALLBACKS, SECRET_KEY]``, as Flask's own cookie session
        does.
        """
        keys = self._signing_keys(app)
        if keys is None:
            return None
        return Signer(
            list(reversed(keys.derived)),
            salt=self.salt,
            key_derivation="none",
            digest_method=self.digest_method,
        )

    def _signing_keys(self, app: Flask) -> _SigningKeys | None:
        """The signing keys of the app's keys, newest first; ``None`` without
        a ``SECRET_KEY``.

        Each is derived (itsdangerous's derivation with the salt) and keyed
        into an HMAC once, here, rather than on every request.
        """
        if not app.secret_key:
            return None
        keys = (*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key)
        cached = self._cache
        if cached is not None and cached[0] == keys:
            return cached[1]
        deriving = Signer(
            list(keys),
            salt=self.salt,
            key_derivation=self.key_derivation,
            digest_method=self.digest_method,
        )
        derived = tuple(deriving.derive_key(key) for key in reversed(deriving.secret_keys))
        signing = _SigningKeys(
            derived, tuple(hmac.new(key, digestmod=self.digest_method) for key in derived)
        )
        self._cache = (keys, signing)
        return signing

    def _signature(self, keyed_mac: hmac.HMAC, token: bytes) -> bytes:
        """The signature of ``token`` under the key of ``keyed_mac``, as
        itsdangerous writes it: the HMAC in URL-safe base64 without padding.
        """
        mac = keyed_mac.copy()
        mac.update(token)
        return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=")

    def warn_without_key(self, app: Flask) -> None:
        """Warn, once when kitsession is installed, if ``app`` has no
        ``SECRET_KEY`` to sign cookies with: its ``flask.session`` is then
        Flask's read-only ``NullSession``, without ``user_id`` or ``user``.
        """
        if self.sign and not app.secret_key:
            warnings.warn(
                "SECRET_KEY is not set: kitsession cannot sign session cookies, so"
                " flask.session is Flask's read-only NullSession (no user_id, no user)"
                " until it is. Set app.config['SECRET_KEY'] before init_app, or"
                " KITSESSION_SIGN_COOKIE = False to send the bare token.",
                UserWarning,
                stacklevel=3,
            )

    def can_sign(self, app: Flask) -> bool:
        """Tell whether cookies can be made: signing is off or a key is set."""
        return not self.sign or bool(app.secret_key)

    def dumps(self, app: Flask, token: str) -> str:
        """Return the cookie value for ``token``."""
        if not self.sign:
            return token
        keys = self._signing_keys(app)
        if keys is None:
            raise RuntimeError(
                "The session cookie cannot be signed because SECRET_KEY is not"
                " set. Set app.config['SECRET_KEY'] (or KITSESSION_SIGN_COOKIE ="
                " False to send the bare token)."
            )
        return f"{token}.{self._signature(keys.macs[0], token.encode('ascii')).decode('ascii')}"

    def loads(self, app: Flask, value: str) -> str | None:
        """Return the token in a cookie value, or ``None`` if the value is
        malformed, unsigned or signed with a key the app no longer has.
        """
        return self.loads_checking_key(app, value)[0]

    def loads_checking_key(self, app: Flask, value: str) -> tuple[str | None, bool]:
        """Like :meth:`loads`, and tell whether the value was signed with the
        current ``SECRET_KEY`` (``False`` for one of ``SECRET_KEY_FALLBACKS``:
        the cookie is worth signing again, before that key is removed).

        Only the one way this class writes a signature is accepted, and each
        key's is compared in constant time (:func:`hmac.compare_digest`).
        """
        if len(value) > MAX_COOKIE_VALUE_LENGTH or not value.isascii():
            return None, True
        if not self.sign:
            return (value if tokens.is_token(value) else None), True
        token, dot, signature = value.rpartition(".")
        if not dot or not tokens.is_token(token):
            return None, True
        keys = self._signing_keys(app)
        if keys is None:
            return None, True
        message, given = token.encode("ascii"), signature.encode("ascii")
        for index, keyed_mac in enumerate(keys.macs):
            if hmac.compare_digest(self._signature(keyed_mac, message), given):
                return token, index == 0
        return None, True
