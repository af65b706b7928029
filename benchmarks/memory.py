"""``python -m benchmarks.memory``: does a worker's memory stay flat?

Runs 100,000 requests (nine authenticated reads to one write, plus a login and
a logout every hundred) through one kitsession app in this process, and reads
the process's resident set size every 10,000 requests.
"""

from __future__ import annotations

import argparse
import gc
import sys

from .scenarios import log_in
from .stacks import kitsession_sql
from .stacks import prepare_database
from .wsgi import Client


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def run(kind: str, requests: int, every: int) -> list[tuple[int, int]]:
    database = prepare_database(kind)
    stack = kitsession_sql(database)
    try:
        client = Client(stack.app.wsgi_app)
        log_in(client, 1)
        samples = []
        for n in range(1, requests + 1):
            if n % 100 == 0:
                client.post("/logout")
                log_in(client, 1)
            response = client.post("/write") if n % 10 == 0 else client.get("/read")
            if response.status != 200:
                raise AssertionError(f"request {n}: {response.status} {response.body[:200]!r}")
            if n % every == 0:
                gc.collect()
                samples.append((n, rss_kib()))
        return samples
    finally:
        stack.close()
        database.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory", description=__doc__)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    requests = 2_000 if args.smoke else args.requests
    every = requests // 10
    print(
        "| database | RSS after 10% of requests KiB | RSS at the end KiB | growth KiB | requests |"
    )
    print("|---|---:|---:|---:|---:|")
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        samples = run(kind, requests, every)
        first, last = samples[0][1], samples[-1][1]
        print(f"| {kind} | {first:,} | {last:,} | {last - first:+,} | {requests:,} |")
        print(f"{kind} samples (requests, KiB): {samples}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
