"""Traffic for the failover tests: browsers of distinct users that log in,
read and write from threads while a test takes a server away.

Every answer is noted with its time and status; every login that answered
200 (an acknowledged session) is kept with the client that holds its
cookie, so that the test can ask afterwards whether the session survived.
Each login uses a new client, so no login replaces another session.
"""

from __future__ import annotations

import collections
import threading
import time
import typing as t
from dataclasses import dataclass
from dataclasses import field

from flask import Flask
from flask.testing import FlaskClient


@dataclass
class Acknowledged:
    """A login that answered 200: its session must exist unless lost."""

    at: float
    user_id: int
    client: FlaskClient


@dataclass
class Traffic:
    """``len(user_ids)`` browsers, one thread each, until :meth:`stop` (or
    ``max_seconds``): every round reads ``/me``, writes ``/set``, and every
    ``login_every`` rounds logs in on a new client.

    :param app: The app under test (its ``/login``, ``/me`` and ``/set`` views).
    :param user_ids: One browser per user.
    """

    app: Flask
    user_ids: list[int]
    login_every: int = 4
    pause: float = 0.005
    max_seconds: float = 90
    #: (time, status, what) of every answer.
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    acknowledged: list[Acknowledged] = field(default_factory=list)
    #: Answers that named a user other than the browser's own.
    wrong_user: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._browse, args=(user_id,), daemon=True)
            for user_id in self.user_ids
        ]

    def log_in(self, user_id: int) -> FlaskClient | None:
        """Log ``user_id`` in on a new client; note the answer."""
        client = self.app.test_client()
        response = client.post("/login", data={"user_id": str(user_id)})
        now = time.monotonic()
        with self._lock:
            self.answers.append((now, response.status_code, "login"))
            if response.status_code == 200:
                self.acknowledged.append(Acknowledged(now, user_id, client))
        return client if response.status_code == 200 else None

    def _browse(self, user_id: int) -> None:
        deadline = time.monotonic() + self.max_seconds
        client: FlaskClient | None = None
        rounds = 0
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                if client is None or rounds % self.login_every == 0:
                    client = self.log_in(user_id) or client
                rounds += 1
                if client is None:
                    time.sleep(self.pause)
                    continue
                response = client.get("/me")
                self._note(response.status_code, "read")
                if response.status_code == 200:
                    seen = (response.json or {}).get("user_id")
                    if seen not in (user_id, None):
                        with self._lock:
                            self.wrong_user.append(f"user {user_id} saw user {seen}")
                response = client.post("/set", data={"n": str(rounds)})
                self._note(response.status_code, "write")
                time.sleep(self.pause)
        except BaseException as e:  # pragma: no cover - reported by the test
            with self._lock:
                self.errors.append(e)

    def _note(self, status: int, what: str) -> None:
        with self._lock:
            self.answers.append((time.monotonic(), status, what))

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def statuses(self, since: float = 0, until: float = float("inf")) -> dict[int, int]:
        """How many answers had each status between ``since`` and ``until``."""
        with self._lock:
            counts = collections.Counter(s for at, s, _ in self.answers if since <= at < until)
        return dict(sorted(counts.items()))

    def last_failure(self) -> float | None:
        """When the last answer other than 200 came, if any."""
        with self._lock:
            failures = [at for at, status, _ in self.answers if status != 200]
        return max(failures) if failures else None

    def wait_for_recovery(self, since: float, *, quiet: float = 1.5, timeout: float = 60) -> float:
        """Wait until answers have all been 200 for ``quiet`` seconds after
        ``since``; return when the last failure came (or ``since``).
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.1)
            last = self.last_failure()
            end = since if last is None or last < since else last
            with self._lock:
                successes_after = sum(1 for at, s, _ in self.answers if at > end and s == 200)
            if time.monotonic() - end >= quiet and successes_after > 0:
                return end
        raise TimeoutError(f"the app did not recover within {timeout:.0f} s")

    def count_acknowledged(self, since: float = 0, until: float = float("inf")) -> int:
        """How many logins were acknowledged between ``since`` and ``until``."""
        return sum(since <= a.at < until for a in self.acknowledged)

    def sessions_lost(self, since: float = 0, until: float = float("inf")) -> list[Acknowledged]:
        """The sessions acknowledged between ``since`` and ``until`` that no
        longer name their user (a 503 counts as not lost: asked again later).
        """
        lost = []
        for login in [a for a in self.acknowledged if since <= a.at < until]:
            response = login.client.get("/me")
            assert response.status_code == 200, response.status_code
            seen = (response.json or {}).get("user_id")
            assert seen in (login.user_id, None), f"user {login.user_id} saw user {seen}"
            if seen is None:
                lost.append(login)
        return lost


def describe(statuses: t.Mapping[int, int]) -> str:
    return ", ".join(f"{count}×{status}" for status, count in statuses.items()) or "none"
