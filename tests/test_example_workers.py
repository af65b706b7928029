"""The example app under gunicorn with 4 worker processes, on PostgreSQL.

A scripted client (stdlib ``http.client``, 127.0.0.1 only) registers
``USERS`` users through the app's forms and logs each in on ``DEVICES``
devices, every device with a cookie of its own. Then, with the devices
working concurrently so that requests spread over the workers:

1. every device keeps asking for pages until every worker has answered it
   as signed in: a session made by one worker is seen by all of them;
2. one device of each user signs out all its other devices;
3. every revoked device replays its old cookie until every worker has
   answered it with the logged-out page (and told it to drop the cookie),
   while the device that stayed keeps being signed in on every worker.

Every response is checked. The client is bounded (``MAX_REQUESTS`` requests,
``MAX_SECONDS`` seconds) and gunicorn stops itself too (see
``GunicornServer``). The run prints a one-line summary.
"""

from __future__ import annotations

import functools
import queue
import re
import threading
import time
import typing as t
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from http.cookies import SimpleCookie

import pytest

from .support.clients import http_request
from .support.processes import GunicornServer

pytestmark = pytest.mark.workers

USERS = 6
DEVICES = 3
#: Concurrent devices: enough that busy workers leave requests to the others
#: (one client at a time is always answered by the same idle worker).
THREADS = 8
#: How often one device may ask before every worker must have answered it.
MAX_VISITS = 40
MAX_REQUESTS = 4000
MAX_SECONDS = 90
PASSWORD = "correct horse battery"
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15"
    " (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36",
]


@dataclass
class Reply:
    status: int
    body: str
    worker: int
    location: str | None
    #: The session cookie this response set: a value, "" if it expired it,
    #: ``None`` if it left it alone.
    cookie: str | None


class Client:
    """Sends every request of the run, within its bounds, and counts them."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname == "127.0.0.1" and parts.port is not None
        self.port = parts.port
        self.deadline = time.monotonic() + MAX_SECONDS
        self.requests = 0
        self.by_worker: dict[int, int] = {}
        self._lock = threading.Lock()

    def send(
        self,
        method: str,
        path: str,
        *,
        cookie: str | None,
        user_agent: str,
        form: dict[str, str] | None = None,
    ) -> Reply:
        with self._lock:
            self.requests += 1
            if self.requests > MAX_REQUESTS:
                raise RuntimeError(f"more than {MAX_REQUESTS} requests: the client stops")
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"the run took more than {MAX_SECONDS} s: the client stops")
        headers = {"User-Agent": user_agent}
        if cookie:
            headers["Cookie"] = f"session={cookie}"
        response, text = http_request(self.port, method, path, headers=headers, form=form)
        worker = int(response.headers["X-Worker-Pid"])
        with self._lock:
            self.by_worker[worker] = self.by_worker.get(worker, 0) + 1
        return Reply(
            response.status,
            text,
            worker,
            response.headers.get("Location"),
            _session_cookie(response.headers.get_all("Set-Cookie") or []),
        )


def _session_cookie(headers: list[str]) -> str | None:
    value = None
    for header in headers:
        morsel = SimpleCookie(header).get("session")
        if morsel is not None:
            value = "" if morsel["max-age"] == "0" or not morsel.value else morsel.value
    return value


@dataclass
class Device:
    """One browser of one user: its own cookie jar (of one cookie)."""

    client: Client
    email: str
    user_agent: str
    cookie: str | None = None
    session_id: str | None = None
    #: The workers that answered it, and how often it was visited, in a phase.
    workers: set[int] = field(default_factory=set)
    visits: int = 0

    def send(self, method: str, path: str, form: dict[str, str] | None = None) -> Reply:
        reply = self.client.send(
            method, path, cookie=self.cookie, user_agent=self.user_agent, form=form
        )
        assert reply.status < 500, (method, path, reply.status, reply.body[:2000])
        if reply.cookie is not None:
            self.cookie = reply.cookie or None
        return reply

    def form_token(self, path: str) -> str:
        reply = self.send("GET", path)
        assert reply.status == 200, (path, reply.status)
        match = re.search(r'name="csrf_token" value="([^"]+)"', reply.body)
        assert match is not None, reply.body
        return match.group(1)


def register(device: Device) -> None:
    token = device.form_token("/register")
    form = {"email": device.email, "password": PASSWORD, "csrf_token": token}
    reply = device.send("POST", "/register", form)
    assert reply.status == 302 and reply.location is not None
    assert reply.location.startswith("/login"), reply.location


def log_in(device: Device) -> None:
    token = device.form_token("/login")
    form = {"email": device.email, "password": PASSWORD, "csrf_token": token}
    reply = device.send("POST", "/login", form)
    assert reply.status == 302 and reply.location == "/", (reply.status, reply.body[:500])
    assert device.cookie, "a login sets the session cookie"


def device_ids(page: str) -> list[str]:
    return re.findall(r'data-session-id="([0-9a-f]{64})"', page)


def current_id(page: str) -> str:
    match = re.search(r'<li class="device current" data-session-id="([0-9a-f]{64})"', page)
    assert match is not None, page
    return match.group(1)


def check_signed_in(device: Device, devices: int) -> set[int]:
    """One visit of a signed-in device: its home page and its devices page.

    :return: The workers that answered.
    """
    home = device.send("GET", "/")
    assert home.status == 200 and f"Hello, {device.email}" in home.body, home.body[:2000]
    page = device.send("GET", "/devices")
    assert page.status == 200, page.status
    assert len(device_ids(page.body)) == devices, page.body
    assert page.body.count("This device") == 1
    assert current_id(page.body) == device.session_id
    return {home.worker, page.worker}


def check_revoked(device: Device, cookie: str) -> set[int]:
    """One visit of a revoked device that keeps sending its old cookie.

    :return: The workers that answered.
    """
    device.cookie = cookie
    home = device.send("GET", "/")
    assert home.status == 200 and 'id="logged-out"' in home.body, home.body[:2000]
    assert home.cookie == "", "the stale cookie is expired"
    device.cookie = cookie
    page = device.send("GET", "/devices")
    assert page.status == 302 and page.location == "/login", (page.status, page.location)
    return {home.worker, page.worker}


Visit = t.Callable[[], set[int]]


def until_every_worker_answers(jobs: t.Sequence[tuple[Device, Visit]], workers: set[int]) -> None:
    """Visit the devices round-robin from ``THREADS`` threads, until every
    device has been answered by every worker.

    A device is visited by one thread at a time, and stays in the rotation
    until all are done, so requests stay concurrent and keep spreading over
    the workers. A device that ``MAX_VISITS`` visits have not shown to every
    worker fails the test.
    """
    rotation: queue.Queue[tuple[Device, Visit]] = queue.Queue()
    for device, visit in jobs:
        device.workers, device.visits = set(), 0
        rotation.put((device, visit))
    stop = threading.Event()
    lock = threading.Lock()

    def all_done() -> bool:
        return all(device.workers >= workers for device, _ in jobs)

    def run() -> None:
        try:
            while not stop.is_set():
                try:
                    device, visit = rotation.get(timeout=0.5)
                except queue.Empty:
                    continue
                answered = visit()
                with lock:
                    device.workers |= answered
                    device.visits += 1
                    if all_done() or (device.visits >= MAX_VISITS and device.workers < workers):
                        stop.set()
                rotation.put((device, visit))
        except BaseException:
            stop.set()
            raise

    with ThreadPoolExecutor(THREADS) as pool:
        for future in [pool.submit(run) for _ in range(THREADS)]:
            future.result(timeout=MAX_SECONDS)
    missing = {f"{d.email} ({d.user_agent[:30]})": workers - d.workers for d, _ in jobs}
    assert all_done(), {device: pids for device, pids in missing.items() if pids}


def test_sessions_across_workers(
    example_workers: GunicornServer, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    client = Client(example_workers.url)
    workers = example_workers.worker_pids()
    assert len(workers) == 4

    users = [
        [Device(client, f"user{u}@example.com", AGENTS[d]) for d in range(DEVICES)]
        for u in range(USERS)
    ]
    devices = [device for user in users for device in user]
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(register, [user[0] for user in users]))
        list(pool.map(log_in, devices))
    for device in devices:
        device.session_id = current_id(device.send("GET", "/devices").body)
    assert len({device.session_id for device in devices}) == USERS * DEVICES

    # 1. A session made by one worker is signed in on every worker.
    until_every_worker_answers(
        [(d, functools.partial(check_signed_in, d, DEVICES)) for d in devices], workers
    )

    # 2. One device of each user signs out all the others.
    open_forms = {id(device): device.form_token("/devices") for device in devices}
    revoked: list[tuple[Device, str]] = []
    for keeper, *others in users:
        form = {"csrf_token": open_forms[id(keeper)]}
        reply = keeper.send("POST", "/devices/sign-out-others", form)
        assert reply.status == 302 and reply.location == "/devices"
        page = keeper.send("GET", "/devices").body
        assert f"Signed out {DEVICES - 1} other devices." in page
        assert device_ids(page) == [keeper.session_id]
        revoked += [(device, t.cast(str, device.cookie)) for device in others]

    # The forms a revoked device still shows do nothing.
    for device, cookie in revoked:
        form = {"csrf_token": open_forms[id(device)]}
        reply = device.send("POST", "/devices/sign-out-others", form)
        assert reply.status == 400 and "The form expired" in reply.body
        device.cookie = cookie

    # 3. Revoked everywhere; the keepers stay signed in everywhere.
    keepers = [user[0] for user in users]
    until_every_worker_answers(
        [(d, functools.partial(check_revoked, d, c)) for d, c in revoked]
        + [(d, functools.partial(check_signed_in, d, 1)) for d in keepers],
        workers,
    )

    # Nothing errored, no worker died, every request is in the access log.
    deadline = time.monotonic() + 5
    while len(example_workers.access_log_lines()) < client.requests and time.monotonic() < deadline:
        time.sleep(0.1)
    logged = example_workers.access_log_lines()
    assert len(logged) >= client.requests
    assert [line for line in logged if line[1] >= 500] == []
    assert example_workers.error_log_problems() == []
    assert example_workers.worker_pids() == workers
    assert set(client.by_worker) == workers

    elapsed = time.monotonic() - started
    spread = ", ".join(f"{count}" for count in sorted(client.by_worker.values(), reverse=True))
    with capsys.disabled():
        print(
            f"\nmulti-worker: {USERS} users x {DEVICES} devices, {client.requests} requests,"
            f" {len(client.by_worker)} workers answered ({spread} requests each),"
            f" {len(revoked)} sessions revoked and refused by every worker, 0 errors,"
            f" {elapsed:.1f} s"
        )
