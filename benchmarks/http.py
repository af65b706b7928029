"""``python -m benchmarks.http``: the absolute picture, over real HTTP.

Each stack runs under gunicorn (2 sync workers, 127.0.0.1 only); ``wrk``
(Debian package ``wrk``) sends authenticated reads for a few seconds with the
cookie of one login. Everything is bounded: wrk stops after ``--seconds``,
gunicorn is stopped after each stack.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse

from .http_app import FACTORIES
from .stacks import Database
from .stacks import prepare_database

STACKS = list(FACTORIES)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"gunicorn did not listen on 127.0.0.1:{port} within {timeout}s")


def log_in(port: int, user_id: int) -> str:
    """Log in over HTTP and return the Cookie header to send."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = urllib.parse.urlencode({"user_id": str(user_id)})
    connection.request(
        "POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise AssertionError(f"login answered {response.status}")
    cookies = [
        value.split(";", 1)[0]
        for name, value in response.getheaders()
        if name.lower() == "set-cookie"
    ]
    connection.close()
    return "; ".join(cookies)


def wrk(port: int, cookie: str, seconds: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        [
            "wrk",
            "--latency",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-H",
            f"Cookie: {cookie}",
            f"http://127.0.0.1:{port}/read",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    for percentile in ("50", "99"):
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)", output, re.MULTILINE)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[f"p{percentile}_ms"] = (
                value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
            )
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["non_2xx"] = float(errors.group(1)) if errors else 0.0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result["socket_errors"] = (
        float(sum(int(g) for g in socket_errors.groups())) if socket_errors else 0.0
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--databases", default="postgresql")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    print("| database | stack | req/s | p50 ms | p99 ms | non-2xx | socket errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        database = prepare_database(kind)
        try:
            for stack in STACKS:
                # Built once here first, so one-time set-up (Flask-Session
                # creates its table) is done before two workers race to it.
                FACTORIES[stack](Database(kind, database.url)).close()
                port = free_port()
                environment = {
                    **os.environ,
                    "KITSESSION_BENCH_STACK": stack,
                    "KITSESSION_BENCH_DATABASE_URL": database.url,
                }
                server = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        # no control socket: runs side by side must not share one
                        "--no-control-socket",
                        "-w",
                        str(args.workers),
                        "-b",
                        f"127.0.0.1:{port}",
                        "--log-level",
                        "warning",
                        "benchmarks.http_app:create_app()",
                    ],
                    env=environment,
                    start_new_session=True,
                )
                try:
                    wait_until_up(port)
                    cookie = log_in(port, 1)
                    result = wrk(port, cookie, args.seconds, args.connections)
                finally:
                    os.killpg(server.pid, signal.SIGTERM)
                    try:
                        server.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        os.killpg(server.pid, signal.SIGKILL)
                        server.wait()
                    # Whatever the stack keeps outside the database (Redis keys) goes.
                    FACTORIES[stack](Database(kind, database.url)).close()
                print(
                    f"| {kind} | {stack} | {result['rps']:,.0f} | {result.get('p50_ms', 0):.2f}"
                    f" | {result.get('p99_ms', 0):.2f} | {result['non_2xx']:.0f}"
                    f" | {result['socket_errors']:.0f} |",
                    flush=True,
                )
        finally:
            database.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
