"""``python -m benchmarks.http``: the absolute picture, over real HTTP.

Each stack runs under gunicorn (2 sync workers, 127.0.0.1 only); ``wrk``
(Debian package ``wrk``) sends authenticated reads for a few seconds with the
cookie of one login. Everything is bounded: wrk stops after ``--seconds``,
gunicorn is stopped after each stack.

With ``--topologies`` it measures kitsession on the topologies of
``docs/scaling.md`` side by side, in one run, under gunicorn with 4 workers:
authenticated reads and logins (``POST /login``, a new session each) on
PostgreSQL directly (with prepared statements, kitsession's default there,
and without, as behind a pooler),
through PgBouncer in transaction mode, on one Redis and on a 3-master Redis
Cluster. It starts PgBouncer, the Redis server and the cluster itself
(:mod:`benchmarks.servers`), on 127.0.0.1, and stops them at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.parse

from .http_app import FACTORIES
from .stacks import Database
from .stacks import prepare_database

STACKS = list(FACTORIES)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(port: int, timeout: float = 60) -> None:
    """Wait until gunicorn answers ``GET /anon`` (its workers have booted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/anon")
            if connection.getresponse().status == 200:
                connection.close()
                return
            connection.close()
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"gunicorn did not answer on 127.0.0.1:{port} within {timeout}s")


def log_in(port: int, user_id: int) -> str:
    """Log in over HTTP and return the Cookie header to send."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
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


#: wrk's script for logins: each request a POST of the login form, no cookie.
LOGIN_SCRIPT = """wrk.method = "POST"
wrk.body = "user_id=1"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
"""


def wrk(
    port: int,
    cookie: str | None,
    seconds: int,
    connections: int,
    *,
    path: str = "/read",
    script: str | None = None,
) -> dict[str, float]:
    """Run wrk against 127.0.0.1:``port``; return req/s, p50/p99 ms and errors.

    :param cookie: Sent with every request, if given.
    :param script: A wrk Lua script (the request's method and body).
    """
    options = ["-H", f"Cookie: {cookie}"] if cookie else []
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        if script is not None:
            lua.write(script)
            lua.flush()
            options += ["-s", lua.name]
        output = subprocess.run(
            [
                "wrk",
                "--latency",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                *options,
                f"http://127.0.0.1:{port}{path}",
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


@contextlib.contextmanager
def serve(environment: dict[str, str], workers: int) -> t.Iterator[int]:
    """Serve the benchmark app under gunicorn with ``environment``; yield its port."""
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            # no control socket: runs side by side must not share one
            "--no-control-socket",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "benchmarks.http_app:create_app()",
        ],
        env={**os.environ, **environment},
        start_new_session=True,
    )
    try:
        wait_until_up(port)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.http", description=__doc__)
    parser.add_argument("--databases", default="postgresql")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--workers", type=int, help="gunicorn workers (2 for the stacks, 4 for --topologies)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --topologies")
    parser.add_argument(
        "--topologies",
        help=f"measure these topologies instead of the stacks: {','.join(TOPOLOGIES)}",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    if args.topologies:
        names = [name.strip() for name in args.topologies.split(",") if name.strip()]
        unknown = set(names) - set(TOPOLOGIES)
        if unknown:
            parser.error(f"unknown topologies {sorted(unknown)}: choose from {TOPOLOGIES}")
        return measure_topologies(
            names, args.seconds, args.connections, args.workers or 4, args.rounds
        )
    return measure_stacks(args)


#: The topologies ``--topologies`` knows, in the order of the table.
TOPOLOGIES = [
    "floor",
    "postgresql",
    "postgresql-unprepared",
    "pgbouncer",
    "redis",
    "redis-cluster",
]


def measure_topologies(
    names: list[str], seconds: int, connections: int, workers: int, rounds: int
) -> int:
    """Print one row per topology: authenticated reads and logins, the
    median of ``rounds`` interleaved rounds (every topology's server runs
    the whole time, so a neighbour's load falls on all of them alike).
    """
    from .servers import PgBouncer
    from .servers import RedisClusterServers
    from .servers import RedisServer
    from .stacks import Database
    from .stacks import populate
    from .stacks import POSTGRESQL_URL

    results: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {"reads": [], "logins": []} for name in names
    }
    with contextlib.ExitStack() as servers:
        # PgBouncer brings the database every topology uses (users included),
        # so the direct rows read the very same tables.
        bouncer = servers.enter_context(PgBouncer(POSTGRESQL_URL, pool_size=8))
        populate(Database("postgresql", bouncer.direct_url))
        ports = {}
        for name in names:
            environment = {
                "KITSESSION_BENCH_STACK": "kitsession",
                "KITSESSION_BENCH_DATABASE_URL": bouncer.direct_url,
            }
            if name == "floor":
                # The yardstick: a bare view reading one user row (its
                # "logins" only set a cookie), to read the others against.
                environment["KITSESSION_BENCH_STACK"] = "floor"
            elif name == "postgresql-unprepared":
                environment["KITSESSION_BENCH_PREPARE_THRESHOLD"] = "none"
            elif name == "pgbouncer":
                environment["KITSESSION_BENCH_DATABASE_URL"] = bouncer.url()
            elif name == "redis":
                server = servers.enter_context(RedisServer())
                environment["KITSESSION_BENCH_STACK"] = "kitsession-redis"
                environment["KITSESSION_BENCH_REDIS_URL"] = server.url
            elif name == "redis-cluster":
                cluster = servers.enter_context(RedisClusterServers())
                environment["KITSESSION_BENCH_STACK"] = "kitsession-redis"
                environment["KITSESSION_BENCH_REDIS_URL"] = cluster.url
                environment["KITSESSION_BENCH_REDIS_CLUSTER"] = "1"
            port = servers.enter_context(serve(environment, workers))
            ports[name] = (port, log_in(port, 1))
        for _ in range(rounds):
            for name, (port, cookie) in ports.items():
                results[name]["reads"].append(wrk(port, cookie, seconds, connections))
                results[name]["logins"].append(
                    wrk(port, None, seconds, connections, path="/login", script=LOGIN_SCRIPT)
                )
    print(
        f"gunicorn, {workers} sync workers per topology; wrk -t2 -c{connections}"
        f" -d{seconds}s; median of {rounds} interleaved rounds. Reads: GET /read with one"
        " login's cookie; logins: POST /login, a new session each."
    )
    print()
    print("| topology | reads/s | read p99 ms | logins/s | login p99 ms | non-2xx |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, runs in results.items():

        def median(kind: str, key: str, runs: dict[str, list[dict[str, float]]] = runs) -> float:
            return statistics.median(run.get(key, 0.0) for run in runs[kind])

        failures = sum(run["non_2xx"] for kind in runs.values() for run in kind)
        print(
            f"| {name} | {median('reads', 'rps'):,.0f} | {median('reads', 'p99_ms'):.2f}"
            f" | {median('logins', 'rps'):,.0f} | {median('logins', 'p99_ms'):.2f}"
            f" | {failures:.0f} |",
            flush=True,
        )
    return 0


def measure_stacks(args: argparse.Namespace) -> int:
    """The stacks of ``docs/benchmarks.md``: authenticated reads."""
    print("| database | stack | req/s | p50 ms | p99 ms | non-2xx | socket errors |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        database = prepare_database(kind)
        try:
            for stack in STACKS:
                # Built once here first, so one-time set-up (Flask-Session
                # creates its table) is done before two workers race to it.
                FACTORIES[stack](Database(kind, database.url)).close()
                environment = {
                    "KITSESSION_BENCH_STACK": stack,
                    "KITSESSION_BENCH_DATABASE_URL": database.url,
                }
                try:
                    with serve(environment, args.workers or 2) as port:
                        cookie = log_in(port, 1)
                        result = wrk(port, cookie, args.seconds, args.connections)
                finally:
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
