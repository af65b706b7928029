"""The session cookie's value: a token, signed with the app's secret keys.

The token alone already carries 256 random bits, so the signature is a second
line of defence: a cookie that was not made with one of the app's keys is
turned away before the store is asked, and rotating ``SECRET_KEY`` (keeping the
old one in ``SECRET_KEY_FALLBACKS``) signs every session out of any client that
kept a cookie from a key since removed.
"""

from __future__ import annotations

import hashlib
import hmac
import typing as t
import warnings

from itsdangerous import BadSignature
from itsdangerous import Signer

from . import tokens

if t.TYPE_CHECKING:
    from flask import Flask

#: Longer cookie values are refused before any hashing: a signed token is 87
#: characters, and nothing a client sends makes the server work harder.
MAX_COOKIE_VALUE_LENGTH = 256


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
        self._cache: tuple[tuple[t.Any, ...], Signer] | None = None

    def get_signer(self, app: Flask) -> Signer | None:
        """Return the signer for the app's current keys, or ``None`` without a
        ``SECRET_KEY``.

        itsdangerous takes the keys oldest first and signs with the last one:
        ``[*SECRET_KEY_FALLBACKS, SECRET_KEY]``, as Flask's own cookie session
        does.
        """
        if not app.secret_key:
            return None
        keys = (*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key)
        cached = self._cache
        if cached is not None and cached[0] == keys:
            return cached[1]
        # Derive each signing key once, here, rather than on every request:
        # a signer given the derived keys with key_derivation="none" makes and
        # checks exactly the signatures the original derivation would.
        deriving = Signer(
            list(keys),
            salt=self.salt,
            key_derivation=self.key_derivation,
            digest_method=self.digest_method,
        )
        signer = Signer(
            [deriving.derive_key(key) for key in deriving.secret_keys],
            salt=self.salt,
            key_derivation="none",
            digest_method=self.digest_method,
        )
        self._cache = (keys, signer)
        return signer

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
        signer = self.get_signer(app)
        if signer is None:
            raise RuntimeError(
                "The session cookie cannot be signed because SECRET_KEY is not"
                " set. Set app.config['SECRET_KEY'] (or KITSESSION_SIGN_COOKIE ="
                " False to send the bare token)."
            )
        return signer.sign(token).decode("ascii")

    def loads(self, app: Flask, value: str) -> str | None:
        """Return the token in a cookie value, or ``None`` if the value is
        malformed, unsigned or signed with a key the app no longer has.
        """
        return self.loads_checking_key(app, value)[0]

    def loads_checking_key(self, app: Flask, value: str) -> tuple[str | None, bool]:
        """Like :meth:`loads`, and tell whether the value was signed with the
        current ``SECRET_KEY`` (``False`` for one of ``SECRET_KEY_FALLBACKS``:
        the cookie is worth signing again, before that key is removed).
        """
        if len(value) > MAX_COOKIE_VALUE_LENGTH or not value.isascii():
            return None, True
        if not self.sign:
            return (value if tokens.is_token(value) else None), True
        signer = self.get_signer(app)
        if signer is None:
            return None, True
        try:
            token = signer.unsign(value).decode("ascii")
        except BadSignature:
            return None, True
        if not tokens.is_token(token):
            return None, True
        current = True
        if len(signer.secret_keys) > 1:
            # One more HMAC, only while old keys are kept for rotation.
            signature = value.rsplit(".", 1)[1].encode("ascii")
            current = hmac.compare_digest(signature, signer.get_signature(token))
        return token, current
