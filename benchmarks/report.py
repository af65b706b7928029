"""The markdown table, the targets, the machine, and the plot."""

from __future__ import annotations

import os
import platform
import sqlite3
import typing as t
from importlib import metadata

from .harness import Result
from .scenarios import SCENARIOS

FLOOR_SHARE = 0.8
PEER_MULTIPLE = 3.0
WRITE_ROUND_TRIPS = 2


def _find(results: list[Result], stack_prefix: str, database: str, scenario: str) -> Result | None:
    for result in results:
        if (
            result.stack.startswith(stack_prefix)
            and result.database == database
            and result.scenario == scenario
        ):
            return result
    return None


def _number(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def table(results: list[Result]) -> str:
    """One markdown table for all results, by database, scenario and stack."""
    lines = [
        "| database | scenario | stack | req/s | × floor | × raw floor | p50 µs | p99 µs"
        " | statements | writes | round trips |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {s.name: s.label for s in SCENARIOS}
    order = {s.name: i for i, s in enumerate(SCENARIOS)}
    for result in sorted(results, key=lambda r: (r.database, order[r.scenario])):
        floor = _find(results, "floor", result.database, result.scenario)
        share = f"{result.rps / floor.rps:.2f}×" if floor is not None and floor.rps else "–"
        raw = _find(results, "raw floor", result.database, result.scenario)
        raw_share = f"{result.rps / raw.rps:.2f}×" if raw is not None and raw.rps else "–"
        counts = result.counts
        lines.append(
            f"| {result.database} | {labels[result.scenario]} | {result.stack}"
            f" | {_number(result.rps)} | {share} | {raw_share}"
            f" | {_number(result.percentile_us(0.5))} | {_number(result.percentile_us(0.99))}"
            f" | {_number(counts.statements if counts else None, 1)}"
            f" | {_number(counts.writes if counts else None, 1)}"
            f" | {_number(counts.round_trips if counts else None, 1)} |"
        )
    return "\n".join(lines)


def targets(results: list[Result]) -> tuple[str, bool]:
    """The issue's targets, each met or not, and whether all are."""
    rows = [
        "| target | " + " | ".join(_databases(results)) + " |",
        "|---|" + "---|" * len(_databases(results)),
    ]
    all_met = True

    def mark(ok: bool) -> str:
        nonlocal all_met
        all_met &= ok
        return "✅" if ok else "❌"

    cells: dict[str, list[str]] = {
        "authenticated read: 1 statement, 1 round trip, 0 writes": [],
        f"authenticated read ≥ {FLOOR_SHARE}× the floor": [],
        f"authenticated read ≥ {FLOOR_SHARE}× the raw DBAPI floor": [],
        f"authenticated read ≥ {PEER_MULTIPLE:g}× Flask-Session + Flask-Login": [],
        f"authenticated write ≤ {WRITE_ROUND_TRIPS} round trips": [],
    }
    keys = list(cells)
    for database in _databases(results):
        read = _find(results, "kitsession", database, "read")
        floor = _find(results, "floor", database, "read")
        raw = _find(results, "raw floor", database, "read")
        peer = _find(results, "Flask-Session", database, "read")
        write = _find(results, "kitsession", database, "write")
        if read is None or read.counts is None:
            for key in keys:
                cells[key].append("–")
            continue
        c = read.counts
        trips = c.round_trips if c.round_trips is not None else c.statements
        cells[keys[0]].append(
            f"{c.statements:g} / {trips:g} / {c.writes:g}"
            f" {mark(c.statements == 1 and trips == 1 and c.writes == 0)}"
        )
        if floor is not None and floor.rps:
            share = read.rps / floor.rps
            cells[keys[1]].append(f"{share:.2f}× {mark(share >= FLOOR_SHARE)}")
        else:
            cells[keys[1]].append("–")
        if raw is not None and raw.rps:
            share = read.rps / raw.rps
            cells[keys[2]].append(f"{share:.2f}× {mark(share >= FLOOR_SHARE)}")
        else:
            cells[keys[2]].append("–")
        if peer is not None and peer.rps:
            multiple = read.rps / peer.rps
            cells[keys[3]].append(f"{multiple:.1f}× {mark(multiple >= PEER_MULTIPLE)}")
        else:
            cells[keys[3]].append("–")
        if write is not None and write.counts is not None:
            w = write.counts
            trips = w.round_trips if w.round_trips is not None else w.statements
            cells[keys[4]].append(f"{trips:g} {mark(trips <= WRITE_ROUND_TRIPS)}")
        else:
            cells[keys[4]].append("–")
    for key in keys:
        rows.append(f"| {key} | " + " | ".join(cells[key]) + " |")
    return "\n".join(rows), all_met


def _databases(results: list[Result]) -> list[str]:
    return sorted({r.database for r in results if r.database != "memory"})


def machine() -> str:
    """Where the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = []
    for package in (
        "flask",
        "sqlalchemy",
        "psycopg",
        "flask-session",
        "flask-login",
        "flask-sqlalchemy",
    ):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()};"
        f" SQLite {sqlite3.sqlite_version}; {', '.join(versions)}"
    )


def plot(results: list[Result], path: str) -> None:
    """A PNG of requests/s by scenario and stack, one panel per database."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    databases = sorted({r.database for r in results})
    scenario_names = [s.name for s in SCENARIOS]
    figure, axes = plt.subplots(
        len(databases), 1, figsize=(11, 3.6 * len(databases)), squeeze=False
    )
    for axis, database in zip(axes[:, 0], databases, strict=True):
        here = [r for r in results if r.database == database]
        stacks = list(dict.fromkeys(r.stack for r in here))
        width = 0.8 / max(len(stacks), 1)
        for i, stack in enumerate(stacks):
            values = []
            for scenario in scenario_names:
                found = next((r for r in here if r.stack == stack and r.scenario == scenario), None)
                values.append(found.rps if found else 0)
            positions = [
                n + (i - (len(stacks) - 1) / 2) * width for n in range(len(scenario_names))
            ]
            axis.bar(positions, values, width, label=stack)
        axis.set_xticks(range(len(scenario_names)), [s.label for s in SCENARIOS], fontsize=8)
        axis.set_ylabel("requests / s")
        axis.set_title(database)
        axis.legend(fontsize=7, loc="upper right")
        axis.grid(axis="y", alpha=0.3)
    figure.suptitle("In-process WSGI requests per second (higher is better)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def render(results: list[Result], *, title: str, settings_line: str) -> tuple[str, bool]:
    target_table, met = targets(results)
    text = "\n\n".join(
        [
            f"## {title}",
            f"Machine: {machine()}.",
            settings_line,
            "### Targets",
            target_table,
            "### All scenarios",
            table(results),
        ]
    )
    return text + "\n", met


Renderer = t.Callable[[list[Result]], str]
