"""``python -m benchmarks.instructions``: CPU instructions per request, counted
by valgrind, which a busy machine does not change.

Each stack serves the same ``/read`` (or ``/write``) requests in process, on
a SQLite file (whose work runs in the process too), under ``valgrind
--tool=callgrind``; the count is the difference between a run of ``--many``
requests and one of ``--few``, divided by the difference, so start-up and
imports cancel out. Needs Debian's ``valgrind``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

from . import stacks as stack_module
from .scenarios import log_in
from .wsgi import Client

STACKS = {
    "raw": stack_module.raw_floor,
    "floor": stack_module.floor,
    "kitsession": stack_module.kitsession_sql,
}


def serve(stack_name: str, scenario: str, requests: int) -> None:
    """Serve ``requests`` requests of ``scenario`` (after a warm-up)."""
    database = stack_module.prepare_database("sqlite")
    stack = STACKS[stack_name](database)
    try:
        client = Client(stack.app)
        if stack_name == "kitsession":
            log_in(client, stack_module.USER_ID)
        path = "/read" if scenario == "read" else "/write"
        for _ in range(300 + requests):
            if scenario == "read":
                client.get(path)
            else:
                client.post(path, {})
    finally:
        stack.close()
        database.cleanup()


def count(stack_name: str, scenario: str, requests: int) -> int:
    """Instructions of one child process serving ``requests`` requests."""
    environment = {**os.environ, "PYTHONHASHSEED": "0"}
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "benchmarks.instructions",
            "--child",
            stack_name,
            scenario,
            str(requests),
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=1800,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"valgrind printed no count:\n{result.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.instructions", description=__doc__)
    parser.add_argument("--child", nargs=3, metavar=("STACK", "SCENARIO", "REQUESTS"))
    parser.add_argument("--stacks", default="raw,floor,kitsession")
    parser.add_argument("--scenarios", default="read")
    parser.add_argument("--few", type=int, default=500)
    parser.add_argument("--many", type=int, default=2500)
    args = parser.parse_args(argv)
    if args.child:
        stack_name, scenario, requests = args.child
        serve(stack_name, scenario, int(requests))
        return 0
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    print("| stack | scenario | instructions per request |")
    print("|---|---|---:|")
    for scenario in args.scenarios.split(","):
        for stack_name in args.stacks.split(","):
            if stack_name != "kitsession" and scenario != "read":
                continue
            few = count(stack_name, scenario, args.few)
            many = count(stack_name, scenario, args.many)
            per_request = (many - few) // (args.many - args.few)
            print(f"| {stack_name} | {scenario} | {per_request:,} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
