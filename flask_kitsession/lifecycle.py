"""The life of one session in one request: the one owner of its fate.

A request starts with the stored session its cookie names (the *origin*), or
with none. What the app does to it is one of a few named transitions, and
nothing else changes its fate:

- **link**: writing (or removing) one of ``KITSESSION_USER_ID_KEYS`` links the
  session to another user, or to none. The session *starts over*: a new
  token, and only what may cross over follows (see :meth:`start_over`).
- **login**: :func:`~flask_kitsession.with_new_session` and Flask-Login's
  ``login_user`` are logins. A login of the user already linked starts over
  too, keeping the clocks of that user's session.
- **authenticate**: the app verified the user in this request (a login, or
  :func:`~flask_kitsession.refresh_authentication`): ``authenticated_at``
  becomes now, unless Flask-Login's ``_fresh`` says the login is not fresh
  (a remember cookie, ``login_user(fresh=False)``).
- **end**: a logout. The stored session is deleted; an empty one follows.
- **rotate**: :meth:`ServerSession.regenerate`: same data, a new token.
- **touch**: nothing changed; the expiry slides once per touch interval.

At the end of the request :meth:`SessionLifecycle.decide` turns the state into
one :class:`Outcome`, which the session interface carries out. Security rules
hold by construction: the token changes whenever the linked user changes or
the session becomes freshly authenticated; nothing of one user's session
follows the browser into another user's; the absolute timeout counts from
the first session of an uninterrupted link to the same user, whatever is
carried over or re-created; ``authenticated_at`` moves only on a real
authentication.
"""

from __future__ import annotations

import copy
import enum
import logging
import typing as t
from dataclasses import dataclass
from dataclasses import replace
from datetime import datetime

from flask import g
from flask import has_app_context

from . import tokens
from .exceptions import UnknownUserError
from .stores.base import SessionRecord

logger = logging.getLogger("flask_kitsession")

if t.TYPE_CHECKING:
    from .session import ServerSession
    from .settings import Settings
    from .stores.base import SessionStore


class SessionContext(t.Protocol):
    """What a session's lifecycle needs from its app (the session interface
    provides it).
    """

    store: SessionStore
    settings: Settings

    def user_agent(self) -> str | None: ...

    def client_address(self) -> str | None: ...


class CookieState(enum.Enum):
    """What the request's session cookie turned out to be."""

    #: No session cookie.
    ABSENT = "absent"
    #: Signed with the current key; names a live session.
    VALID = "valid"
    #: Signed with a key of ``SECRET_KEY_FALLBACKS``; names a live session.
    OLD_KEY = "old key"
    #: Signed with the app's keys, but names no live session (it ended).
    DEAD = "dead"
    #: Not verifiable with the app's keys: tampered, garbage, or another
    #: app's (a shared cookie name, a worker started with another key). It is
    #: never deleted by a request that does not write the session.
    UNVERIFIED = "unverified"


class Action(enum.Enum):
    """What a save does to the store."""

    NOTHING = "nothing"
    #: Slide the expiry of the unchanged origin.
    TOUCH = "touch"
    #: Store a new session (replacing ``Outcome.target``, if any).
    CREATE = "create"
    #: Write the origin's changes (renaming it from ``Outcome.target``).
    UPDATE = "update"
    #: Delete ``Outcome.target``.
    DELETE = "delete"


class CookieAction(enum.Enum):
    KEEP = "keep"
    SET = "set"
    REMOVE = "remove"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The one decision a save carries out."""

    action: Action
    cookie: CookieAction = CookieAction.KEEP
    #: The session as it is to be stored (create, update, touch).
    record: SessionRecord | None = None
    #: The token of :attr:`record`, when it is a new one.
    token: str | None = None
    #: The stored session the action replaces, renames, touches or deletes.
    target: str | None = None


def _forget_csrf_token(key: str) -> None:
    """Flask-WTF keeps the request's signed copy of the session's CSRF token
    in ``g``: when the token leaves the session (a login as another user, a
    logout), the copy goes too, so that what the response hands out (a
    form, Flask-Security's JSON answer) is a new token that works.
    """
    if has_app_context():
        g.pop(key, None)


def _forget_request_user() -> None:
    """Flask-Login keeps the request's user in ``g``: when a failed login
    puts the session back as it was, the user goes too, so that what runs
    next (an error handler) sees the user the session names.
    """
    if has_app_context():
        g.pop("_login_user", None)


# The outcomes of most requests, made once.
#: Nothing to store, no cookie to send: what a read decides until its touch
#: is due.
UNCHANGED = Outcome(Action.NOTHING)
_RESEND = Outcome(Action.NOTHING, CookieAction.SET)

#: Flask-Login's flag of a login that is not fresh (a remember cookie,
#: ``login_user(fresh=False)``).
FRESH_KEY = "_fresh"
#: Where Flask's ``flash()`` keeps the messages not yet shown.
FLASHES_KEY = "_flashes"


class SessionLifecycle:
    """The state of one session in one request, changed only by the named
    transitions below, and the outcome decided from it at the end.

    :param context: The app's session interface (store, settings, request
        metadata).
    :param origin: The stored session the request's cookie named, if any.
    :param token: The token of ``origin``.
    :param cookie: What the request's cookie turned out to be.

    .. versionadded:: 0.2
    """

    # Class-level defaults: a request that only reads its session sets none.

    #: The session started over (a link changed, a login, a logout): it gets
    #: a new token. Whether it is a new session or the origin under a new
    #: token is decided at the end (see :meth:`decide`).
    replaced = False
    #: The session was ended (a logout): nothing of the origin continues.
    ended = False
    #: The app authenticated the linked user in this request (a login, or
    #: :meth:`authenticate`), as opposed to a view that merely wrote a key.
    authenticated = False
    #: The session gets a new token, keeping its data (``regenerate()``).
    rotate = False
    #: Not loaded (a static file, or the store failed): never saved.
    skip_save = False
    #: Send the cookie even if nothing changed (a session handed over).
    resend = False
    #: How many logins (``with_new_session`` views) are running.
    login_depth = 0
    #: A login running now has started the session over already.
    login_started_over = False
    #: Keys written by this request (since the last :meth:`end`).
    written: set[str] | None = None
    #: The ids of the sessions handed to the browser in this request
    #: (:meth:`adopt`); see :meth:`discarded` and :meth:`undelivered`.
    handed: list[str] | None = None
    #: The response has been saved (:meth:`closed`): later writes are lost,
    #: and the first is logged.
    saved = False
    _told_too_late = False
    #: The user loaded for :attr:`linked`, and whether it was attached.
    _user: t.Any = None
    _user_for: t.Any = None
    _user_ready = False

    def __init__(
        self,
        context: SessionContext,
        origin: SessionRecord | None = None,
        token: str | None = None,
        cookie: CookieState = CookieState.ABSENT,
    ) -> None:
        self.context = context
        self.origin = origin
        #: The stored session this session is now; ``None`` while it is new.
        self.record = origin
        #: The id of the stored session the request arrived with.
        self.arrived = origin.id if origin is not None else None
        self.token = token
        self.cookie = cookie
        #: The user the session is linked to now.
        self.linked: t.Any = origin.user_id if origin is not None else None
        #: The messages ``flash()`` had stored for the linked user before this
        #: request, not shown yet: they never follow the browser to someone
        #: else, though the key does when this request flashes too.
        flashes = origin.data.get(FLASHES_KEY) if origin is not None else None
        self.flashes_before: tuple[t.Any, ...] = tuple(flashes) if isinstance(flashes, list) else ()

    # -- reading ----------------------------------------------------------------

    def user_from(self, data: t.Mapping[str, t.Any]) -> t.Any:
        """Return the user the data names: the first of ``KITSESSION_USER_ID_KEYS``
        present, converted to the user key's type.

        :raises UnknownUserError: if the value cannot be a user's key.
        """
        for key in self.context.settings.user_id_keys:
            value = dict.get(data, key) if isinstance(data, dict) else data.get(key)
            if value is not None:
                return self.context.store.coerce_user_id(value)
        return None

    @property
    def stored_id(self) -> str | None:
        """The id of the stored session this session stands for now (the
        end of the request may rename it), or ``None`` if it is new.
        """
        return self.origin.id if self.origin is not None else None

    @property
    def session_id(self) -> str:
        """The session's id; a new session gets its token the first time."""
        record = self.record
        if record is not None:
            return record.id
        if self.token is None:
            self.token = tokens.new_token()
        return tokens.session_id_for(self.token)

    def user(self) -> t.Any:
        """The linked user: loaded with the session when it is the origin's,
        else by the store; attached (to the app's ORM session) once.
        """
        linked = self.linked
        if linked is None:
            return None
        if not self._user_ready or self._user_for != linked:
            store = self.context.store
            origin = self.origin
            if origin is not None and origin.user_id == linked and origin.user is not None:
                user = origin.user
            else:
                user = store.load_user(linked)
            self._user = store.attach_user(user) if user is not None else None
            self._user_for = linked
            self._user_ready = True
        return self._user

    def is_new_link(self) -> bool:
        """Whether the request ends with another link than the session began
        with: another user, a user where there was none, or a user after a
        logout. That is a login, whatever wrote the key.
        """
        origin = self.origin
        return origin is None or self.ended or self.linked != origin.user_id

    def is_fresh_at(self, now: datetime) -> datetime | None:
        """When the linked user last authenticated, as it will be stored:
        now, if they did in this request.
        """
        if self.linked is None:
            return None
        if self.authenticated or self.is_new_link():
            return now
        return self.origin.authenticated_at if self.origin is not None else None

    # -- transitions ------------------------------------------------------------

    def check_value(self, key: t.Any, value: t.Any) -> None:
        """Refuse ``session[key] = value`` now if it could never be stored."""
        self.context.store.serializer.check_value(
            key, value, max_size=self.context.settings.max_data_size
        )

    def wrote(self, session: ServerSession, keys: t.Iterable[str]) -> None:
        """Record that the request wrote ``keys``; a user key links."""
        if self.saved:
            self._written_too_late()
        written = self.written
        if written is None:
            written = self.written = set()
        user_keys = self.context.settings.user_id_keys
        linking: dict[str, t.Any] = {}
        for key in keys:
            written.add(key)
            if key in user_keys:
                linking[key] = dict.get(session, key)
        if linking:
            # The key written names the user, whatever other user keys the
            # session held: Flask-Login and kitsession agree on who it is.
            # (A key set to None is as good as removed.)
            user = self.user_from(linking)
            if user is None:
                user = self.user_from(session)
            self._user_keys_changed(session, user, wrote=True)

    def removed(self, session: ServerSession, key: str) -> None:
        """Record that the request removed ``key``; a user key unlinks."""
        if self.saved:
            self._written_too_late()
        if self.written is not None:
            self.written.discard(key)
        if key == FLASHES_KEY:
            self.flashes_before = ()  # shown (get_flashed_messages)
        if key in self.context.settings.user_id_keys:
            self._user_keys_changed(session, self.user_from(session), wrote=False)

    def cleared(self, session: ServerSession) -> None:
        """Record that the request emptied the session."""
        if self.saved:
            self._written_too_late()
        self.written = None
        self.flashes_before = ()
        if self.linked is not None:
            self._user_keys_changed(session, None, wrote=False)

    def _user_keys_changed(self, session: ServerSession, user: t.Any, *, wrote: bool) -> None:
        if user != self.linked:
            self.start_over(session, user)
            if user is not None and self.login_depth:
                self.authenticated = True
        elif wrote and user is not None and self.login_depth and not self.login_started_over:
            # A login of the user already linked: it starts over all the same.
            self.start_over(session, user)
            self.authenticated = True

    def start_over(self, session: ServerSession, user: t.Any) -> None:
        """Start the session over (a new token), linked to ``user``.

        What follows: the keys this request wrote (but for user keys naming
        someone else), and the keys of ``KITSESSION_CARRY_OVER_KEYS`` and the
        flashed messages when the session was anonymous or was already
        ``user``'s (never from one user
        to another; never the user keys or Flask-Login's ``_fresh``, which
        are the new login's to say). At the end of the
        request it becomes a new session, replacing the origin, if it is
        linked to another user than the origin was (or the session was ended);
        else it is the origin under a new token, with the origin's clocks, and
        stays gone if the origin was revoked meanwhile.
        """
        previous = self.linked
        settings = self.context.settings
        carries = previous is None or previous == user
        written = self.written or ()
        user_keys = settings.user_id_keys
        for key in list(session):
            if key in user_keys or key == FRESH_KEY:
                keep = key in written and (
                    key == FRESH_KEY or self.names({key: dict.get(session, key)}, user)
                )
            else:
                # The visitor's own waiting messages follow them into their
                # account, whether the view flashes before or after the login.
                keep = key in written or (carries and (key == FLASHES_KEY or settings.carries(key)))
            if not keep:
                dict.__delitem__(session, key)
                if key == settings.csrf_key:
                    _forget_csrf_token(key)
                if self.written is not None:
                    self.written.discard(key)
        if previous is not None and previous != user:
            self._leave_user(session)
        self.replaced = True
        self.linked = user
        self.authenticated = False
        self.rotate = False
        self.record = None
        self.token = None
        if self.login_depth:
            self.login_started_over = True
        session.modified = True

    def names(self, data: t.Mapping[str, t.Any], user: t.Any) -> bool:
        """Whether ``data`` names ``user`` (see :meth:`user_from`); data that
        names an id no user can have names nobody.
        """
        try:
            return bool(self.user_from(data) == user)
        except UnknownUserError:
            return False

    def login(self, session: ServerSession) -> None:
        """A login of the linked user (Flask-Login's ``login_user``): start
        over, unless this request linked the user already.
        """
        if self.linked is None:
            return
        if not self.replaced:
            self.start_over(session, self.linked)
        self.authenticated = True

    def authenticate(self) -> None:
        """The linked user proved who they are again: ``authenticated_at``
        becomes now, and the session gets a new token.

        :raises ValueError: if the session belongs to no user.
        """
        if self.linked is None:
            raise ValueError("The session belongs to no user: there is nothing to refresh.")
        self.authenticated = True

    def end(self, session: ServerSession, keep: t.Iterable[str] = ()) -> None:
        """End the session (a logout): the stored session is deleted, and a
        new anonymous session follows, holding ``keep``, what this request
        wrote before (a flashed "Goodbye", Flask-Security's own flags) but for
        the user's link, and what it writes from now on.
        """
        settings = self.context.settings
        written = self.written or ()
        keys = {key for key in written if key not in settings.user_id_keys and key != FRESH_KEY}
        keys.update(keep)
        kept = {key: dict.__getitem__(session, key) for key in keys if key in session}
        csrf = settings.csrf_key in session and settings.csrf_key not in kept
        dict.clear(session)
        dict.update(session, kept)
        if csrf:
            _forget_csrf_token(settings.csrf_key)
        if self.linked is not None:
            self._leave_user(session)
        self.replaced = True
        self.ended = True
        self.linked = None
        self.authenticated = False
        self.rotate = False
        self.record = None
        self.token = None
        self.written = set(kept) if kept else None
        session.modified = True

    def closed(self) -> None:
        """The session was saved with the response's headers: what the
        request changes from now on (inside a streamed response) is lost.
        """
        self.saved = True

    def _written_too_late(self) -> None:
        if not self._told_too_late:
            self._told_too_late = True
            logger.warning(
                "The session changed after the response was saved (inside a streamed"
                " response?): the change is not stored. Change the session before the"
                " view returns its response."
            )

    def _leave_user(self, session: ServerSession) -> None:
        """The browser leaves the linked user (a logout, a login as someone
        else): of the flashed messages that follow, only this request's do.
        The user's earlier ones are theirs, not the next visitor's.
        """
        before, self.flashes_before = self.flashes_before, ()
        flashes = dict.get(session, FLASHES_KEY)
        if not before or not isinstance(flashes, list):
            return
        if tuple(flashes[: len(before)]) == before:
            del flashes[: len(before)]
            if not flashes:
                dict.__delitem__(session, FLASHES_KEY)
                if self.written is not None:
                    self.written.discard(FLASHES_KEY)

    def adopt(self, session: ServerSession, other: ServerSession) -> None:
        """Become ``other``, a stored session handed to the browser in this
        request (:func:`~flask_kitsession.set_session_cookie`): its data, user
        and token; its cookie is set at the end of the request, and the
        session the browser had is deleted then (not if the request fails).
        """
        theirs = other.lifecycle
        assert theirs.record is not None
        self.handed = [*(self.handed or ()), theirs.record.id]
        dict.clear(session)
        dict.update(session, other)
        self.origin = self.record = theirs.record
        self.token = theirs.token
        self.linked = theirs.linked
        self.cookie = CookieState.VALID
        self.replaced = self.ended = self.rotate = self.authenticated = False
        self.written = None
        self.flashes_before = ()
        self.resend = True
        session.modified = False

    def regenerate(self) -> None:
        """Give the stored session a new token at the end of the request,
        keeping its data. A new session gets a new token anyway.
        """
        if self.record is not None:
            self.rotate = True

    def begin_login(self, session: ServerSession) -> t.Any:
        """Enter a login (a ``with_new_session`` view); return what
        :meth:`abandon_login` restores if the view fails.
        """
        checkpoint = (
            # Deep: a view may change a list or dict of the session in place.
            copy.deepcopy(dict(session)),
            dict(self.__dict__),
            set(self.written) if self.written is not None else None,
            session.modified,
        )
        self.login_depth += 1
        self.login_started_over = False
        return checkpoint

    def finish_login(self) -> None:
        """Leave a login whose view returned."""
        self.login_depth -= 1
        self.login_started_over = False

    def abandon_login(self, session: ServerSession, checkpoint: t.Any) -> None:
        """Leave a login whose view raised: the session is as it was before."""
        data, state, written, modified = checkpoint
        handed, linked = self.handed, self.linked
        dict.clear(session)
        dict.update(session, data)
        self.__dict__.clear()
        self.__dict__.update(state)
        self.written = written
        # Sessions handed over meanwhile are deleted at the end of the request.
        self.handed = handed
        session.modified = modified
        if self.linked != linked:
            _forget_request_user()

    # -- the outcome ----------------------------------------------------------

    def decide(self, session: ServerSession, now: datetime, *, refresh_cookie: bool) -> Outcome:
        """Decide what the end of the request does with the session.

        - A request that ends with another link than the session began with
          (:meth:`is_new_link`) stores a new session replacing the origin: a
          new token, new clocks.
        - A request that started the session over but ends linked to the same
          user (a re-login, a key removed and written again) renames the
          origin to a new token: its clocks continue, and a revoked origin
          stays gone.
        - Otherwise the origin is updated if the data changed, renamed if it
          must get a new token (:meth:`regenerate`, :meth:`authenticate`), or
          touched once per touch interval.

        No response expires the session cookie unless the request ended or
        emptied the session: a request that crosses another one's new token
        (a login, a rotation) never signs the browser out.

        :param refresh_cookie: Re-send a permanent session's cookie on every
            response (``SESSION_REFRESH_EACH_REQUEST``).
        :raises SessionDataError: if the data can never be stored; nothing
            has been written then.
        """
        origin = self.origin
        if origin is None or self.is_new_link():
            return self._decide_new(session, now)
        if not session:
            if session.modified or self.replaced:
                # Emptied, like session.clear(): nothing is left to keep.
                return Outcome(Action.DELETE, CookieAction.REMOVE, target=origin.id)
            return self._decide_unchanged(session, now, refresh_cookie=refresh_cookie)
        fresh = self._fresh(session)
        renamed = fresh or self.rotate or self.replaced
        if not (renamed or session.modified):
            return self._decide_unchanged(session, now, refresh_cookie=refresh_cookie)
        self._check_size(session)
        settings = self.context.settings
        token = None
        session_id = origin.id
        if renamed:
            token = self.token if self.replaced and self.token else tokens.new_token()
            session_id = tokens.session_id_for(token)
        # The expiry slides once per touch interval, by writes as by reads.
        # Between, a write leaves last_seen_at and the indexed expires_at as
        # they are: PostgreSQL then updates the row in place (a HOT update).
        if settings.touch_due(origin.last_seen_at, now):
            last_seen_at, expires_at = now, settings.expires_at(origin.created_at, now)
        else:
            last_seen_at, expires_at = origin.last_seen_at, origin.expires_at
        record = SessionRecord(
            id=session_id,
            data=dict(session),
            user_id=self.linked,
            created_at=origin.created_at,
            updated_at=now,
            last_seen_at=last_seen_at,
            expires_at=expires_at,
            authenticated_at=now if fresh else origin.authenticated_at,
            user_agent=origin.user_agent,
            ip_address=self.context.client_address() or origin.ip_address,
        )
        return Outcome(
            Action.UPDATE,
            CookieAction.SET,
            record=record,
            token=token,
            target=origin.id if token is not None else None,
        )

    def _decide_new(self, session: ServerSession, now: datetime) -> Outcome:
        origin = self.origin
        target = origin.id if origin is not None else None
        if not session:
            if target is not None or (
                self.cookie is not CookieState.ABSENT and (session.modified or self.replaced)
            ):
                # The request ended or emptied the session.
                cookie = CookieAction.REMOVE
            else:
                cookie = CookieAction.KEEP
            action = Action.DELETE if target is not None else Action.NOTHING
            return Outcome(action, cookie, target=target)
        self._check_size(session)
        # A new link is a login, whoever wrote the key: fresh unless
        # Flask-Login says otherwise (a remember cookie, fresh=False).
        fresh = self.linked is not None and dict.get(session, FRESH_KEY) is not False
        if self.token is None:
            self.token = tokens.new_token()
        context = self.context
        record = SessionRecord(
            id=tokens.session_id_for(self.token),
            data=dict(session),
            user_id=self.linked,
            created_at=now,
            updated_at=now,
            last_seen_at=now,
            expires_at=context.settings.expires_at(now, now),
            authenticated_at=now if fresh else None,
            user_agent=context.user_agent(),
            ip_address=context.client_address(),
        )
        return Outcome(
            Action.CREATE, CookieAction.SET, record=record, token=self.token, target=target
        )

    def _decide_unchanged(
        self, session: ServerSession, now: datetime, *, refresh_cookie: bool
    ) -> Outcome:
        origin = self.origin
        assert origin is not None
        settings = self.context.settings
        old_key = self.cookie is CookieState.OLD_KEY
        if not (old_key or settings.touch_due(origin.last_seen_at, now)):
            # Only a session handed over in this request is sent now. A
            # permanent session's cookie (SESSION_REFRESH_EACH_REQUEST) is
            # sent again when a touch finds the session still stored, and a
            # cookie signed with an old key is touched at once to be signed
            # again: re-sent unconfirmed, a cookie that another request of
            # the browser renamed meanwhile would sign the browser out.
            # Until the touch, the browser's cookie is the same token with
            # the same expiry.
            return _RESEND if self.resend else UNCHANGED
        resend = (
            self.resend
            or old_key
            or (refresh_cookie and bool(dict.get(session, "_permanent", False)))
        )
        cookie = CookieAction.SET if resend else CookieAction.KEEP
        record = replace(
            origin,
            last_seen_at=now,
            expires_at=settings.expires_at(origin.created_at, now),
            ip_address=self.context.client_address() or origin.ip_address,
        )
        return Outcome(Action.TOUCH, cookie, record=record, target=origin.id)

    def _fresh(self, session: ServerSession) -> bool:
        return (
            self.authenticated
            and self.linked is not None
            and dict.get(session, FRESH_KEY) is not False
        )

    def _check_size(self, session: ServerSession) -> None:
        self.context.store.serializer.dump(session, max_size=self.context.settings.max_data_size)

    # -- after the store ----------------------------------------------------------

    def stored(self, outcome: Outcome) -> None:
        """The store carried out ``outcome``: the session is that record now."""
        if outcome.action is Action.DELETE:
            self.record = None
        elif outcome.record is not None:
            self.record = outcome.record
            if outcome.token is not None:
                self.token = outcome.token
        self.origin = self.record
        self.replaced = self.ended = self.rotate = self.authenticated = self.resend = False
        self.written = None

    def discarded(self) -> list[str]:
        """The stored sessions the end of the request deletes besides what
        its outcome did: after a hand-over, the session the browser arrived
        with and those handed to it, but for the one it ends with.
        """
        if not self.handed:
            return []
        keep = self.record.id if self.record is not None else None
        ids = dict.fromkeys([self.arrived, *self.handed])
        return [i for i in ids if i is not None and i != keep]

    def undelivered(self) -> list[str]:
        """The sessions handed to the browser in a request that failed: it
        never gets them, and keeps the one it had.
        """
        return list(self.handed or ())

    def gone(self) -> None:
        """The stored session was deleted or revoked while the request ran:
        it stays gone.
        """
        self.record = self.origin = None
        self.token = None
        self.replaced = self.ended = self.rotate = self.authenticated = False
