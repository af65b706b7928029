"""Servers the tests start: an app in a thread for a browser, an app under
gunicorn workers, the soak, and Debian's Chromium.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import typing as t
import urllib.request
from pathlib import Path

import sqlalchemy as sa

#: Debian's Chromium, driven by Playwright; tests never download a browser.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
REPOSITORY = Path(__file__).resolve().parent.parent.parent


def chromium_problem() -> str | None:
    """Why the browser tests cannot run here, or ``None`` when they can."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"Playwright is not installed ({e}); pip install -e '.[test]'"
    return None


class LocalServer:
    """A WSGI app served on 127.0.0.1 from a thread, for a browser to visit.

    Bounded like every server a test starts: it answers at most
    ``max_requests`` requests (then 503) and stops by itself after
    ``max_seconds``, whatever the test does. Every response's status is
    kept, so a test can check that nothing answered 5xx.
    """

    def __init__(self, app: t.Any, *, max_requests: int = 400, max_seconds: float = 120) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self.max_requests = max_requests
        self.statuses: list[tuple[int, str, str]] = []
        self._lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self._serve, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._timer = threading.Timer(max_seconds, self.server.shutdown)
        self._timer.daemon = True

    def _serve(self, environ: t.Any, start_response: t.Any) -> t.Any:
        with self._lock:
            too_many = len(self.statuses) >= self.max_requests
            if too_many:
                self.statuses.append((503, environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        if too_many:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"LocalServer: request limit reached"]

        def record(status: str, headers: t.Any, exc_info: t.Any = None) -> t.Any:
            with self._lock:
                self.statuses.append(
                    (int(status.split()[0]), environ["REQUEST_METHOD"], environ["PATH_INFO"])
                )
            return start_response(status, headers, exc_info)

        return self.app(environ, record)

    def errors(self) -> list[tuple[int, str, str]]:
        """The responses with a 5xx status."""
        with self._lock:
            return [s for s in self.statuses if s[0] >= 500]

    def __enter__(self) -> LocalServer:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=10)


class GunicornServer:
    """An app (the example app by default) under gunicorn with several worker
    processes, on 127.0.0.1.

    gunicorn runs under ``timeout(1)``, in its own process group, so it stops
    by itself after ``max_seconds`` even if the test run is killed; leaving
    the ``with`` block stops it sooner (SIGTERM, then SIGKILL). Its access
    log notes the worker pid of every response.

    :param directory: Where the logs go.
    :param env: Environment variables for the app (database URL, secret key).
    :param app: What gunicorn serves; its ``/`` must answer 200.
    """

    def __init__(
        self,
        directory: Path,
        env: t.Mapping[str, str],
        *,
        workers: int = 4,
        threads: int = 1,
        max_seconds: int = 100,
        app: str = "example_app:create_app()",
    ) -> None:
        self.workers = workers
        self.error_log = directory / "gunicorn-error.log"
        self.access_log = directory / "gunicorn-access.log"
        self.command = [
            "timeout",
            "--kill-after=5",
            str(max_seconds),
            sys.executable,
            "-m",
            "gunicorn",
            f"--workers={workers}",
            f"--threads={threads}",
            "--bind=127.0.0.1:0",
            "--graceful-timeout=5",
            "--timeout=30",
            # gunicorn >= 25.1 opens a control socket in $HOME by default,
            # which parallel test runs would share.
            "--no-control-socket",
            f"--error-logfile={self.error_log}",
            f"--access-logfile={self.access_log}",
            "--access-logformat=%(p)s %(s)s %(m)s %(U)s",
            "--capture-output",
            app,
        ]
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> GunicornServer:
        self.process = subprocess.Popen(
            self.command,
            cwd=REPOSITORY,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            self._wait_until_ready(deadline=time.monotonic() + 60)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, deadline: float) -> None:
        """Wait for the address and for every worker to have booted and answered."""
        assert self.process is not None
        while True:
            log = self.error_log.read_text() if self.error_log.exists() else ""
            address = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log)
            if address is not None and self._ready(address.group(1)):
                self.url = address.group(1)
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"gunicorn did not start in time:\n{log}")
            time.sleep(0.2)

    def _ready(self, url: str) -> bool:
        # A worker boots by running create_app() (migrations included); the
        # app is ready when the workers the log names have all booted.
        log = self.error_log.read_text()
        if log.count("Booting worker with pid") < self.workers:
            return False
        try:
            with urllib.request.urlopen(url + "/", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def worker_pids(self) -> set[int]:
        """The pids of every worker booted so far (a worker that died and was
        replaced shows up as an extra pid).
        """
        log = self.error_log.read_text()
        return {int(pid) for pid in re.findall(r"Booting worker with pid: (\d+)", log)}

    def error_log_problems(self) -> list[str]:
        """Lines of the error log that report an error or a traceback."""
        return [
            line
            for line in self.error_log.read_text().splitlines()
            if "[ERROR]" in line or "[CRITICAL]" in line or "Traceback" in line
        ]

    def access_log_lines(self) -> list[tuple[int, int, str, str]]:
        """(worker pid, status, method, path) of every response logged so far."""
        lines = []
        for line in self.access_log.read_text().splitlines():
            pid, status, method, path = line.split(" ", 3)
            lines.append((int(pid.strip("<>")), int(status), method, path))
        return lines


class Soak(t.NamedTuple):
    """The soak app under gunicorn, and what the test checks it with."""

    server: GunicornServer
    #: Straight to the app's schema, for the rows and the connection count.
    engine: sa.Engine
    #: The application_name of every connection the workers open.
    application_name: str
    user_ids: list[int]


def soak_seconds() -> float:
    """How long the soak runs: ``KITSESSION_SOAK_SECONDS``, 20 by default."""
    return float(os.environ.get("KITSESSION_SOAK_SECONDS", "20"))
