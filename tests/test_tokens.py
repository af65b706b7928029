"""Tokens and the signed cookie value."""

from __future__ import annotations

import hashlib

from flask import Flask

from flask_kitsession import tokens
from flask_kitsession.cookies import CookieSigner


def test_tokens_carry_256_random_bits() -> None:
    made = {tokens.new_token() for _ in range(1000)}
    assert len(made) == 1000
    for token in made:
        assert tokens.is_token(token)
        # 43 characters of base64 without padding: 258 bits of room, 256 used.
        assert len(token) == 43


def test_session_id_is_the_sha256_of_the_token() -> None:
    token = tokens.new_token()
    session_id = tokens.session_id_for(token)
    assert session_id == hashlib.sha256(token.encode()).hexdigest()
    assert tokens.is_session_id(session_id)
    assert not tokens.is_session_id(session_id.upper())
    assert not tokens.is_token(session_id)


def test_signer_rotation_order() -> None:
    app = Flask(__name__)
    app.secret_key = "new"
    app.config["SECRET_KEY_FALLBACKS"] = ["old"]
    signer = CookieSigner(salt="test")
    token = tokens.new_token()
    value = signer.dumps(app, token)
    assert signer.loads(app, value) == token
    old_app = Flask(__name__)
    old_app.secret_key = "old"
    assert signer.loads(old_app, CookieSigner(salt="test").dumps(app, token)) is None
    assert signer.loads(app, CookieSigner(salt="test").dumps(old_app, token)) == token
    assert signer.loads(app, CookieSigner(salt="other").dumps(app, token)) is None
