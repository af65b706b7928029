"""Concurrency: revocation under load, and concurrent writes to one session.

Many devices of one user hammer their sessions (writes, and reads that touch
the session every time) from threads, or from processes, while another caller
runs ``remove_all_sessions_for_user``. Afterwards no revoked session is alive
(no in-flight save or touch brought one back), every request that started
after the revocation was anonymous, and the kept session holds exactly what
its device last wrote.

Writes to one session follow one policy, *last writer wins, per request*:
each save writes the whole data the request ended with, in one atomic
statement (or script), so the stored data is always one request's complete
version, never a mix. See docs/security.md.
"""

from __future__ import annotations

import multiprocessing
import random
import threading
import time
import typing as t
from dataclasses import dataclass
from datetime import timedelta

import pytest
from flask import Flask
from flask import jsonify
from flask import request
from flask import session

from flask_kitsession import KitSession
from flask_kitsession import remove_all_sessions_for_user
from flask_kitsession import SessionStore
from flask_kitsession import tokens
from flask_kitsession.models import utc_now

from .support.apps import add_views
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.backends import StoreSpec
from .support.clients import log_in
from .support.clients import session_cookie

pytestmark = pytest.mark.reliability

#: Devices of the user; the first one keeps its session.
DEVICES = 5
#: Requests each device makes before the one in flight during the
#: revocation, and after it.
BEFORE, AFTER = 6, 12


def busy_app(store: SessionStore, hold: t.Callable[[], object] = lambda: None) -> Flask:
    """An app on the real clock whose every read touches the session (a write
    of its expiry), so touches race with the revocation too.

    :param hold: Called by a request marked ``hold`` after it has read its
        session and before it saves or touches it.
    """
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        KITSESSION_TOUCH_INTERVAL=timedelta(microseconds=1),
    )
    KitSession(app, store=store)
    add_views(app)

    def in_flight() -> None:
        if request.values.get("hold"):
            hold()
        else:
            time.sleep(random.uniform(0, 0.002))

    @app.post("/bump")
    def bump() -> t.Any:
        if session.get("user_id") is None:
            return jsonify(anonymous=True)
        in_flight()
        session["n"] = int(request.form["n"])
        return jsonify(anonymous=False, n=session["n"])

    @app.get("/peek")
    def peek() -> t.Any:
        anonymous = session.get("user_id") is None
        in_flight()
        return jsonify(anonymous=anonymous)

    return app


@dataclass
class Request:
    started: float
    ended: float
    status: int
    anonymous: bool
    n: int | None = None


def hammer(app: Flask, cookie: str, *, held_write: bool) -> list[Request]:
    """One device: alternately write a new ``n`` and read, ``BEFORE``
    requests; then one request that holds between reading its session and
    saving (``held_write``) or touching it, the revocation happening then;
    then ``AFTER`` more.
    """
    client = app.test_client(use_cookies=False)
    headers = {"Cookie": f"session={cookie}"}
    done: list[Request] = []
    n = 0
    for index in range(BEFORE + 1 + AFTER):
        held = {"hold": "1"} if index == BEFORE else {}
        write = held_write if held else index % 2 == 0
        started = time.monotonic()
        if write:
            n += 1
            response = client.post("/bump", data={"n": str(n), **held}, headers=headers)
        else:
            response = client.get("/peek", query_string=held, headers=headers)
        body = response.get_json(silent=True) or {}
        done.append(
            Request(
                started,
                time.monotonic(),
                response.status_code,
                bool(body.get("anonymous")),
                body.get("n"),
            )
        )
    return done


def check_after_revocation(
    backend: Backend,
    user_id: t.Any,
    keep: str,
    revoked_at: float,
    results: list[list[Request]],
) -> None:
    assert all(r.status == 200 for device in results for r in device), [
        r for device in results for r in device if r.status != 200
    ]
    # Only the kept session is left: nothing was brought back.
    rows = backend.rows()
    assert [row["id"] for row in rows] == [keep], rows
    kept, *revoked = results
    for device in revoked:
        late = [r for r in device if r.started > revoked_at]
        assert late and all(r.anonymous for r in late), late
    # The kept device was never signed out, and its last write is stored.
    assert not any(r.anonymous for r in kept)
    last = max(r.n for r in kept if r.n is not None)
    record = backend.store.get(keep, utc_now())
    assert record is not None
    assert record.data == {"user_id": user_id, "n": last}


def sign_in_devices(app: Flask, backend: Backend) -> tuple[t.Any, list[str]]:
    user_id = backend.add_user("busy@example.com")
    cookies = []
    for _ in range(DEVICES):
        client = app.test_client()
        log_in(client, user_id)
        cookie = session_cookie(client)
        assert cookie is not None
        cookies.append(cookie)
    return user_id, cookies


def session_id(cookie: str) -> str:
    return tokens.session_id_for(cookie.rsplit(".", 1)[0])


def test_revocation_while_every_device_is_busy(backend: Backend) -> None:
    in_flight = threading.Barrier(DEVICES + 1)
    revoked = threading.Event()

    def hold() -> None:
        in_flight.wait(timeout=60)
        revoked.wait(timeout=60)

    app = busy_app(backend.store, hold)
    user_id, cookies = sign_in_devices(app, backend)
    keep = session_id(cookies[0])
    results: list[list[Request]] = [[] for _ in cookies]
    errors: list[BaseException] = []

    def device(index: int) -> None:
        try:
            results[index] = hammer(app, cookies[index], held_write=index % 2 == 0)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)
            in_flight.abort()

    threads = [threading.Thread(target=device, args=(i,)) for i in range(DEVICES)]
    for thread in threads:
        thread.start()
    try:
        # Every device has read its session and is about to save or touch it.
        in_flight.wait(timeout=60)
        with app.app_context():
            deleted = remove_all_sessions_for_user(user_id, keep)
        revoked_at = time.monotonic()
    finally:
        revoked.set()
        for thread in threads:
            thread.join(timeout=60)
    assert errors == []
    assert deleted == DEVICES - 1
    check_after_revocation(backend, user_id, keep, revoked_at, results)


def device_process(
    spec: StoreSpec, cookie: str, held_write: bool, in_flight: t.Any, revoked: t.Any, results: t.Any
) -> None:
    """A device in a process of its own, on its own app and connections."""

    def hold() -> None:
        in_flight.wait(timeout=60)
        revoked.wait(timeout=60)

    app = busy_app(spec.open(), hold)
    done = hammer(app, cookie, held_write=held_write)
    results.put((cookie, [tuple(vars(r).values()) for r in done]))


def test_revocation_while_processes_hammer_the_sessions(
    shared_store: tuple[StoreSpec, Backend],
) -> None:
    spec, backend = shared_store
    app = busy_app(backend.store)
    user_id, cookies = sign_in_devices(app, backend)
    keep = session_id(cookies[0])
    # A fork server that has imported this module forks ready devices at
    # once; a plain fork of the (threaded) test run would not be safe.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    in_flight = context.Barrier(DEVICES + 1)
    revoked = context.Event()
    queue = context.Queue()
    processes = [
        context.Process(
            target=device_process,
            args=(spec, cookie, index % 2 == 0, in_flight, revoked, queue),
        )
        for index, cookie in enumerate(cookies)
    ]
    for process in processes:
        process.start()
    try:
        in_flight.wait(timeout=120)
        deleted = backend.store.delete_all_for_user(user_id, keep=keep)
        revoked_at = time.monotonic()
        revoked.set()
        by_cookie = dict(queue.get(timeout=120) for _ in processes)
    finally:
        revoked.set()
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():  # pragma: no cover - a stuck device
                process.kill()
    assert [process.exitcode for process in processes] == [0] * DEVICES
    assert deleted == DEVICES - 1
    results = [[Request(*values) for values in by_cookie[cookie]] for cookie in cookies]
    check_after_revocation(backend, user_id, keep, revoked_at, results)


# -- concurrent writes to one session ------------------------------------------------


def test_concurrent_writes_to_one_session_never_mix(backend: Backend) -> None:
    """Writers save complete versions of the data at once, through one
    cookie; a reader checks every version it sees. Each is whole, and the
    session ends as one writer's complete last version.
    """
    app = busy_app(backend.store)

    @app.post("/version")
    def version() -> str:
        writer, seq = request.form["writer"], int(request.form["seq"])
        session.pop("stale", None)
        for key in ("a", "b", "c"):
            session[key] = f"{writer}:{seq}"
            time.sleep(random.uniform(0, 0.0005))
        session["payload"] = [writer, seq] * 50
        return "saved"

    user_id = backend.add_user("shared@example.com")
    client = app.test_client()
    log_in(client, user_id)
    cookie = session_cookie(client)
    headers = {"Cookie": f"session={cookie}"}
    saved: set[tuple[str, int]] = set()
    seen: list[dict[str, t.Any]] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def write(writer: str) -> None:
        writer_client = app.test_client(use_cookies=False)
        try:
            for seq in range(25):
                response = writer_client.post(
                    "/version", data={"writer": writer, "seq": seq}, headers=headers
                )
                assert response.status_code == 200
                saved.add((writer, seq))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    def read() -> None:
        reader = app.test_client(use_cookies=False)
        try:
            while not stop.is_set():
                response = reader.get("/get", headers=headers)
                assert response.status_code == 200
                seen.append(response.json)  # type: ignore[arg-type]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    writers = [threading.Thread(target=write, args=(f"w{i}",)) for i in range(4)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    stop.set()
    reader.join(timeout=60)
    assert errors == []

    def whole(data: dict[str, t.Any]) -> tuple[str, int]:
        writer, seq = data["a"].split(":")
        assert data == {
            "user_id": user_id,
            "a": data["a"],
            "b": data["a"],
            "c": data["a"],
            "payload": [writer, int(seq)] * 50,
        }, data
        return writer, int(seq)

    versions = [whole(data) for data in seen if "a" in data]
    assert versions, "the reader saw no version at all"
    [row] = backend.rows()
    final = backend.store.get(row["id"], utc_now())
    assert final is not None and whole(final.data) in saved


def test_last_writer_wins_per_request(app: Flask, backend: Backend) -> None:
    """Two requests read the same session, then save one after the other:
    the session is what the later one held, whole. The earlier one's change
    to another key is gone (a counter kept in a session is not a safe place
    for concurrent increments; keep those in your own table).
    """
    both_read = threading.Barrier(2)
    first_saved = threading.Event()

    @app.post("/change")
    def change() -> str:
        key = request.form["key"]
        session.get("user_id")
        both_read.wait(timeout=10)
        session[key] = "changed"
        if key == "second":
            first_saved.wait(timeout=10)
        return key

    user_id = backend.add_user("lww@example.com")
    client = app.test_client()
    log_in(client, user_id)
    client.post("/set", data={"before": "kept"})
    cookie = session_cookie(client)
    headers = {"Cookie": f"session={cookie}"}
    statuses: dict[str, int] = {}

    def run(key: str) -> None:
        other = app.test_client(use_cookies=False)
        statuses[key] = other.post("/change", data={"key": key}, headers=headers).status_code
        if key == "first":
            first_saved.set()

    threads = [threading.Thread(target=run, args=(key,)) for key in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == {"first": 200, "second": 200}
    assert client.get("/get").json == {"user_id": user_id, "before": "kept", "second": "changed"}
