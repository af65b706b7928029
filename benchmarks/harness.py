"""Measure: interleaved timed rounds, and a counting pass at the driver."""

from __future__ import annotations

import contextlib
import random
import statistics
import time
import typing as t
from dataclasses import dataclass
from dataclasses import field

from .queries import QueryRecorder
from .scenarios import Runner
from .scenarios import Scenario
from .scenarios import SCENARIOS
from .stacks import Stack


@dataclass
class Counts:
    """What one request costs at the database, averaged over the counted requests."""

    statements: float
    writes: float
    round_trips: float | None
    example: list[str]


@dataclass
class Result:
    stack: str
    database: str
    scenario: str
    rounds: list[float] = field(default_factory=list)  # requests/s of each round
    latencies_ns: list[int] = field(default_factory=list)
    counts: Counts | None = None

    @property
    def rps(self) -> float:
        return statistics.median(self.rounds) if self.rounds else 0.0

    def percentile_us(self, q: float) -> float:
        if not self.latencies_ns:
            return 0.0
        ordered = sorted(self.latencies_ns)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


@dataclass
class Settings:
    rounds: int = 5
    seconds: float = 1.0
    max_requests: int = 100_000
    warmup: int = 200
    counted: int = 20


def time_once(runner: Runner, settings: Settings, result: Result) -> None:
    """One timed round: requests until ``seconds`` of measured time."""
    for _ in range(settings.warmup):
        runner.setup()
        runner.check(runner.run())
    budget = int(settings.seconds * 1e9)
    spent = 0
    count = 0
    perf = time.perf_counter_ns
    latencies = result.latencies_ns
    while spent < budget and count < settings.max_requests:
        runner.setup()
        start = perf()
        response = runner.run()
        elapsed = perf() - start
        runner.check(response)
        spent += elapsed
        latencies.append(elapsed)
        count += 1
    result.rounds.append(count / (spent / 1e9))


def count_once(runner: Runner, settings: Settings) -> Counts:
    """Run ``counted`` requests with a QueryRecorder on each of the stack's engines."""
    statements = writes = 0
    round_trips: int | None = (
        0 if any(e.dialect.name == "postgresql" for e in runner.stack.engines) else None
    )
    example: list[str] = []
    for _ in range(10):
        runner.setup()
        runner.check(runner.run())
    redis_commands = 0
    for n in range(settings.counted):
        runner.setup()
        recorders = [QueryRecorder(engine) for engine in runner.stack.engines]
        for recorder in recorders:
            recorder.__enter__()
        try:
            with _counting_redis(runner.stack.redis) as counted_commands:
                runner.check(runner.run())
            redis_commands += counted_commands[0]
        finally:
            for recorder in recorders:
                recorder.__exit__(None, None, None)
        for recorder in recorders:
            statements += len(recorder.statements)
            writes += len(
                [
                    s
                    for s in recorder.statements
                    if s.upper().startswith(("INSERT", "UPDATE", "DELETE"))
                ]
            )
            if round_trips is not None and recorder.kind == "psycopg":
                round_trips += recorder.round_trips
            if n == settings.counted - 1:
                example.extend(recorder.statements)
    counted = settings.counted
    if runner.stack.redis is not None:
        # Each Redis command (a script run counts once) is a round trip too.
        round_trips = (round_trips or 0) + redis_commands
    return Counts(
        statements / counted,
        writes / counted,
        None if round_trips is None else round_trips / counted,
        example,
    )


@contextlib.contextmanager
def _counting_redis(client: t.Any) -> t.Iterator[list[int]]:
    """Count the commands a redis-py client sends (one round trip each)."""
    count = [0]
    if client is None:
        yield count
        return
    original = client.execute_command

    def execute_command(*args: t.Any, **kwargs: t.Any) -> t.Any:
        count[0] += 1
        return original(*args, **kwargs)

    client.execute_command = execute_command
    try:
        yield count
    finally:
        del client.execute_command


def run(
    stacks: list[Stack],
    settings: Settings,
    *,
    scenarios: list[Scenario] = SCENARIOS,
    log: t.Callable[[str], None] = print,
) -> list[Result]:
    """Measure every scenario on every stack that can do it.

    Each round visits every (stack, scenario) pair once, in a new random
    order, so that drift of the machine (other load, thermal limits) spreads
    over all pairs instead of favouring one.
    """
    pairs = [
        (stack, scenario)
        for scenario in scenarios
        for stack in stacks
        if scenario.name in stack.scenarios
    ]
    results = {
        (stack.name, scenario.name): Result(stack.name, _database_of(stack), scenario.name)
        for stack, scenario in pairs
    }
    runners = {(stack.name, scenario.name): Runner(stack, scenario) for stack, scenario in pairs}
    log(f"counting statements for {len(pairs)} pairs")
    for stack, scenario in pairs:
        results[(stack.name, scenario.name)].counts = count_once(
            runners[(stack.name, scenario.name)], settings
        )
    for number in range(1, settings.rounds + 1):
        order = list(pairs)
        random.shuffle(order)
        started = time.perf_counter()
        for stack, scenario in order:
            time_once(
                runners[(stack.name, scenario.name)], settings, results[(stack.name, scenario.name)]
            )
        log(f"round {number}/{settings.rounds} done in {time.perf_counter() - started:.1f}s")
    return list(results.values())


def _database_of(stack: Stack) -> str:
    if "(" in stack.name:
        return stack.name.rsplit("(", 1)[1].rstrip(")")
    return "none"
