"""``python -m benchmarks``: the in-process table."""

from __future__ import annotations

import argparse
import sys
import time

from . import harness
from . import report
from . import stacks as stack_module
from .scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--databases", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql"
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (median taken)")
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="measured time per pair per round"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="a few seconds: checks the harness works"
    )
    parser.add_argument(
        "--scenarios", help="comma-separated scenario names (default: all), e.g. read,write"
    )
    parser.add_argument(
        "--stacks", help="comma-separated prefixes of stack names (default: all), e.g. raw,kit"
    )
    parser.add_argument("--markdown", help="also write the report to this file")
    parser.add_argument("--plot", help="write a PNG plot to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)

    settings = harness.Settings(rounds=args.rounds, seconds=args.seconds)
    if args.smoke:
        settings = harness.Settings(rounds=1, seconds=0.02, max_requests=20, warmup=3, counted=3)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    databases = []
    stacks: list[stack_module.Stack] = []
    started = time.perf_counter()
    try:
        for kind in [d.strip() for d in args.databases.split(",") if d.strip()]:
            database = stack_module.prepare_database(kind)
            databases.append(database)
            stacks.extend(factory(database) for factory in stack_module.SQL_STACKS)
        stacks.append(stack_module.kitsession_memory())
        if args.stacks:
            prefixes = tuple(p.strip() for p in args.stacks.split(",") if p.strip())
            for stack in [s for s in stacks if not s.name.startswith(prefixes)]:
                stack.close()
                stacks.remove(stack)
        scenarios = SCENARIOS
        if args.scenarios:
            names = {n.strip() for n in args.scenarios.split(",") if n.strip()}
            unknown = names - {s.name for s in SCENARIOS}
            if unknown:
                parser.error(f"unknown scenarios {sorted(unknown)}")
            scenarios = [s for s in SCENARIOS if s.name in names]
        results = harness.run(stacks, settings, scenarios=scenarios, log=log)
    finally:
        for stack in stacks:
            stack.close()
        for database in databases:
            database.cleanup()
    settings_line = (
        f"In-process WSGI calls; {settings.rounds} interleaved round(s) of {settings.seconds:g} s"
        f" of measured time per stack and scenario, median requests/s; latencies over all rounds;"
        " statements, writes and round trips counted at the driver"
        f" over {settings.counted} requests."
        f" Run took {time.perf_counter() - started:.0f} s."
    )
    text, met = report.render(results, title="kitsession benchmarks", settings_line=settings_line)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as out:
            out.write(text)
    if args.plot:
        report.plot(results, args.plot)
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
