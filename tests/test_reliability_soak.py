"""Soak: gunicorn with 4 workers on PostgreSQL under a bounded load.

Client threads on 127.0.0.1 (stdlib ``http.client``) each keep one session
and increment its counter, one request after another, for
``KITSESSION_SOAK_SECONDS`` (20 by default; ``KITSESSION_SOAK_SECONDS=300``
for a long run). Signed-in clients now and then check their count, log
out and log in again; anonymous ones start their session with their first
increment. Meanwhile the test samples the workers' PostgreSQL connections
and their memory (RSS).

Afterwards: no response was a 5xx; every increment a client was told about
is in its session's row (no lost writes); the connections and the memory
at the end are those after the warm-up, give or take a little (flat: no
leak). The load is bounded (``CLIENTS`` threads, one request at a time
each, at most ``MAX_REQUESTS_PER_SECOND`` times the duration); gunicorn
stops itself too. The run prints a one-line summary. See docs/security.md.
"""

from __future__ import annotations

import threading
import time
import typing as t
import urllib.parse
from dataclasses import dataclass
from dataclasses import field
from http.cookies import SimpleCookie

import pytest
import sqlalchemy as sa

from flask_kitsession import tokens
from flask_kitsession.models import session_table

from .support.clients import http_request
from .support.processes import Soak
from .support.processes import soak_seconds

pytestmark = [pytest.mark.reliability, pytest.mark.soak]

#: Signed-in clients (one user each) and anonymous ones.
SIGNED_IN, ANONYMOUS = 4, 2
MAX_REQUESTS_PER_SECOND = 2000
#: A signed-in client logs out and in again every this many requests.
RELOGIN_EVERY = 300
#: Sampled once the workers have warmed up (imports, pools, caches).
WARM_UP_FRACTION = 0.25


@dataclass
class Client:
    """One browser: one session cookie, one counter."""

    port: int
    user_id: int | None
    budget: t.Callable[[], bool]
    cookie: str | None = None
    #: The counter as the server last said it, for the current session.
    n: int = 0
    #: Increments acknowledged, over all of this client's sessions.
    increments: int = 0
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def send(self, method: str, path: str, form: dict[str, str] | None = None) -> str:
        headers = {}
        if self.cookie:
            headers["Cookie"] = f"session={self.cookie}"
        response, text = http_request(
            self.port, method, path, headers=headers, form=form, timeout=30
        )
        self.requests += 1
        self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
        for header in response.headers.get_all("Set-Cookie") or []:
            morsel = SimpleCookie(header).get("session")
            if morsel is not None:
                expired = morsel["max-age"] == "0" or not morsel.value
                self.cookie = None if expired else morsel.value
        if response.status != 200:
            self.problems.append(f"{method} {path}: {response.status} {text[:200]}")
        return text

    def log_in(self) -> None:
        assert self.user_id is not None
        self.send("POST", "/login", {"user_id": str(self.user_id)})
        self.n = 0

    def run(self) -> None:
        if self.user_id is not None:
            self.log_in()
        while self.budget():
            if self.user_id is not None and self.requests % RELOGIN_EVERY == RELOGIN_EVERY - 1:
                self.check_count()
                self.send("POST", "/logout")
                self.log_in()
            elif self.requests % 10 == 9:
                self.check_count()
            else:
                answer = self.send("POST", "/increment")
                if answer != str(self.n + 1):
                    self.problems.append(f"increment answered {answer}, expected {self.n + 1}")
                if answer.isdigit():
                    self.n = int(answer)
                    self.increments += 1

    def check_count(self) -> None:
        answer = self.send("GET", "/count")
        if answer != str(self.n):
            self.problems.append(f"count answered {answer}, expected {self.n}")


@dataclass
class Sample:
    seconds: float
    connections: int
    rss_kb: dict[int, int]


def worker_rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_soak(soak: Soak, capsys: pytest.CaptureFixture[str]) -> None:
    seconds = soak_seconds()
    server = soak.server
    port = urllib.parse.urlsplit(server.url).port
    assert port is not None and server.url.startswith("http://127.0.0.1:")
    workers = server.worker_pids()
    assert len(workers) == server.workers

    started = time.monotonic()
    deadline = started + seconds
    sent = 0
    lock = threading.Lock()

    def budget() -> bool:
        nonlocal sent
        with lock:
            sent += 1
            return sent <= MAX_REQUESTS_PER_SECOND * seconds and time.monotonic() < deadline

    clients = [Client(port, user_id, budget) for user_id in soak.user_ids[:SIGNED_IN]]
    clients += [Client(port, None, budget) for _ in range(ANONYMOUS)]
    threads = [threading.Thread(target=client.run) for client in clients]
    for thread in threads:
        thread.start()

    admin = sa.create_engine(soak.engine.url, poolclass=sa.pool.NullPool)
    count = sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
    samples: list[Sample] = []
    try:
        while any(thread.is_alive() for thread in threads):
            with admin.connect() as connection:
                connections = connection.execute(count, {"name": soak.application_name}).scalar()
            samples.append(
                Sample(
                    time.monotonic() - started,
                    int(connections or 0),
                    {pid: worker_rss_kb(pid) for pid in workers},
                )
            )
            for thread in threads:
                thread.join(timeout=1 / len(threads))
    finally:
        for thread in threads:
            thread.join(timeout=60)
        admin.dispose()
    elapsed = time.monotonic() - started

    requests = sum(client.requests for client in clients)
    statuses: dict[int, int] = {}
    for client in clients:
        for status, number in client.statuses.items():
            statuses[status] = statuses.get(status, 0) + number
    errors = sum(number for status, number in statuses.items() if status >= 500)
    increments = sum(client.increments for client in clients)

    # Every increment a client was told about is in its session's row (each
    # earlier session was checked through /count before its logout).
    lost = []
    with soak.engine.connect() as connection:
        for client in clients:
            assert client.cookie is not None
            session_id = tokens.session_id_for(client.cookie.rsplit(".", 1)[0])
            data = connection.execute(
                sa.select(session_table.c.data).where(session_table.c.id == session_id)
            ).scalar()
            stored = (data or {}).get("n", 0)
            if stored != client.n:
                lost.append((client.user_id, client.n, stored))

    warm = [s for s in samples if s.seconds >= seconds * WARM_UP_FRACTION] or samples[-1:]
    first, last = warm[0], samples[-1]
    rss_start = sum(first.rss_kb.values()) / 1024
    rss_end = sum(last.rss_kb.values()) / 1024
    most_connections = max(s.connections for s in samples)
    with capsys.disabled():
        print(
            f"\nsoak: {requests} requests in {elapsed:.0f} s"
            f" ({requests / elapsed:.0f}/s) by {len(clients)} clients, {len(workers)} workers;"
            f" {errors} 5xx, {len(lost)} lost writes of {increments} increments;"
            f" PostgreSQL connections {first.connections} -> {last.connections}"
            f" (at most {most_connections}); workers' RSS {rss_start:.1f} -> {rss_end:.1f} MB"
        )

    assert [p for client in clients for p in client.problems] == []
    assert errors == 0 and set(statuses) == {200}, statuses
    assert lost == []
    assert requests >= 50 * seconds, "too little load to tell"
    # Nothing died: the same workers answered throughout, and logged no error.
    assert server.worker_pids() == workers
    assert server.error_log_problems() == []
    deadline_log = time.monotonic() + 10
    while len(server.access_log_lines()) < requests and time.monotonic() < deadline_log:
        time.sleep(0.1)
    logged = server.access_log_lines()
    assert len(logged) >= requests
    assert [line for line in logged if line[1] >= 500] == []
    # Flat: a sync worker holds one connection; none piles up over time.
    assert most_connections <= len(workers)
    assert last.connections <= first.connections
    # Flat memory: at most a little growth after the warm-up, per worker.
    for pid in workers:
        grown_kb = last.rss_kb[pid] - first.rss_kb[pid]
        assert grown_kb <= max(4096, first.rss_kb[pid] * 0.10), (pid, first.rss_kb, last.rss_kb)
