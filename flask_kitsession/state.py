"""What kitsession keeps for each app, and how any module finds it.

This module sits at the bottom: every other module may import it, and it
imports none of theirs at run time, so there is no import loop between the
extension and the commands, decorators and signals that need the app's state.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask import Flask

from .settings import Settings

if t.TYPE_CHECKING:
    from .stores.base import SessionStore

#: The key of kitsession's state in ``app.extensions``.
EXTENSION_KEY = "kitsession"


@dataclass
class KitSessionState:
    """What kitsession keeps for one app, in ``app.extensions["kitsession"]``.

    A store may serve several apps; what differs from one app to another
    (the settings) lives here, never on the store.
    """

    #: The :class:`~flask_kitsession.KitSession` that initialised the app.
    extension: t.Any
    #: Where the app's sessions are kept.
    store: SessionStore
    #: The app's ``KITSESSION_*`` settings, read once by ``init_app``.
    settings: Settings
    #: Returns the current aware UTC time.
    clock: t.Callable[[], datetime]


def get_state(app: Flask | None = None) -> KitSessionState:
    """Return kitsession's state for ``app`` (default: the current app).

    :raises RuntimeError: if kitsession was not initialised on the app.
    """
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    try:
        return t.cast(KitSessionState, app.extensions[EXTENSION_KEY])
    except KeyError:
        raise RuntimeError(
            "flask-kitsession is not initialized on this app. Call"
            " KitSession(app) or kitsession.init_app(app) in your app factory."
        ) from None
