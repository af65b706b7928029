"""The Flask session interface: ``flask.session`` kept on the server."""

from __future__ import annotations

import hashlib
import logging
import typing as t
import weakref
from datetime import datetime

from flask import Flask
from flask import has_request_context
from flask import Request
from flask import request as current_request
from flask.sessions import SessionInterface
from flask.sessions import SessionMixin
from werkzeug.wrappers import Response

from . import requestinfo
from . import tokens
from .cookies import CookieSigner
from .exceptions import StoreUnavailableError
from .models import utc_now
from .session import ServerSession
from .settings import Settings
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

    # -- opening --------------------------------------------------------------

    def make_session(
        self, record: SessionRecord | None = None, token: str | None = None
    ) -> ServerSession:
        """Return a session object for a stored record, or a new empty session."""
        return self.session_class(
            record.data if record is not None else None,
            record=record,
            token=token,
            user_id_from=self.store.user_id_from,
            load_user=self.store.load_user,
            attach_user=self.store.attach_user,
            check_value=self.store.serializer.check_value,
        )

    def open_session(self, app: Flask, request: Request) -> ServerSession | None:
        if not self.signer.can_sign(app):
            # Like Flask's own session: without a secret key the session is a
            # NullSession that explains the problem when written to.
            return None
        value = _cookie_value(request.environ.get("HTTP_COOKIE"), self.get_cookie_name(app))
        if not value:
            return self.make_session()
        if self._skips_session(app, request):
            session = self.make_session()
            session._skip_save = True
            return session
        token, current_key = self.signer.loads_checking_key(app, value)
        if token is None:
            logger.warning(
                "Ignored a session cookie that is not a token signed with the app's keys"
                " (from %s).",
                request.remote_addr,
            )
            return self._stale()
        try:
            record = self.store.get(tokens.session_id_for(token), self.clock())
        except StoreUnavailableError as e:
            logger.error("Could not load the session: %s", e)
            request.environ[STORE_ERROR_ENVIRON_KEY] = e
            session = self.make_session()
            session._skip_save = True
            return session
        if record is None:
            logger.debug("The session cookie names a session that is unknown or expired.")
            return self._stale()
        session = self.make_session(record, token)
        if not current_key:
            session._resign = True
        return session

    def _stale(self) -> ServerSession:
        session = self.make_session()
        session._stale_cookie = True
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
        if session.permanent and isinstance(session, ServerSession) and session.record is not None:
            return session.record.expires_at
        return None

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession), (
            "KitSessionInterface only saves ServerSession objects."
        )
        if session._skip_save:
            # Not loaded (a static file, or the store failed): leave the
            # client's cookie alone.
            return
        if session.accessed:
            _vary_on_cookie(response)
        if response.status_code >= 500:
            # The request failed (Flask saves the session on its error page
            # too): what it changed before failing is not kept, as Django
            # does. The session stays as it was stored before the request.
            return
        try:
            self._save(app, session, response)
        except StoreUnavailableError as e:
            logger.error("Could not save the session: %s", e)
            _replace_response(app, response, e)

    def _save(self, app: Flask, session: ServerSession, response: Response) -> None:
        store = self.store
        record = session.record

        if session._delete:
            if record is not None:
                store.delete(record.id)
            if record is not None or session._stale_cookie:
                self.remove_cookie(app, response)
            session.record = None
            return

        if record is None:
            if session:
                self.store_new(session)
                self.set_cookie(app, response, session)
            elif session._stale_cookie:
                self.remove_cookie(app, response)
            return

        if session.modified or session._rotate:
            if not session:
                # Emptied, like session.clear(): nothing is left to keep.
                store.delete(record.id)
                self.remove_cookie(app, response)
                session.record = None
                return
            if self.store_changes(session):
                self.set_cookie(app, response, session)
            else:
                # Deleted or revoked while this request ran: it stays gone.
                self.remove_cookie(app, response)
            return

        now = self.clock()
        if self.settings.touch_due(record.last_seen_at, now):
            expires_at = self.settings.expires_at(record.created_at, now)
            if not store.touch(
                record.id, last_seen_at=now, expires_at=expires_at, ip_address=self._ip_address()
            ):
                self.remove_cookie(app, response)
                return
            record.last_seen_at = now
            record.expires_at = expires_at
            if session.permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]:
                self.set_cookie(app, response, session)
                return
        if session._resign:
            # Signed with a key kept only for rotation: sign it with the
            # current one, so removing the old key later signs nobody out.
            self.set_cookie(app, response, session)

    # -- writing sessions (used by requests and by the helpers) ---------------

    def store_new(self, session: ServerSession) -> SessionRecord:
        """Store a new session (replacing the session it started over from,
        if any) and return its record.
        """
        now = self.clock()
        user_id = self.store.user_id_from(session)
        if user_id is not None:
            self.store.check_user(user_id)
        record = SessionRecord(
            id=session.id,
            data=dict(session),
            user_id=user_id,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            expires_at=self.settings.expires_at(now, now),
            authenticated_at=now if user_id is not None else None,
            user_agent=self._user_agent(),
            ip_address=self._ip_address(),
        )
        replaces = session._replaces.id if session._replaces is not None else None
        self.store.create(record, replaces=replaces)
        session.record = record
        session.new = False
        session.modified = False
        session._replaces = None
        return record

    def store_changes(self, session: ServerSession) -> bool:
        """Write a stored session's data (and new token, if it is being
        regenerated). Return ``False`` if it no longer exists.
        """
        old = session.record
        assert old is not None, "store_changes() needs a stored session; use store_new()."
        now = self.clock()
        user_id = self.store.user_id_from(session)
        if user_id is None:
            authenticated_at = None
        elif user_id == old.user_id and not session._reauthenticated:
            authenticated_at = old.authenticated_at
        else:
            self.store.check_user(user_id)
            authenticated_at = now
        previous_id = token = None
        session_id = old.id
        if session._rotate:
            previous_id = old.id
            token = tokens.new_token()
            session_id = tokens.session_id_for(token)
        # The expiry slides once per touch interval, by writes as by reads.
        # Between, a write leaves last_seen_at and the indexed expires_at as
        # they are: PostgreSQL then updates the row in place (a HOT update),
        # with no new index entries for every change of the data.
        if self.settings.touch_due(old.last_seen_at, now):
            last_seen_at, expires_at = now, self.settings.expires_at(old.created_at, now)
        else:
            last_seen_at, expires_at = old.last_seen_at, old.expires_at
        record = SessionRecord(
            id=session_id,
            data=dict(session),
            user_id=user_id,
            created_at=old.created_at,
            updated_at=now,
            last_seen_at=last_seen_at,
            expires_at=expires_at,
            authenticated_at=authenticated_at,
            user_agent=old.user_agent,
            ip_address=self._ip_address() or old.ip_address,
        )
        stored = self.store.update(record, previous_id=previous_id)
        session._rotate = session._reauthenticated = False
        if not stored:
            session.record = None
            return False
        if token is not None:
            session._token, session._id = token, session_id
        session.record = record
        session.modified = False
        return True

    def _user_agent(self) -> str | None:
        if not self.settings.track_user_agent or not has_request_context():
            return None
        return requestinfo.user_agent(current_request)

    def _ip_address(self) -> str | None:
        if not self.settings.track_ip or not has_request_context():
            return None
        return requestinfo.client_address(current_request)

    # -- cookies ----------------------------------------------------------------

    def set_cookie(self, app: Flask, response: Response, session: ServerSession) -> None:
        """Set the session cookie on ``response`` for a stored session."""
        if session._token is None:
            raise ValueError(
                "This session's token is unknown here: only sessions created, or"
                " opened from a cookie, in this process can be put in a cookie."
            )
        response.set_cookie(
            self.get_cookie_name(app),
            self.signer.dumps(app, session._token),
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
