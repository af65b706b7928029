"""The benchmark harnesses run (smoke mode), so they cannot rot.

Only that they work and count right is checked here: speed is measured by
``python -m benchmarks`` itself, never asserted in tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .support.servers import IN_CI

ROOT = Path(__file__).resolve().parent.parent


def run_module(*args: str, timeout: int = 300) -> str:
    result = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_benchmark_table(postgresql_server: str) -> None:
    table = run_module("benchmarks", "--smoke")
    for stack in (
        "floor",
        "kitsession",
        "kitsession + Redis",
        "Flask-Session + Flask-Login",
        "cookie session",
    ):
        assert stack in table
    # The counts come from the driver; they are exact, so they are checked.
    for database in ("sqlite", "postgresql"):
        [line] = [
            row
            for row in table.splitlines()
            if row.startswith(f"| {database} | authenticated read | kitsession (")
        ]
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        statements, writes = cells[-3], cells[-2]
        assert (statements, writes) == ("1.0", "0.0"), line
    assert "1 / 1 / 0 ✅ | 1 / 1 / 0 ✅" in table


def test_scale_benchmark(postgresql_server: str) -> None:
    table = run_module("benchmarks.scale", "--smoke")
    cleanup_rows = [
        row
        for row in table.splitlines()
        if row.startswith(("| sqlite | 1,000 | 1,000", "| postgresql | 1,000 | 1,000"))
    ]
    assert len(cleanup_rows) == 2, table
    assert all(row.rstrip(" |").endswith("| 0") for row in cleanup_rows), table


def test_memory_benchmark(postgresql_server: str) -> None:
    table = run_module("benchmarks.memory", "--smoke")
    assert table.count("| 2,000 |") == 2, table


def test_http_benchmark(postgresql_server: str) -> None:
    if shutil.which("wrk") is None:
        if IN_CI:
            pytest.fail("wrk is missing: .ci/run installs it (apt-get install wrk)")
        pytest.skip("wrk is not installed (apt-get install wrk)")
    table = run_module("benchmarks.http", "--seconds", "1", "--connections", "2")
    rows = [row for row in table.splitlines() if row.startswith("| postgresql |")]
    assert len(rows) == 5, table
    assert all(row.endswith("| 0 | 0 |") for row in rows), table
    assert "kitsession-redis" in table


def test_redis_logins_benchmark() -> None:
    table = run_module("benchmarks.redis_logins", "--smoke")
    assert "| 100 live | 20 |" in table and "| 100 expired | 20 |" in table, table
    assert "live: touches" in table and "live: reads" in table, table
    assert "hash-max-listpack-value" in table, table


def test_sizing_benchmark(postgresql_server: str) -> None:
    table = run_module("benchmarks.sizing", "--smoke")
    assert "| pk_session |" in table and "| **all** |" in table, table


def test_http_benchmark_of_topologies(postgresql_server: str) -> None:
    if shutil.which("wrk") is None:
        if IN_CI:
            pytest.fail("wrk is missing: .ci/run installs it (apt-get install wrk)")
        pytest.skip("wrk is not installed (apt-get install wrk)")
    table = run_module(
        "benchmarks.http",
        "--topologies",
        "pgbouncer,redis",
        "--seconds",
        "1",
        "--connections",
        "2",
        "--workers",
        "2",
        "--rounds",
        "1",
    )
    rows = [row for row in table.splitlines() if row.startswith(("| pgbouncer |", "| redis |"))]
    assert len(rows) == 2, table
    assert all(row.endswith("| 0 |") for row in rows), table


def test_prepared_statements_benchmark(postgresql_server: str) -> None:
    table = run_module("benchmarks.prepared", "--smoke")
    assert "| unprepared (as behind a pooler) |" in table and "per read" in table, table


def test_instruction_count_children_serve_their_requests() -> None:
    # What valgrind runs, without valgrind (too slow for the suite): each
    # stack serves its requests, the write scenario included.
    from benchmarks import instructions

    for stack in instructions.STACKS:
        instructions.serve(stack, "read", 3)
    instructions.serve("kitsession", "write", 3)
