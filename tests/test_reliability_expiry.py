"""Expiry: the idle and absolute timeouts are decided on the server, whatever
cookie a client keeps; cleanup during traffic deletes only expired sessions.

The first test is model-based: hypothesis picks sequences of clock jumps and
requests (reads, writes), each sent with any cookie the client was ever
given; a model of the rules (docs/configuration.md: "expires_at is the idle timeout from
last_seen_at, capped by the absolute timeout from created_at"; a session
moves its last-seen time and expiry at most once per touch interval, whether
it is read or written) says what each answer must be. See docs/security.md.
"""

from __future__ import annotations

import threading
import time
import typing as t
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import session
from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st

from flask_kitsession import KitSession
from flask_kitsession import tokens
from flask_kitsession.models import utc_now
from flask_kitsession.stores.base import SessionRecord

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.backends import SQLBackend

pytestmark = pytest.mark.reliability

IDLE = timedelta(minutes=10)
ABSOLUTE = timedelta(hours=1)
TOUCH = timedelta(minutes=1)


def expiring_app(backend: Backend, clock: t.Callable[[], datetime]) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        KITSESSION_IDLE_TIMEOUT=IDLE,
        KITSESSION_ABSOLUTE_TIMEOUT=ABSOLUTE,
        KITSESSION_TOUCH_INTERVAL=TOUCH,
    )
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)
    return app


@dataclass
class Model:
    """What the server must know about one session."""

    created_at: datetime
    last_seen_at: datetime
    data: dict[str, str]

    def expires_at(self) -> datetime:
        return min(self.last_seen_at + IDLE, self.created_at + ABSOLUTE)


#: Clock jumps: around the touch interval and the idle timeout, and anything.
JUMPS = st.one_of(
    st.sampled_from([0, 1, 59, 60, 61, 299, 540, 599, 600, 601, 3599, 3600]),
    st.integers(0, 900),
)
STEPS = st.lists(
    st.tuples(JUMPS, st.sampled_from(["read", "write"]), st.integers(0, 20)),
    min_size=1,
    max_size=30,
)


def test_timeouts_follow_the_rules_whatever_cookie_is_sent(backend: Backend, clock: Clock) -> None:
    app = expiring_app(backend, clock)

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(steps=STEPS)
    def check(steps: list[tuple[int, str, int]]) -> None:
        sessions: dict[str, Model] = {}
        cookies: list[str] = []
        client = app.test_client(use_cookies=False)
        for number, (seconds, action, pick) in enumerate(steps):
            clock.advance(seconds=seconds)
            now = clock.now
            cookie = cookies[pick % len(cookies)] if cookies else None
            token = cookie.rsplit(".", 1)[0] if cookie else None
            model = sessions.get(token) if token else None
            live = model is not None and now < model.expires_at()
            headers = {"Cookie": f"session={cookie}"} if cookie else {}
            if action == "read":
                response = client.get("/get", headers=headers)
                assert response.status_code == 200
                assert response.json == (model.data if live and model else {})
                if live and model and now - model.last_seen_at >= TOUCH:
                    model.last_seen_at = now
            else:
                value = f"step {number}"
                response = client.post("/set", data={"k": value}, headers=headers)
                assert response.status_code == 200
                if live and model:
                    model.data = {**model.data, "k": value}
                    # Writes slide the expiry once per touch interval, as reads do.
                    if now - model.last_seen_at >= TOUCH:
                        model.last_seen_at = now
                    assert response.json == model.data
                else:
                    # A new session, under a new token: never the old one's.
                    assert response.json == {"k": value}
                    issued = response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
                    new_token = issued.rsplit(".", 1)[0]
                    assert new_token != token and new_token not in sessions
                    sessions[new_token] = Model(now, now, {"k": value})
                    cookies.append(issued)
            # What the store holds agrees with the model, for every session.
            for known, expected in sessions.items():
                record = backend.store.get(tokens.session_id_for(known), now)
                if now < expected.expires_at():
                    assert record is not None and record.expires_at == expected.expires_at()
                    assert record.last_seen_at == expected.last_seen_at
                else:
                    assert record is None

    check()


def test_a_save_in_flight_never_outlives_the_absolute_timeout(
    backend: Backend, clock: Clock
) -> None:
    app = expiring_app(backend, clock)

    @app.post("/slow")
    def slow() -> str:
        session.get("k")
        # The request loaded a live session; it saves after the limit.
        clock.advance(seconds=2)
        session["late"] = "write"
        return "saved"

    client = app.test_client()
    client.post("/set", data={"k": "v"})
    limit = clock.now + ABSOLUTE
    # In use all along, never idle for long...
    while clock.now + timedelta(minutes=9) < limit:
        clock.advance(minutes=9)
        assert client.get("/get").json == {"k": "v"}
    # ...and loaded a second before the limit, by a request that saves after it.
    clock.now = limit - timedelta(seconds=1)
    assert client.post("/slow").status_code == 200
    assert client.get("/get").json == {}
    for row in backend.rows():
        assert row["expires_at"] <= limit


# -- cleanup during traffic ---------------------------------------------------------


def expired_record(now: datetime, seconds_ago: int) -> SessionRecord:
    then = now - timedelta(hours=2)
    return SessionRecord(
        id=tokens.session_id_for(tokens.new_token()),
        data={"expired": True},
        user_id=None,
        created_at=then,
        updated_at=then,
        last_seen_at=then,
        expires_at=now - timedelta(seconds=seconds_ago),
    )


def test_cleanup_during_traffic_deletes_only_expired_sessions(backend: Backend) -> None:
    """Live sessions are read, touched and written while expired ones keep
    arriving and ``cleanup`` (the command, and ``purge_expired`` in small
    batches from another thread) runs: every expired session goes, every
    live one stays, with its last write.
    """
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY, KITSESSION_TOUCH_INTERVAL=timedelta(microseconds=1))
    KitSession(app, store=backend.store)
    add_views(app)
    store = backend.store
    for seconds_ago in range(1, 120):
        store.create(expired_record(utc_now(), seconds_ago))

    clients = []
    for index in range(6):
        client = app.test_client()
        assert client.post("/set", data={"client": str(index), "n": "0"}).status_code == 200
        clients.append(client)
    last_written = [0] * len(clients)
    stop = threading.Event()
    errors: list[BaseException] = []
    statuses: list[int] = []

    def traffic(index: int) -> None:
        client = clients[index]
        try:
            n = 0
            while not stop.is_set():
                n += 1
                response = client.post("/set", data={"n": str(n)})
                statuses.append(response.status_code)
                last_written[index] = n
                response = client.get("/get")
                statuses.append(response.status_code)
                assert response.json == {"client": str(index), "n": str(n)}
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    purged: list[int] = []

    def cleanup() -> None:
        try:
            for round_ in range(25):
                for seconds_ago in range(1, 15):
                    store.create(expired_record(utc_now(), seconds_ago + round_))
                purged.append(store.purge_expired(batch_size=5))
            command = ["kitsession", "cleanup", "--batch-size", "5"]
            result = app.test_cli_runner().invoke(args=command)
            assert result.exit_code == 0, result.output
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(len(clients))]
    cleaner = threading.Thread(target=cleanup)
    for thread in threads:
        thread.start()
    cleaner.start()
    cleaner.join(timeout=120)
    time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert set(statuses) == {200}

    now = utc_now()
    live = list(store.iterate(now=now))
    assert sorted(r.data["client"] for r in live) == [str(i) for i in range(len(clients))]
    for index, client in enumerate(clients):
        assert client.get("/get").json == {"client": str(index), "n": str(last_written[index])}
    if store.needs_purge:
        assert [r for r in store.iterate() if r.expires_at <= now] == []
        assert sum(purged) >= 119
    else:
        # Redis expires keys by their TTL, counted from the record's last
        # use: it has nothing to purge, and serves no expired session.
        assert all(store.get(r.id, now) is None for r in store.iterate() if r.expires_at <= now)


@pytest.mark.parametrize("sql_backend", ["postgresql", "mariadb"], indirect=True)
def test_no_request_waits_for_cleanup(sql_backend: SQLBackend) -> None:
    """Cleanup is held just before its COMMIT, with every lock it takes:
    meanwhile each live session is saved and touched, the one that expires
    first included, without waiting. Afterwards exactly the expired
    sessions are gone. (SQLite has one writer at a time: there, requests
    wait for cleanup's transaction by design.)
    """
    store = sql_backend.store
    now = utc_now()
    live = [
        SessionRecord(
            id=tokens.session_id_for(tokens.new_token()),
            data={"live": index},
            user_id=None,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(hours=1, minutes=index),
        )
        for index in range(5)
    ]
    expired = [expired_record(now, seconds_ago) for seconds_ago in range(1, 12)]
    for record in [*live, *expired]:
        store.create(record)

    holding, release = threading.Event(), threading.Event()
    purged: list[int] = []

    def cleanup() -> None:
        purged.append(store.purge_expired(batch_size=100))

    cleaner = threading.Thread(target=cleanup)

    def hold_before_commit(connection: t.Any) -> None:
        if threading.current_thread() is cleaner:
            holding.set()
            release.wait(timeout=30)

    waited: list[str] = []
    sa.event.listen(sql_backend.engine, "commit", hold_before_commit)
    try:
        cleaner.start()
        assert holding.wait(timeout=10)
        later = utc_now() + timedelta(minutes=1)
        for record in live:
            for name, write in (
                ("save", lambda r=record: store.update(replace(r, data={"saved": r.data}))),
                (
                    "touch",
                    lambda r=record: store.touch(
                        r.id, last_seen_at=later, expires_at=later + timedelta(hours=1)
                    ),
                ),
            ):
                request = threading.Thread(target=write)
                request.start()
                request.join(timeout=3)
                if request.is_alive():
                    waited.append(f"{name} of live session {record.data['live']}")
                    break
            if waited:
                break
    finally:
        release.set()
        cleaner.join(timeout=60)
        sa.event.remove(sql_backend.engine, "commit", hold_before_commit)
    assert waited == [], "requests waited for cleanup"
    assert purged == [len(expired)]
    assert sorted(r.data["saved"]["live"] for r in store.iterate()) == list(range(5))
