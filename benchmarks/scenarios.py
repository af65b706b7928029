"""What each scenario does, and what a right answer looks like."""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from .stacks import Stack
from .stacks import USER_ID
from .wsgi import Client
from .wsgi import Response


def log_in(client: Client, user_id: int) -> None:
    client.cookies.clear()
    response = client.post("/login", {"user_id": str(user_id)})
    if response.status != 200 or not client.cookies:
        raise AssertionError(f"login failed: {response.status} {response.body[:200]!r}")


def _nothing(client: Client, user_id: int) -> None:
    return None


def _log_out(client: Client, user_id: int) -> None:
    client.cookies.clear()


def _log_in_if_needed(client: Client, user_id: int) -> None:
    if not client.cookies:
        log_in(client, user_id)


def _email(user_id: int) -> bytes:
    return f"user{user_id}@example.com".encode()


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    #: The user this scenario signs in as: each scenario its own, so that
    #: signing out "other devices" in one never touches another.
    user_id: int
    #: Run once per client, before any request.
    prepare: t.Callable[[Client, int], None]
    #: Run before each measured request, not measured.
    setup: t.Callable[[Client, int], None]
    #: The measured request.
    run: t.Callable[[Client, int], Response]
    #: What the measured request must answer.
    expect: bytes | None = None
    #: A second client (another device of the same user), for sign-out-others.
    needs_other_device: bool = False


SCENARIOS: list[Scenario] = [
    Scenario(
        "anon",
        "anonymous page view",
        0,
        _nothing,
        _nothing,
        lambda c, u: c.get("/anon"),
        b"hello guest",
    ),
    Scenario(
        "read",
        "authenticated read",
        USER_ID,
        log_in,
        _nothing,
        lambda c, u: c.get("/read"),
        _email(USER_ID),
    ),
    Scenario(
        "write",
        "authenticated write",
        2,
        log_in,
        _nothing,
        lambda c, u: c.post("/write"),
        _email(2),
    ),
    Scenario(
        "login",
        "login",
        3,
        _nothing,
        _log_out,
        lambda c, u: c.post("/login", {"user_id": str(u)}),
        b"in",
    ),
    Scenario(
        "logout", "logout", 4, _nothing, _log_in_if_needed, lambda c, u: c.post("/logout"), b"out"
    ),
    Scenario(
        "sign-out-others",
        "sign out other devices",
        5,
        log_in,
        _nothing,
        lambda c, u: c.post("/sign-out-others"),
        b"1",
        needs_other_device=True,
    ),
]

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


class Runner:
    """Drives one scenario on one stack: a prepared client, and the request."""

    def __init__(self, stack: Stack, scenario: Scenario) -> None:
        self.stack = stack
        self.scenario = scenario
        self.client = Client(stack.app.wsgi_app)
        self.other = Client(stack.app.wsgi_app) if scenario.needs_other_device else None
        scenario.prepare(self.client, scenario.user_id)

    def setup(self) -> None:
        self.scenario.setup(self.client, self.scenario.user_id)
        if self.other is not None:
            log_in(self.other, self.scenario.user_id)

    def run(self) -> Response:
        return self.scenario.run(self.client, self.scenario.user_id)

    def check(self, response: Response) -> None:
        if response.status != 200:
            raise AssertionError(
                f"{self.stack.name} {self.scenario.name}: status {response.status}"
                f" {response.body[:300]!r}"
            )
        if self.scenario.expect is not None and response.body != self.scenario.expect:
            raise AssertionError(
                f"{self.stack.name} {self.scenario.name}: answered {response.body[:300]!r},"
                f" expected {self.scenario.expect!r}"
            )
