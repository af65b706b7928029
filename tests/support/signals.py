"""What kitsession's signals told an app's receivers, and what the store
held at that moment.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone

from blinker import Signal
from flask import Flask

from flask_kitsession import ServerSession
from flask_kitsession import signals
from flask_kitsession.state import get_state

_EVER = datetime.min.replace(tzinfo=timezone.utc)

SIGNALS: dict[str, Signal] = {
    "created": signals.session_created,
    "rotated": signals.session_rotated,
    "authenticated": signals.session_authenticated,
    "revoked": signals.session_revoked,
}


@dataclass
class Received:
    """One signal as a receiver got it."""

    name: str
    sender: t.Any
    #: What it was sent with, but ``session``.
    kwargs: dict[str, t.Any]
    #: For a signal with a ``session``: its id and user when it was sent.
    session_id: str | None = None
    user_id: t.Any = None
    #: Whether the store held the session (``session``, or ``session_id`` of
    #: ``session_revoked``) when the signal was sent.
    in_store: bool | None = None


class SignalLog:
    """Receives the four signals for one app while in a ``with`` block."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.received: list[Received] = []
        self._receivers: list[tuple[Signal, t.Callable[..., None]]] = []

    def __enter__(self) -> SignalLog:
        for name, signal in SIGNALS.items():
            receiver = self._receiver(name)
            signal.connect(receiver, sender=self.app, weak=False)
            self._receivers.append((signal, receiver))
        return self

    def __exit__(self, *exc: object) -> None:
        for signal, receiver in self._receivers:
            signal.disconnect(receiver, sender=self.app)
        self._receivers.clear()

    def _receiver(self, name: str) -> t.Callable[..., None]:
        def receive(sender: t.Any, **kwargs: t.Any) -> None:
            session = kwargs.pop("session", None)
            received = Received(name, sender, kwargs)
            store = get_state(sender).store
            if isinstance(session, ServerSession):
                received.session_id = session.id
                received.user_id = session.user_id
                received.in_store = store.get(session.id, _EVER) is not None
            elif kwargs.get("session_id") is not None:
                received.in_store = store.get(kwargs["session_id"], _EVER) is not None
            self.received.append(received)

        return receive

    def names(self) -> list[str]:
        return [r.name for r in self.received]

    def of(self, name: str) -> list[Received]:
        return [r for r in self.received if r.name == name]

    def one(self, name: str) -> Received:
        found = self.of(name)
        assert len(found) == 1, self.received
        return found[0]

    def clear(self) -> None:
        self.received.clear()
