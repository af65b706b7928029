"""Database faults: an outage, a restart, connections killed by the server.

The store reaches PostgreSQL, MariaDB or Redis through a TCP proxy of the
test's own (``TCPProxy``): stopping it is an outage (connections reset, new
ones refused); dropping its connections is a restart. Only this test's
connections are affected; the shared servers are never stopped. On
PostgreSQL the test also ends its own backends from the server side
(``pg_terminate_backend``, filtered by the engine's unique application_name).

While the store is away, requests that need it get a clean 503 (through the
app's own handler), never a 500 or a traceback, and keep their cookie; once
it is back, requests succeed by themselves (no restart of the app), and
nothing stored before the fault, or acknowledged during it, is lost.
See docs/security.md.
"""

from __future__ import annotations

import threading
import time
import typing as t
from datetime import datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from flask import jsonify
from flask import session
from flask.testing import FlaskClient

from flask_kitsession import KitSession
from flask_kitsession import SQLAlchemyStore
from flask_kitsession import tokens
from flask_kitsession.models import utc_now

from .support.apps import add_views
from .support.apps import Clock
from .support.apps import SECRET_KEY
from .support.backends import Backend
from .support.clients import log_in
from .support.clients import session_cookie
from .support.faults import TCPProxy

pytestmark = pytest.mark.reliability

#: What the app's own handler for 503 answers.
UNAVAILABLE = "back soon"


def faulty_app(backend: Backend, clock: t.Callable[[], datetime] = utc_now) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY=SECRET_KEY)
    KitSession(app, store=backend.store, clock=clock)
    add_views(app)

    @app.errorhandler(503)
    def unavailable(error: Exception) -> tuple[str, int]:
        return UNAVAILABLE, 503

    @app.post("/increment")
    def increment() -> t.Any:
        session["n"] = session.get("n", 0) + 1
        return jsonify(n=session["n"])

    return app


def signed_in_clients(app: Flask, backend: Backend, count: int) -> list[FlaskClient]:
    clients = []
    for index in range(count):
        client = app.test_client()
        log_in(client, backend.add_user(f"user{len(backend.rows())}@example.com"))
        response = client.post("/set", data={"note": f"written before the fault {index}"})
        assert response.status_code == 200
        clients.append(client)
    return clients


def session_id(client: FlaskClient) -> str:
    cookie = session_cookie(client)
    assert cookie is not None
    return tokens.session_id_for(cookie.rsplit(".", 1)[0])


def terminator(backend: Backend) -> t.Callable[..., int]:
    """A function that ends, from the server's side, the PostgreSQL backends
    of the store's engine and no one else's (what a restart does to them),
    waits until they are gone unless told not to, and returns how many it
    ended.
    """
    store, admin = backend.store, getattr(backend, "engine", None)
    assert isinstance(store, SQLAlchemyStore) and isinstance(admin, sa.Engine)
    with store.engine.connect() as connection:
        name = connection.execute(sa.text("SELECT current_setting('application_name')")).scalar()
    assert name and name.startswith("kitsession-")

    def terminate(*, wait: bool = True) -> int:
        count = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
        with admin.connect() as connection:
            ended = connection.execute(
                sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": name},
            ).scalar()
            # pg_terminate_backend only signals: wait until they are gone.
            deadline = time.monotonic() + 10
            while wait:
                # Each look in a transaction of its own: the view is a snapshot.
                connection.rollback()
                if not connection.execute(count, {"name": name}).scalar():
                    break
                assert time.monotonic() < deadline, "the backends did not end"
                time.sleep(0.01)
        return int(ended or 0)

    return terminate


def test_outage_gives_a_clean_503_and_the_store_comes_back(
    proxied_backend: tuple[Backend, TCPProxy],
) -> None:
    backend, proxy = proxied_backend
    app = faulty_app(backend)
    clients = signed_in_clients(app, backend, 3)
    before = {session_cookie(c): c.get("/get").json for c in clients}
    rows = backend.rows()

    proxy.stop()
    for client in clients:
        cookie = session_cookie(client)
        for response in (client.get("/get"), client.post("/set", data={"lost": "yes"})):
            assert (response.status_code, response.text) == (503, UNAVAILABLE)
            assert "Set-Cookie" not in response.headers
        assert session_cookie(client) == cookie
    newcomer = app.test_client()
    response = newcomer.post("/set", data={"first": "visit"})
    assert (response.status_code, response.text) == (503, UNAVAILABLE)
    assert session_cookie(newcomer) is None
    # A visitor without a cookie who writes nothing does not need the store.
    assert app.test_client().get("/plain").status_code == 200
    assert backend.rows() == rows

    proxy.start()
    # Back by itself: no request fails, whatever it does first.
    response = app.test_client().post("/set", data={"first": "visit"})
    assert (response.status_code, response.json) == (200, {"first": "visit"})
    for client in clients:
        assert client.get("/get").json == before[session_cookie(client)]
        assert client.post("/set", data={"after": "yes"}).status_code == 200


def test_restart_drops_pooled_connections_and_no_request_notices(
    proxied_backend: tuple[Backend, TCPProxy], clock: Clock
) -> None:
    """Each kind of request, as the first one on connections that a restart
    broke while they sat in the pool: a read, a write of a known session, a
    new session, a login, a touch.
    """
    backend, proxy = proxied_backend
    app = faulty_app(backend, clock)
    [client] = signed_in_clients(app, backend, 1)
    user_id = client.get("/me").json["user_id"]  # type: ignore[index]

    def touch() -> t.Any:
        clock.advance(minutes=5)
        return client.get("/me")

    steps: list[tuple[str, t.Callable[[], t.Any]]] = [
        ("read", lambda: client.get("/get")),
        ("write", lambda: client.post("/set", data={"more": "data"})),
        ("new session", lambda: app.test_client().post("/set", data={"new": "one"})),
        ("login", lambda: app.test_client().post("/login", data={"user_id": str(user_id)})),
        ("touch", touch),
    ]
    for name, step in steps:
        assert proxy.drop_connections() >= 1
        response = step()
        assert response.status_code == 200, (name, response.status_code, response.text)
    [row] = [r for r in backend.rows() if r["id"] == session_id(client)]
    assert row["last_seen_at"] == clock.now


def test_restarts_during_traffic_lose_nothing(
    proxied_backend: tuple[Backend, TCPProxy],
) -> None:
    """Clients increment counters in their sessions while the store restarts
    and goes away, again and again (on PostgreSQL, its backends are also
    ended from the server's side). Every answer is a 200 or a clean 503; no
    acknowledged increment is lost; no cookie is dropped; once the store is
    back, every client's next request succeeds, and its counter is exactly
    what that request answered.
    """
    backend, proxy = proxied_backend
    app = faulty_app(backend)
    clients = signed_in_clients(app, backend, 3)
    [bystander] = signed_in_clients(app, backend, 1)
    bystander_row = [r for r in backend.rows() if r["id"] == session_id(bystander)]
    terminate = terminator(backend) if backend.name == "postgresql" else None
    cookies = [session_cookie(c) for c in clients]
    acknowledged: list[list[int]] = [[] for _ in clients]
    statuses: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic(index: int) -> None:
        client = clients[index]
        try:
            while not stop.is_set():
                response = client.post("/increment")
                statuses.append(response.status_code)
                if response.status_code == 200:
                    acknowledged[index].append(response.json["n"])  # type: ignore[index]
                else:
                    assert (response.status_code, response.text) == (503, UNAVAILABLE)
                assert session_cookie(client) == cookies[index]
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    try:
        for _ in range(3):
            time.sleep(0.15)
            proxy.drop_connections()
            if terminate is not None:
                time.sleep(0.15)
                terminate(wait=False)
            time.sleep(0.15)
            proxy.stop()
            time.sleep(0.2)
            proxy.start()
        time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert errors == []
    assert set(statuses) <= {200, 503}
    assert statuses.count(503) >= 1, "no request met the outage"
    assert statuses.count(200) >= 10 * len(clients), "too little traffic to tell"

    for index, client in enumerate(clients):
        seen = acknowledged[index]
        # Acknowledged increments are never undone: each answer is higher.
        assert seen == sorted(set(seen)), seen
        response = client.post("/increment")
        assert response.status_code == 200
        n = response.json["n"]  # type: ignore[index]
        assert n > (seen[-1] if seen else 0)
        record = backend.store.get(session_id(client), utc_now())
        assert record is not None and record.data["n"] == n
    # Written before the faults, untouched since: exactly as it was.
    assert [r for r in backend.rows() if r["id"] == session_id(bystander)] == bystander_row
    assert bystander.get("/get").json["note"] == "written before the fault 0"  # type: ignore[index]


@pytest.mark.parametrize("proxied_backend", ["postgresql"], indirect=True)
def test_every_connection_ended_by_the_server(
    proxied_backend: tuple[Backend, TCPProxy],
) -> None:
    """PostgreSQL ends the store's backends (a restart, an administrator, an
    idle timeout): once they are gone, the next read and the next write do
    not notice.
    """
    backend, proxy = proxied_backend
    app = faulty_app(backend)
    [client] = signed_in_clients(app, backend, 1)
    terminate = terminator(backend)
    ended = terminate()
    assert ended >= 1
    proxy.wait_for_server_closes(ended)
    assert client.get("/get").status_code == 200
    ended += terminate()
    proxy.wait_for_server_closes(ended)
    response = app.test_client().post("/set", data={"a": "1"})
    assert response.status_code == 200, response.text
