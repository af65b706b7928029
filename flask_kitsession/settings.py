"""The ``KITSESSION_*`` configuration keys: defaults, checks, and the expiry rule.

Cookie name, domain, path, ``Secure``, ``HttpOnly``, ``SameSite`` and
``Partitioned`` come from Flask's own ``SESSION_COOKIE_*`` keys; key rotation
from ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``. The keys here cover only what
Flask has no word for. They are read once, when ``init_app`` runs.
"""

from __future__ import annotations

import collections.abc
import difflib
import math
import typing as t
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta

#: Every key with its default. ``None`` for ``KITSESSION_IDLE_TIMEOUT`` means
#: "``PERMANENT_SESSION_LIFETIME``"; for ``KITSESSION_DATABASE_URL``, "a SQLite
#: file in the app's instance folder"; for ``KITSESSION_REDIS_URL``, "sessions in
#: the SQL database, not Redis".
DEFAULTS: dict[str, t.Any] = {
    "KITSESSION_DATABASE_URL": None,
    "KITSESSION_ENGINE_OPTIONS": {},
    "KITSESSION_USER_MODEL": None,
    "KITSESSION_USER_FIELDS": None,
    "KITSESSION_USER_ID_COLUMN": None,
    "KITSESSION_IDLE_TIMEOUT": None,
    "KITSESSION_ABSOLUTE_TIMEOUT": None,
    "KITSESSION_TOUCH_INTERVAL": timedelta(seconds=60),
    "KITSESSION_SIGN_COOKIE": True,
    "KITSESSION_TRACK_USER_AGENT": True,
    "KITSESSION_TRACK_IP": True,
    "KITSESSION_MAX_DATA_SIZE": 64 * 1024,
    "KITSESSION_CARRY_OVER_KEYS": (),
    "KITSESSION_USER_ID_KEYS": ("user_id", "_user_id", "userId", "id"),
    "KITSESSION_REAUTHENTICATE_VIEW": None,
    "KITSESSION_REDIS_URL": None,
    "KITSESSION_REDIS_PREFIX": "kitsession:",
    "KITSESSION_REDIS_CLUSTER": False,
    "KITSESSION_REDIS_SENTINELS": None,
}

#: What each key means: the one place it is written. The documentation's
#: configuration page renders it with :data:`DEFAULTS`, and a test checks that
#: every key of :data:`DEFAULTS` is here. ``Code`` in double backticks reads
#: the same in reStructuredText and Markdown; nothing else is markup.
DOCUMENTATION: dict[str, str] = {
    "KITSESSION_DATABASE_URL": (
        "SQLAlchemy URL of the session database. ``None``: the SQLite file"
        " ``kitsession.sqlite3`` in the app's instance folder."
    ),
    "KITSESSION_ENGINE_OPTIONS": (
        "Keyword arguments for ``sqlalchemy.create_engine`` (pool size and so on)."
    ),
    "KITSESSION_USER_MODEL": (
        "The app's user table: a mapped class, a ``Table`` or an import string"
        ' (``"myapp.models:User"``). ``None``: kitsession\'s own ``user`` table.'
    ),
    "KITSESSION_USER_FIELDS": (
        "User columns loaded into ``session.user``. ``None``: every column whose"
        " name does not contain ``password``."
    ),
    "KITSESSION_USER_ID_COLUMN": (
        "The unique column of the user table whose value ``get_id()`` returns (a"
        " Flask-Login alternative token): sessions link users by it. ``None``:"
        " ``fs_uniquifier`` if the table has it (Flask-Security), else the primary"
        " key. See {doc}`flask-security`."
    ),
    "KITSESSION_IDLE_TIMEOUT": (
        "A session unused for this long expires (sliding expiry). A ``timedelta``"
        " or seconds. ``None``: ``PERMANENT_SESSION_LIFETIME``."
    ),
    "KITSESSION_ABSOLUTE_TIMEOUT": (
        "A session expires this long after it was created, however often it is"
        " used. ``None``: no such limit."
    ),
    "KITSESSION_TOUCH_INTERVAL": (
        "A session's last-seen time and expiry move at most this often: an"
        " unchanged session is written only then, and a write in between keeps"
        " them (so PostgreSQL updates the row in place). Must be shorter than the"
        " idle timeout."
    ),
    "KITSESSION_SIGN_COOKIE": (
        "Sign the token with ``SECRET_KEY``. Off: the cookie is the bare 256-bit token."
    ),
    "KITSESSION_TRACK_USER_AGENT": (
        "Store the user agent (cut to 512 characters) of the request that creates a session."
    ),
    "KITSESSION_TRACK_IP": (
        "Store the client address (``request.remote_addr``; behind a proxy, use"
        " Werkzeug's ``ProxyFix``)."
    ),
    "KITSESSION_MAX_DATA_SIZE": (
        "Largest session data, in characters of JSON. Larger data raises"
        " ``SessionDataError`` where it is set. ``None``: no limit."
    ),
    "KITSESSION_CARRY_OVER_KEYS": (
        "Keys of the session (a cart, a next URL) kept when a login"
        " (``with_new_session``, Flask-Login's ``login_user``) starts the"
        ' logged-in one; ``"*"`` keeps them all, as Flask\'s cookie session does.'
        " Never carried from one user to another. Flask-WTF's CSRF token"
        " (``WTF_CSRF_FIELD_NAME``) is carried this way in any case."
    ),
    "KITSESSION_USER_ID_KEYS": (
        "The session keys that name the session's user: the first one present,"
        " in this order, in stored data; the one written, when a request writes"
        " one. Writing one of them is a login: the session gets a new token and"
        " is linked to that user. An app that keeps something else under"
        ' ``id`` (a cart, a last-viewed item) removes ``"id"`` from this list.'
    ),
    "KITSESSION_REDIS_URL": (
        "Keep sessions in Redis at this URL (``redis://host:6379/0``,"
        " ``rediss://...``) instead of SQL; ``session.user`` is still read from"
        " ``KITSESSION_DATABASE_URL``. Needs the ``redis`` extra."
    ),
    "KITSESSION_REDIS_PREFIX": (
        "Put before every Redis key kitsession writes, so several apps can share a Redis database."
    ),
    "KITSESSION_REDIS_CLUSTER": (
        "``KITSESSION_REDIS_URL`` names a node of a Redis Cluster: the client finds the"
        " others and spreads sessions over the masters. See the scaling page."
    ),
    "KITSESSION_REDIS_SENTINELS": (
        'Sentinels (``["host:26379", ...]`` or one comma-separated string) that name'
        " the Redis master; ``KITSESSION_REDIS_URL`` then names the master set, as"
        " ``redis://mymaster/0``. See the scaling page."
    ),
    "KITSESSION_REAUTHENTICATE_VIEW": (
        "The endpoint ``fresh_login_required`` sends a stale login to (with"
        " ``next``); ``None``: answer ``401``."
    ),
}


#: The longest timeout or interval: about a thousand years.
MAX_DURATION = timedelta(days=365_000)


def _duration(
    config: t.Mapping[str, t.Any], key: str, *, optional: bool = False
) -> timedelta | None:
    value = config[key]
    if value is None and optional:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number of seconds, got {value!r}.")
        try:
            value = timedelta(seconds=value)
        except OverflowError:
            raise ValueError(
                f"{key} must be at most {MAX_DURATION.days} days, got {value!r} seconds."
            ) from None
    if not isinstance(value, timedelta):
        raise TypeError(f"{key} must be a timedelta or a number of seconds, got {value!r}.")
    if value <= timedelta(0):
        raise ValueError(f"{key} must be positive, got {value!r}.")
    if value > MAX_DURATION:
        # Expiry times are computed from it: beyond this, they would not fit
        # in a datetime.
        raise ValueError(f"{key} must be at most {MAX_DURATION.days} days, got {value!r}.")
    return value


@dataclass(frozen=True)
class Settings:
    """The app's session settings, checked.

    .. versionadded:: 0.1
    """

    #: A session not used for this long expires (sliding expiry).
    idle_timeout: timedelta
    #: A session expires this long after it was created, however often it is
    #: used; ``None`` for no such limit.
    absolute_timeout: timedelta | None = None
    #: A session's last-seen time and expiry move at most once per interval:
    #: an unchanged session is written only then, a changed one keeps them.
    touch_interval: timedelta = timedelta(seconds=60)
    #: Sign the cookie with the app's secret keys.
    sign_cookie: bool = True
    #: Store the user agent of the request that creates a session.
    track_user_agent: bool = True
    #: Store the client address of the session's requests.
    track_ip: bool = True
    #: Largest session data, in characters of JSON; ``None`` for no limit.
    max_data_size: int | None = 64 * 1024
    #: Keys of an anonymous session kept when a login starts a new session.
    carry_over_keys: tuple[str, ...] = ()
    #: Carry every key over (``KITSESSION_CARRY_OVER_KEYS = "*"``): the
    #: behaviour of Flask's cookie session under Flask-Login.
    carry_over_all: bool = False
    #: Keys of the session data that name the session's user; the first one
    #: present (and not ``None``) wins. Writing one of them links the session
    #: to that user (a login: the session gets a new token).
    user_id_keys: tuple[str, ...] = ("user_id", "_user_id", "userId", "id")
    #: The endpoint :func:`~flask_kitsession.fresh_login_required` sends a
    #: login that is not fresh to; ``None`` answers ``401``.
    reauthenticate_view: str | None = None
    #: The session key of Flask-WTF's CSRF token (``WTF_CSRF_FIELD_NAME``).
    csrf_key: str = "csrf_token"

    def __post_init__(self) -> None:
        if self.touch_interval >= self.idle_timeout:
            raise ValueError(
                f"KITSESSION_TOUCH_INTERVAL ({self.touch_interval}) must be shorter"
                f" than the idle timeout ({self.idle_timeout}), or sessions in use"
                " would expire."
            )

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Read and check the ``KITSESSION_*`` keys of an app's config.

        :raises TypeError: or :exc:`ValueError`, naming the key that is wrong.
        """
        check_keys(config)
        idle = _duration(config, "KITSESSION_IDLE_TIMEOUT", optional=True)
        if idle is None:
            idle = _duration(config, "PERMANENT_SESSION_LIFETIME")
        assert idle is not None
        max_size = config["KITSESSION_MAX_DATA_SIZE"]
        if max_size is not None and (
            not isinstance(max_size, int) or isinstance(max_size, bool) or max_size <= 0
        ):
            raise ValueError(
                f"KITSESSION_MAX_DATA_SIZE must be a positive int or None, got {max_size!r}."
            )
        keys = config["KITSESSION_CARRY_OVER_KEYS"]
        carry_over_all = keys == "*"
        if carry_over_all:
            keys = ()
        elif isinstance(keys, str):
            raise TypeError(
                'KITSESSION_CARRY_OVER_KEYS must be a list of keys, or "*" for all of them,'
                f" not the string {keys!r}."
            )
        elif not isinstance(keys, (list, tuple, set, frozenset)):
            raise TypeError(
                'KITSESSION_CARRY_OVER_KEYS must be a list of keys, or "*" for all of them,'
                f" not {keys!r}."
            )
        elif not all(isinstance(key, str) for key in keys):
            raise TypeError(f"KITSESSION_CARRY_OVER_KEYS must hold strings, not {keys!r}.")
        elif "*" in keys:
            raise ValueError(
                'KITSESSION_CARRY_OVER_KEYS: "*" carries every key only on its own, as'
                f' the string "*", not in a list: {keys!r}.'
            )
        touch = _duration(config, "KITSESSION_TOUCH_INTERVAL")
        assert touch is not None
        user_id_keys = config["KITSESSION_USER_ID_KEYS"]
        if (
            isinstance(user_id_keys, str)
            or not user_id_keys
            or not all(isinstance(key, str) for key in user_id_keys)
        ):
            raise TypeError(
                "KITSESSION_USER_ID_KEYS must be a non-empty list of the session keys that"
                f" name the user, such as ['user_id', '_user_id'], not {user_id_keys!r}."
            )
        view = config["KITSESSION_REAUTHENTICATE_VIEW"]
        if view is not None and not isinstance(view, str):
            raise TypeError(
                f"KITSESSION_REAUTHENTICATE_VIEW must be an endpoint name or None, not {view!r}."
            )
        return cls(
            idle_timeout=idle,
            absolute_timeout=_duration(config, "KITSESSION_ABSOLUTE_TIMEOUT", optional=True),
            touch_interval=touch,
            sign_cookie=config["KITSESSION_SIGN_COOKIE"],
            track_user_agent=config["KITSESSION_TRACK_USER_AGENT"],
            track_ip=config["KITSESSION_TRACK_IP"],
            max_data_size=max_size,
            carry_over_keys=tuple(keys),
            carry_over_all=carry_over_all,
            user_id_keys=tuple(user_id_keys),
            reauthenticate_view=view,
            csrf_key=str(config.get("WTF_CSRF_FIELD_NAME") or "csrf_token"),
        )

    def carries(self, key: str) -> bool:
        """Whether a login carries ``key`` into the new session (but never
        from one user to another): the keys of ``KITSESSION_CARRY_OVER_KEYS``,
        and Flask-WTF's CSRF token, so that a page or a JavaScript client
        holding it before the login goes on working (docs/security.md,
        section 9).
        """
        return self.carry_over_all or key in self.carry_over_keys or key == self.csrf_key

    def expires_at(self, created_at: datetime, now: datetime) -> datetime:
        """When a session created at ``created_at`` and used at ``now`` expires:
        the idle timeout from now, capped by the absolute timeout.
        """
        expires = now + self.idle_timeout
        if self.absolute_timeout is not None:
            expires = min(expires, created_at + self.absolute_timeout)
        return expires

    def touch_due(self, last_seen_at: datetime, now: datetime) -> bool:
        """Whether an unchanged session last seen at ``last_seen_at`` must be
        written at ``now`` to keep its sliding expiry.
        """
        return now - last_seen_at >= self.touch_interval


#: Keys that take ``True`` or ``False`` only: a string such as ``"false"``
#: would count as true.
BOOLEAN_KEYS = (
    "KITSESSION_SIGN_COOKIE",
    "KITSESSION_TRACK_USER_AGENT",
    "KITSESSION_TRACK_IP",
    "KITSESSION_REDIS_CLUSTER",
)


def check_keys(config: t.Mapping[str, t.Any]) -> None:
    """Refuse a ``KITSESSION_*`` key kitsession does not have (a typo), and
    the values of the keys that only the store reads, naming the key.

    :raises TypeError: or :exc:`ValueError`.
    """
    for key in config:
        if key.startswith("KITSESSION_") and key not in DEFAULTS:
            close = difflib.get_close_matches(key, DEFAULTS, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ValueError(f"{key} is not a flask-kitsession setting.{hint}")
    for key in BOOLEAN_KEYS:
        if not isinstance(config[key], bool):
            raise TypeError(f"{key} must be True or False, not {config[key]!r}.")
    if not isinstance(config["KITSESSION_ENGINE_OPTIONS"], collections.abc.Mapping):
        raise TypeError(
            "KITSESSION_ENGINE_OPTIONS must be a dict of create_engine() arguments,"
            f" not {config['KITSESSION_ENGINE_OPTIONS']!r}."
        )
    url = config["KITSESSION_DATABASE_URL"]
    if url is not None:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if not isinstance(url, str) and type(url).__name__ != "URL":
            raise TypeError(f"KITSESSION_DATABASE_URL must be a URL string, not {url!r}.")
        from .stores.sqlerrors import check_url

        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ValueError(
                "KITSESSION_DATABASE_URL is not a database URL (such as"
                " postgresql+psycopg://user@host/db or sqlite:///sessions.sqlite3)."
            ) from None
        try:
            check_url(parsed)
        except ValueError as e:
            raise ValueError(f"KITSESSION_DATABASE_URL: {e}") from None
    check_user_fields(config["KITSESSION_USER_FIELDS"])
    for key in ("KITSESSION_REDIS_URL", "KITSESSION_REDIS_PREFIX"):
        value = config[key]
        if not (isinstance(value, str) or (value is None and key == "KITSESSION_REDIS_URL")):
            raise TypeError(f"{key} must be a string, not {value!r}.")


def check_user_fields(fields: t.Any) -> None:
    """Refuse a ``KITSESSION_USER_FIELDS`` (or ``user_fields=``) that is not
    ``None`` or column names: ``[1]`` would pick a column by its position.

    :raises TypeError: naming the key.
    """
    if fields is not None and (
        isinstance(fields, str)
        or not isinstance(fields, collections.abc.Iterable)
        or not all(isinstance(name, str) for name in fields)
    ):
        raise TypeError(
            "KITSESSION_USER_FIELDS must be a list of the user table's column names"
            f" (or None for every column but passwords), not {fields!r}."
        )
