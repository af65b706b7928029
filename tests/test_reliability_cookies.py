"""Hostile cookies: whatever a client sends as its session cookie, it gets
its own session or a fresh anonymous one; never a 500, never someone else's.

Property-based (hypothesis), on every backend: arbitrary bytes, truncated,
spliced and re-signed tokens, oversize values, other encodings, and cookies
replayed after the session they named ended. See docs/security.md.
"""

from __future__ import annotations

import base64
import hmac
import typing as t
import urllib.parse
from datetime import timedelta

import pytest
from flask import Flask
from flask import session
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st

from flask_kitsession import KitSession
from flask_kitsession import regenerate
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import tokens
from flask_kitsession.cookies import CookieSigner

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.clients import log_in
from .support.clients import session_cookie

pytestmark = pytest.mark.reliability

#: Bounded, so the suite stays fast; no deadline (a database answers at its
#: own pace, and speed is never asserted).
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Visitor(t.NamedTuple):
    """A signed-in client: its name (kept in its session), cookie and token."""

    name: str
    cookie: str
    token: str


def sign_in(app: Flask, backend: Backend, name: str) -> Visitor:
    client = app.test_client()
    log_in(client, backend.add_user(f"{name}@example.com"))
    client.post("/set", data={"owner": name})
    cookie = session_cookie(client)
    assert cookie is not None
    return Visitor(name, cookie, cookie.rsplit(".", 1)[0])


def send(app: Flask, raw_cookie_header: bytes | str) -> tuple[int, dict[str, t.Any], str]:
    """GET /get with exactly this ``Cookie`` header, as a server hands it to
    WSGI (bytes as latin-1). Return status, session data and ``Set-Cookie``.
    """
    if isinstance(raw_cookie_header, bytes):
        raw_cookie_header = raw_cookie_header.decode("latin-1")
    client = app.test_client(use_cookies=False)
    response = client.get("/get", environ_overrides={"HTTP_COOKIE": raw_cookie_header})
    data = response.get_json(silent=True)
    return (
        response.status_code,
        data if isinstance(data, dict) else {},
        response.headers.get("Set-Cookie", ""),
    )


def check_answer(raw: str | bytes, visitors: t.Sequence[Visitor], app: Flask) -> None:
    """The property every answer has: 200, and either anonymous or the session
    of a visitor whose whole token is in what was sent.
    """
    status, data, set_cookie = send(app, raw)
    assert status == 200, (raw, status)
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    owner = data.get("owner")
    if owner is None:
        assert data == {}, (raw, data)
        # A stale cookie may be expired, never replaced by a working one.
        assert set_cookie == "" or set_cookie.startswith("session=;"), set_cookie
        return
    # The token is the credential: only a client that holds it gets its
    # session. (The signature after it may be spelled in either base64
    # alphabet; it still has to be the app's signature of that token.)
    [visitor] = [v for v in visitors if v.name == owner]
    assert visitor.token in text, f"{raw!r} was answered with {owner}'s session"


def two_visitors(app: Flask, backend: Backend) -> list[Visitor]:
    return [sign_in(app, backend, name) for name in ("ada", "bob")]


def test_each_visitor_gets_their_own_session(app: Flask, backend: Backend) -> None:
    visitors = two_visitors(app, backend)
    for visitor in visitors:
        status, data, _ = send(app, f"session={visitor.cookie}")
        assert (status, data["owner"]) == (200, visitor.name)


def test_arbitrary_bytes(app: Flask, backend: Backend) -> None:
    visitors = two_visitors(app, backend)
    before = backend.rows()

    @PROPERTY
    @given(
        value=st.binary(max_size=300),
        as_whole_header=st.booleans(),
    )
    def check(value: bytes, as_whole_header: bool) -> None:
        check_answer(value if as_whole_header else b"session=" + value, visitors, app)

    check()
    # Nothing a stranger sends writes anything.
    assert backend.rows() == before


def test_arbitrary_text_in_any_encoding(app: Flask, backend: Backend) -> None:
    visitors = two_visitors(app, backend)
    before = backend.rows()

    @PROPERTY
    @given(
        value=st.text(max_size=200),
        encoding=st.sampled_from(["utf-8", "utf-16", "utf-32", "latin-1", "cp1252", "shift_jis"]),
    )
    def check(value: str, encoding: str) -> None:
        raw = value.encode(encoding, errors="replace")
        check_answer(b"session=" + raw, visitors, app)

    check()
    assert backend.rows() == before


def cookie_mutations(visitors: t.Sequence[Visitor]) -> st.SearchStrategy[str]:
    """Cookies made from the visitors' real ones: cut, spliced, with a
    character changed, another visitor's signature, other encodings.
    """
    cookies = [v.cookie for v in visitors]
    parts = [p for v in visitors for p in v.cookie.rsplit(".", 1)]
    cookie = st.sampled_from(cookies)

    def truncated(value: str) -> st.SearchStrategy[str]:
        return st.integers(0, len(value) - 1).flatmap(
            lambda n: st.sampled_from([value[:n], value[n + 1 :]])
        )

    def changed(value: str) -> st.SearchStrategy[str]:
        return st.tuples(
            st.integers(0, len(value) - 1), st.sampled_from(BASE64_ALPHABET + ".")
        ).map(lambda change: value[: change[0]] + change[1] + value[change[0] + 1 :])

    return st.one_of(
        cookie.flatmap(truncated),
        cookie.flatmap(changed),
        # Pieces of everyone's cookies, glued in any order.
        st.lists(st.sampled_from([*parts, ".", "", " ", "=", ";"]), max_size=5).map("".join),
        cookie.map(str.upper),
        cookie.map(str.lower),
        cookie.map(lambda c: c.swapcase()),
        cookie.map(lambda c: urllib.parse.quote(c, safe="")),
        cookie.map(lambda c: base64.b64encode(c.encode()).decode()),
        cookie.map(lambda c: c + "." + c.rsplit(".", 1)[1]),
        cookie.map(lambda c: c.replace("-", "+").replace("_", "/")),
        st.tuples(cookie, st.integers(1, 5000)).map(lambda p: p[0] + "A" * p[1]),
        st.tuples(cookie, st.text(max_size=3)).map(lambda p: p[0] + p[1]),
    )


def test_truncated_spliced_and_re_encoded_cookies(app: Flask, backend: Backend) -> None:
    visitors = two_visitors(app, backend)
    before = backend.rows()

    @PROPERTY
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        value = data.draw(cookie_mutations(visitors))
        check_answer(f"session={value}", visitors, app)

    check()
    assert backend.rows() == before


def test_several_session_cookies_in_one_header(app: Flask, backend: Backend) -> None:
    visitors = two_visitors(app, backend)

    @PROPERTY
    @given(
        order=st.permutations(range(len(visitors))),
        junk=st.sampled_from(["", "session=garbage; ", "session=; ", "other=1; "]),
    )
    def check(order: list[int], junk: str) -> None:
        header = junk + "; ".join(f"session={visitors[i].cookie}" for i in order)
        check_answer(header, visitors, app)

    check()


def test_oversize_cookies(app: Flask, backend: Backend) -> None:
    visitors = two_visitors(app, backend)
    with backend.operations() as operations:
        for size in (257, 4096, 65536, 1 << 20):
            check_answer("session=" + "A" * size, visitors, app)
            check_answer(f"session={visitors[0].cookie}" + "A" * size, visitors, app)
            check_answer(f"session={visitors[0].token}{'.' * size}", visitors, app)
    # An oversize value is refused before any hashing or store access.
    assert operations == []


def test_re_signed_tokens(app: Flask, backend: Backend) -> None:
    visitors = two_visitors(app, backend)
    """Values signed with the app's own key (as if the key had leaked) still
    need a live token; any other key is refused outright.
    """
    other_key = CookieSigner(salt="flask-kitsession")
    stranger = Flask(__name__)
    stranger.secret_key = "not the app's key"
    real = app.session_interface.signer.get_signer(app)  # type: ignore[attr-defined]
    fake = other_key.get_signer(stranger)
    assert real is not None and fake is not None
    before = backend.rows()

    @PROPERTY
    @given(
        payload=st.one_of(
            st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True),
            st.sampled_from([v.token for v in visitors]).flatmap(
                lambda token: st.integers(0, 42).map(lambda n: token[:n] + token[n + 1 :])
            ),
            st.text(alphabet=BASE64_ALPHABET, max_size=60),
        ),
        with_real_key=st.booleans(),
    )
    def check(payload: str, with_real_key: bool) -> None:
        value = (real if with_real_key else fake).sign(payload).decode()
        check_answer(f"session={value}", visitors, app)

    check()
    # Another visitor's token under a stranger's key: refused too.
    for visitor in visitors:
        forged = other_key.dumps(stranger, visitor.token)
        assert send(app, f"session={forged}")[1] == {}
    assert backend.rows() == before


def test_a_chosen_token_is_never_adopted(app: Flask, backend: Backend) -> None:
    """Session fixation: a visitor arriving with a well-signed token the server
    never issued gets a session under a new token of the server's own.
    """
    signer = app.session_interface.signer  # type: ignore[attr-defined]

    @settings(PROPERTY, max_examples=20)
    @given(token=st.from_regex(r"[A-Za-z0-9_-]{43}", fullmatch=True))
    def check(token: str) -> None:
        client = app.test_client()
        client.set_cookie("session", signer.dumps(app, token))
        response = client.post("/set", data={"planted": "yes"})
        assert response.status_code == 200
        issued = session_cookie(client)
        assert issued is not None and not issued.startswith(token)
        ids = {row["id"] for row in backend.rows()}
        assert tokens.session_id_for(token) not in ids

    check()


# -- cookies replayed after their session ended ----------------------------------


def app_with_endings(backend: Backend, clock: Clock, **config: t.Any) -> Flask:
    """The test app plus views that end a session in the ways a session ends."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, TESTING=True, **config)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)

    @app.post("/rotate")
    def rotate() -> str:
        regenerate()
        return "rotated"

    @app.post("/sign-out-everywhere")
    def sign_out_everywhere() -> str:
        count = remove_all_sessions_for_user(session.user_id)  # type: ignore[attr-defined]
        return str(count)

    return app


def replay(app: Flask, backend: Backend, cookie: str, visitors: list[Visitor]) -> None:
    """Replay an old cookie: read, then write. The write starts a new session
    under a new token; the old session is neither revived nor extended (its
    row, if cleanup has not deleted it yet, stays exactly as it was).
    """
    old_id = tokens.session_id_for(cookie.rsplit(".", 1)[0])
    before = [row for row in backend.rows() if row["id"] == old_id]
    for _ in range(3):
        status, data, _ = send(app, f"session={cookie}")
        assert (status, data) == (200, {}), cookie
    client = app.test_client()
    client.set_cookie("session", cookie)
    response = client.post("/set", data={"replayed": "yes"})
    assert response.status_code == 200 and response.json == {"replayed": "yes"}
    new_cookie = session_cookie(client)
    assert new_cookie is not None and not new_cookie.startswith(cookie.rsplit(".", 1)[0])
    assert [row for row in backend.rows() if row["id"] == old_id] == before
    assert send(app, f"session={cookie}")[1] == {}
    for visitor in visitors:
        assert send(app, f"session={visitor.cookie}")[1]["owner"] == visitor.name


@pytest.mark.parametrize(
    "ending",
    [
        "logout",
        "rotation",
        "new login",
        "signed out everywhere",
        "idle timeout",
        "absolute timeout",
    ],
)
def test_replayed_cookies_of_ended_sessions(backend: Backend, clock: Clock, ending: str) -> None:
    config = {}
    if ending == "absolute timeout":
        config = {
            "KITSESSION_IDLE_TIMEOUT": timedelta(days=1),
            "KITSESSION_ABSOLUTE_TIMEOUT": timedelta(hours=2),
        }
    app = app_with_endings(backend, clock, **config)
    bystanders = [sign_in(app, backend, "bystander")]
    client = app.test_client()
    user_id = backend.add_user("eve@example.com")
    log_in(client, user_id)
    client.post("/set", data={"owner": "eve"})
    old = session_cookie(client)
    assert old is not None

    if ending == "logout":
        client.post("/logout")
    elif ending == "rotation":
        client.post("/rotate")
        assert session_cookie(client) not in (None, old)
        assert send(app, f"session={session_cookie(client)}")[1]["owner"] == "eve"
    elif ending == "new login":
        log_in(client, user_id)
        assert session_cookie(client) not in (None, old)
    elif ending == "signed out everywhere":
        client.post("/sign-out-everywhere")
    elif ending == "idle timeout":
        # The bystander keeps using their session meanwhile; it stays.
        for _ in range(4):
            clock.advance(seconds=app.permanent_session_lifetime.total_seconds() / 3)
            assert send(app, f"session={bystanders[0].cookie}")[1]["owner"] == "bystander"
    else:
        # Used every 30 minutes, and still over after two hours.
        for _ in range(4):
            clock.advance(minutes=30)
            bystander_client: FlaskClient = app.test_client()
            bystander_client.set_cookie("session", old)
            bystander_client.get("/get")
        bystanders = []
    replay(app, backend, old, bystanders)


def test_cookies_signed_only_with_a_removed_key_are_refused(app: Flask, backend: Backend) -> None:
    visitors = two_visitors(app, backend)
    app.config["SECRET_KEY"] = "the next key"
    app.config["SECRET_KEY_FALLBACKS"] = [SECRET_KEY]
    for visitor in visitors:
        assert send(app, f"session={visitor.cookie}")[1]["owner"] == visitor.name
    app.config["SECRET_KEY_FALLBACKS"] = []
    for visitor in visitors:
        replay(app, backend, visitor.cookie, [])


# -- timing-safe verification ------------------------------------------------------


def test_signatures_are_compared_in_constant_time(
    app: Flask, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every signature check goes through :func:`hmac.compare_digest`; the
    store is then asked only for the SHA-256 of the token, never the token.
    """
    visitors = two_visitors(app, backend)
    compared: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def spy(a: t.Any, b: t.Any) -> bool:
        compared.append((a, b))
        return compare_digest(a, b)

    # itsdangerous looks the function up on the module at each call.
    monkeypatch.setattr(hmac, "compare_digest", spy)
    store = app.extensions["kitsession"].store
    asked: list[str] = []
    get = store.get

    def spy_get(session_id: str, now: t.Any) -> t.Any:
        asked.append(session_id)
        return get(session_id, now)

    monkeypatch.setattr(store, "get", spy_get)

    token, signature = visitors[0].cookie.rsplit(".", 1)
    # A character in the middle: the last one of 43 also holds 4 unused bits,
    # and some changes to it decode to the very same signature.
    forged = signature[:20] + ("A" if signature[20] != "A" else "B") + signature[21:]
    assert send(app, f"session={token}.{forged}")[1] == {}
    assert len(compared) == 1 and asked == []
    assert send(app, f"session={visitors[0].cookie}")[1]["owner"] == "ada"
    assert len(compared) == 2
    assert asked == [tokens.session_id_for(token)]
