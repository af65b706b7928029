"""The Flask session interface: ``flask.session`` kept on the server."""

from __future__ import annotations

import hashlib
import logging
import typing as t
import weakref
from datetime import datetime

from flask import current_app
from flask import Flask
from flask import has_request_context
from flask import Request
from flask import request as current_request
from flask.sessions import SessionInterface
from flask.sessions import SessionMixin
from werkzeug.wrappers import Response

from . import notify
from . import requestinfo
from . import tokens
from .cookies import CookieSigner
from .exceptions import StoreUnavailableError
from .lifecycle import Action
from .lifecycle import CookieAction
from .lifecycle import CookieState
from .lifecycle import Outcome
from .lifecycle import SessionLifecycle
from .lifecycle import UNCHANGED
from .models import utc_now
from .session import ServerSession
from .settings import Settings
from .state import get_state
from .stores.base import SessionRecord
from .stores.base import SessionStore

logger = logging.getLogger("flask_kitsession")

#: Where a store failure met while opening the session waits for the
#: ``before_request`` hook that turns it into a 503.
STORE_ERROR_ENVIRON_KEY = "flask_kitsession.store_error"


class KitSessionInterface(SessionInterface):
    """Keeps ``flask.session`` in a :class:`~flask_kitsession.stores.SessionStore`.

    Only a signed random token travels in the cookie. A visitor who never
    writes to the session gets no stored session and no cookie; a session
    that is read and not changed costs one read and no write until the touch
    interval has passed.

    Change its behaviour by subclassing and setting the attributes below,
    then assigning an instance to ``app.session_interface`` after
    ``init_app``.

    :param store: Where sessions are kept.
    :param settings: The app's ``KITSESSION_*`` settings.
    :param clock: Returns the current time (an aware UTC datetime).

    .. versionadded:: 0.1
    """

    #: The class of the session objects.
    session_class = ServerSession
    #: Mixed into the cookie signature's key, so it cannot be confused with
    #: any other use of ``SECRET_KEY``.
    salt = "flask-kitsession"
    #: Hash function of the cookie signature's HMAC.
    digest_method = staticmethod(hashlib.sha256)
    #: itsdangerous key derivation of the cookie signature.
    key_derivation = "hmac"

    def __init__(
        self,
        store: SessionStore,
        settings: Settings,
        *,
        clock: t.Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.signer = CookieSigner(
            salt=self.salt,
            digest_method=self.digest_method,
            key_derivation=self.key_derivation,
            sign=settings.sign_cookie,
        )
        self._static_prefixes: weakref.WeakKeyDictionary[Flask, str] = weakref.WeakKeyDictionary()

    # -- what a session needs from its app ------------------------------------

    def user_agent(self) -> str | None:
        """The user agent of the current request, as its column holds it
        (:func:`.requestinfo.user_agent`); ``None`` outside a request or with
        tracking off.
        """
        if not self.settings.track_user_agent or not has_request_context():
            return None
        return requestinfo.user_agent(current_request)

    def client_address(self) -> str | None:
        """The client address of the current request, as its column holds it
        (:func:`.requestinfo.client_address`); ``None`` outside a request or
        with tracking off.
        """
        if not self.settings.track_ip or not has_request_context():
            return None
        return requestinfo.client_address(current_request)

    # -- opening --------------------------------------------------------------

    def make_session(
        self,
        record: SessionRecord | None = None,
        token: str | None = None,
        *,
        cookie: CookieState = CookieState.ABSENT,
    ) -> ServerSession:
        """Return a session object for a stored record, or a new empty session."""
        lifecycle = SessionLifecycle(self, record, token, cookie)
        return self.session_class(record.data if record is not None else None, lifecycle=lifecycle)

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        if not self.signer.can_sign(app):
            # Like Flask's own session: without a secret key the session is a
            # NullSession that explains the problem when written to.
            return None
        value = _cookie_value(request.environ.get("HTTP_COOKIE"), self.get_cookie_name(app))
        if not value:
            return self.make_session()
        if self._skips_session(app, request):
            return self._unsaved()
        token, current_key = self.signer.loads_checking_key(app, value)
        if token is None:
            logger.warning(
                "Ignored a session cookie that is not a token signed with the app's keys"
                " (from %s).",
                request.remote_addr,
            )
            return self.make_session(cookie=CookieState.UNVERIFIED)
        try:
            record = self.store.get(tokens.session_id_for(token), self.clock())
        except StoreUnavailableError as e:
            logger.error("Could not load the session: %s", e)
            request.environ[STORE_ERROR_ENVIRON_KEY] = e
            return self._unsaved()
        if record is None:
            logger.debug("The session cookie names a session that is unknown or expired.")
            return self.make_session(cookie=CookieState.DEAD)
        session = self.make_session(
            record, token, cookie=CookieState.VALID if current_key else CookieState.OLD_KEY
        )
        if not _names_its_link(session, record):
            # The stored link and the data disagree (the user's key changed
            # under the session, or KITSESSION_USER_ID_KEYS did): it belongs
            # to nobody, and ends.
            logger.warning("Ended a session whose data names another user than its link.")
            session.lifecycle.end(session)
            session.modified = False
        return session

    def _unsaved(self) -> ServerSession:
        """A session that is not loaded and never saved: the client's cookie
        is left alone.
        """
        session = self.make_session()
        session.lifecycle.skip_save = True
        return session

    def _skips_session(self, app: Flask, request: Request) -> bool:
        """Whether the request is for a static file: those never use the
        session, so it is not loaded for them.
        """
        prefix = self._static_prefixes.get(app)
        if prefix is None:
            url_path = app.static_url_path if app.has_static_folder else None
            # "" for an app without static files: nothing is skipped.
            prefix = self._static_prefixes[app] = f"{url_path}/" if url_path else ""
        return bool(prefix) and request.environ.get("PATH_INFO", "").startswith(prefix)

    # -- saving -----------------------------------------------------------------

    def get_expiration_time(self, app: Flask, session: SessionMixin) -> datetime | None:
        """A permanent session's cookie expires with the stored session; others
        are browser-session cookies.
        """
        if session.permanent and isinstance(session, ServerSession):
            record = session.lifecycle.record
            if record is not None:
                return record.expires_at
        return None

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession), (
            "KitSessionInterface only saves ServerSession objects."
        )
        lifecycle = session.lifecycle
        lifecycle.closed()
        if lifecycle.skip_save:
            # Not loaded (a static file, or the store failed): leave the
            # client's cookie alone.
            return
        refresh = self.should_refresh(app, session)
        if session.accessed or (refresh and dict.get(session, "_permanent", False)):
            # A permanent session's cookie is refreshed on some responses
            # (once per touch interval, see SessionLifecycle.decide): caches
            # keep them apart by cookie, as they would Flask's own.
            _vary_on_cookie(response)
        try:
            if response.status_code >= 500:
                # The request failed (Flask saves the session on its error
                # page too): what it changed before failing is not kept, as
                # Django does. The session stays as it was stored before the
                # request, and the browser keeps it.
                self._undo_hand_overs(app, session, response)
                return
            outcome = lifecycle.decide(session, self.clock(), refresh_cookie=refresh)
            if outcome is not UNCHANGED:
                # Most reads decide UNCHANGED: nothing to store, no cookie.
                self.carry_out(session, outcome, app, response)
            for session_id in lifecycle.discarded():
                self.store.delete(session_id)
        except StoreUnavailableError as e:
            logger.error("Could not save the session: %s", e)
            _replace_response(app, response, e)

    def _undo_hand_overs(self, app: Flask, session: ServerSession, response: Response) -> None:
        """Delete the sessions handed to the browser in a request that failed,
        and their cookies from its response: the browser keeps the one it had.
        """
        undelivered = session.lifecycle.undelivered()
        if not undelivered:
            return
        for session_id in undelivered:
            self.store.delete(session_id)
        name = self.get_cookie_name(app)
        cookies = response.headers.getlist("Set-Cookie")
        response.headers.remove("Set-Cookie")
        for cookie in cookies:
            if not cookie.startswith(f"{name}="):
                response.headers.add("Set-Cookie", cookie)

    def should_refresh(self, app: Flask, session: ServerSession) -> bool:
        """Whether a permanent session's cookie is sent with every response
        (``SESSION_REFRESH_EACH_REQUEST``), as Flask's own session does.
        """
        return bool(app.config["SESSION_REFRESH_EACH_REQUEST"])

    def persist(self, session: ServerSession) -> bool:
        """Store what the session's lifecycle decides now, outside the end of a
        request (the helpers do). Return ``False`` if the session no longer
        exists.
        """
        outcome = session.lifecycle.decide(session, self.clock(), refresh_cookie=False)
        return self.carry_out(session, outcome)

    def carry_out(
        self,
        session: ServerSession,
        outcome: Outcome,
        app: Flask | None = None,
        response: Response | None = None,
    ) -> bool:
        """Carry out a decided outcome on the store, then on the response's
        cookie (when there is a response). Return ``False`` if the stored
        session turned out to be gone: deleted or revoked while the request
        ran, it stays gone (its cookie, which names nothing now, is left alone).

        Then the signals of :mod:`flask_kitsession.signals` tell what the
        store did.
        """
        store = self.store
        action = outcome.action
        record = outcome.record
        done = True
        deleted = False
        if action is Action.CREATE:
            assert record is not None
            if record.user_id is not None:
                # SQL stores' foreign keys check this themselves; others ask.
                store.check_user(record.user_id)
            store.create(record, replaces=outcome.target)
        elif action is Action.UPDATE:
            assert record is not None
            done = store.update(record, previous_id=outcome.target)
        elif action is Action.TOUCH:
            assert record is not None and outcome.target is not None
            done = store.touch(
                outcome.target,
                last_seen_at=record.last_seen_at,
                expires_at=record.expires_at,
                ip_address=record.ip_address,
            )
        elif action is Action.DELETE and outcome.target is not None:
            deleted = store.delete(outcome.target)
        lifecycle = session.lifecycle
        if not done:
            # Deleted, revoked or renamed by another request meanwhile: it
            # stays gone. Its cookie is left alone: a request that crossed a
            # login or a new token of the same browser must not expire the
            # new cookie, and the old one names nothing anymore.
            lifecycle.gone()
            return False
        news = None
        if action is not Action.NOTHING:
            if action is not Action.TOUCH:
                # Signals tell what the store did, once it has: gathered
                # while the lifecycle still knows why, sent last.
                news = notify.store_changed(session, outcome, deleted=deleted)
            lifecycle.stored(outcome)
        if app is not None and response is not None:
            if outcome.cookie is CookieAction.SET:
                self.set_cookie(app, response, session)
            elif outcome.cookie is CookieAction.REMOVE:
                self.remove_cookie(app, response)
        if news is not None:
            news.send(app)
        return True

    # -- cookies ----------------------------------------------------------------

    def set_cookie(self, app: Flask, response: Response, session: ServerSession) -> None:
        """Set the session cookie on ``response`` for a stored session."""
        if session.lifecycle.token is None:
            raise ValueError(
                "This session's token is unknown here: only sessions created, or"
                " opened from a cookie, in this process can be put in a cookie."
            )
        response.set_cookie(
            self.get_cookie_name(app),
            self.signer.dumps(app, session.lifecycle.token),
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
            partitioned=self.get_cookie_partitioned(app),
        )
        _vary_on_cookie(response)

    def remove_cookie(self, app: Flask, response: Response) -> None:
        """Expire the session cookie on ``response``."""
        response.delete_cookie(
            self.get_cookie_name(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            httponly=self.get_cookie_httponly(app),
            samesite=self.get_cookie_samesite(app),
            partitioned=self.get_cookie_partitioned(app),
        )
        _vary_on_cookie(response)


def _names_its_link(session: ServerSession, record: SessionRecord) -> bool:
    """Whether the session's data names the user the stored session is
    linked to (or no one, for an anonymous session).
    """
    linked = record.user_id
    for key in session.lifecycle.context.settings.user_id_keys:
        value = dict.get(session, key)
        if value is not None:
            if type(value) is type(linked) and value == linked:
                # The link was converted where it came in; the same value of
                # the same type converts to itself.
                return True
            break
    return session.lifecycle.names(session, linked)


def _cookie_value(header: str | None, name: str) -> str | None:
    """Return the value of the first cookie called ``name`` in a ``Cookie``
    header, or ``None``.

    Cheaper than parsing every cookie of the header into ``request.cookies``,
    which every request with a cookie would pay for. A session cookie is a
    signed token of URL-safe characters, never quoted: a quoted or otherwise
    odd value comes back as it is and fails the signature check.
    """
    if not header or name not in header:
        return None
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            return value.strip()
    return None


def _vary_on_cookie(response: Response) -> None:
    """Add ``Vary: Cookie``, as Flask's own session does when it is used.

    Cheaper than ``response.vary.add`` in the common cases (no ``Vary`` yet,
    or one that has ``Cookie`` already), which this runs on every request.
    """
    # getlist() rather than get(): Werkzeug's get() builds an exception for a
    # missing header, which costs more than all of this.
    varies = response.headers.getlist("Vary")
    if not varies:
        response.headers.add("Vary", "Cookie")
    elif not any("cookie" in vary.lower() for vary in varies):
        response.vary.add("Cookie")


def _replace_response(app: Flask, response: Response, error: StoreUnavailableError) -> None:
    """Turn ``response`` into the app's response to ``error`` (503 unless the
    app handles it otherwise): the session could not be saved, so the page
    must not pretend it was.
    """
    error_response = app.make_response(app.handle_user_exception(error))
    response.status_code = error_response.status_code
    response.headers = error_response.headers
    response.response = error_response.response
    response.direct_passthrough = False


def get_interface(app: Flask | None = None) -> KitSessionInterface:
    """Return the app's kitsession interface: the one installed as
    ``app.session_interface`` now (a subclass assigned after ``init_app``
    included), so that the helpers sign and read cookies as requests do.

    :raises RuntimeError: if kitsession was not initialised on the app, or
        its session interface was replaced by one that is not kitsession's.
    """
    if app is None:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    interface = app.session_interface
    if not isinstance(interface, KitSessionInterface):
        get_state(app)  # says "call init_app" when that is the problem
        raise RuntimeError(
            f"The app's session interface is a {type(interface).__name__}, not a"
            " KitSessionInterface: assign only KitSessionInterface subclasses to"
            " app.session_interface after init_app."
        )
    return interface
