"""Exceptions raised by flask-kitsession.

Programmer errors (a missing ``init_app``, a wrong argument) raise built-in
exceptions whose message names the fix. Failures at run time derive from
:class:`KitSessionError`.
"""

from __future__ import annotations

from werkzeug.exceptions import ServiceUnavailable


class KitSessionError(Exception):
    """Base class of every run-time error raised by flask-kitsession."""


class StoreUnavailableError(KitSessionError, ServiceUnavailable):
    """The session store could not be reached or failed to answer.

    It is also a :class:`~werkzeug.exceptions.ServiceUnavailable`, so Flask
    renders it as ``503 Service Unavailable`` (or through the app's own
    handler for 503) instead of a traceback.
    """

    description = "The session store is unavailable. Please try again in a moment."

    def __init__(self, message: str) -> None:
        KitSessionError.__init__(self, message)
        ServiceUnavailable.__init__(self)
        self.message = message

    def __str__(self) -> str:
        return self.message


class SessionDataError(KitSessionError, ValueError):
    """The session data cannot be stored: not JSON-serializable, or too large.

    Raised before anything is written, so the stored session is unchanged.
    """


class UnknownUserError(KitSessionError, ValueError):
    """The session names a user that does not exist in the user table."""


class SessionExistsError(KitSessionError):
    """A session with the same id already exists (a store refuses to overwrite it)."""
