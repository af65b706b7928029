"""How session data is turned into JSON and back: one rule for every store.

A value is either stored and read back exactly -- the same types, the same
text, the same keys, on every store (memory, SQLite, PostgreSQL's JSONB,
MariaDB's JSON, Redis) -- or refused with :exc:`SessionDataError` where it is
set, naming the key and why.

Stored exactly: ``None``, ``bool``, ``int``, ``float`` (finite), ``str``,
``list``, ``tuple``, ``dict`` with string keys, ``bytes``, ``datetime``,
:class:`~uuid.UUID` and :class:`~markupsafe.Markup`, nested at will: what
Flask's own cookie session holds. The types beyond JSON's are kept through
the tags of :mod:`flask.json.tag` (a one-key object such as ``{" t": [1, 2]}``
for a tuple), written the way Flask writes them, so data moves between
stores, and from Flask's format, without loss.

Where Flask's format, or a database, would change a value, kitsession writes
it another way (see ``docs/session-data.md``):

- Text with a NUL character or a lone surrogate, which PostgreSQL's JSONB
  and MariaDB's JSON refuse (and which a JSON reader turns into another
  string), is written as ``{" ks": [text, code point, text, ...]}``; a dict
  with such a key as ``{" kk": [[key, value], ...]}``. Encoded rather than
  refused: a visitor can send a NUL in any form field.
- A float written with an exponent (``1e+16``), or ``-0.0``, which JSONB
  reads back as an integer or as ``0.0``, as ``{" kf": "1e+16"}``.
- A datetime as ``{" kt": isoformat}``: to the microsecond, naive or with its
  UTC offset, and with its :class:`~zoneinfo.ZoneInfo` zone and ``fold`` when
  it has one. (Flask's ``" d"`` tag keeps whole seconds in UTC only; data
  written with it is still read.)

Refused: other types, including subclasses of the types above (an
``IntEnum``, an ``OrderedDict``, a named tuple), which would come back as
the plain type; dict keys that are not strings; NaN and infinities. Error
and log messages name keys and types, never values: session data stays out
of logs.
"""

from __future__ import annotations

import json
import logging
import math
import re
import typing as t
import uuid
from base64 import b64decode
from base64 import b64encode
from datetime import datetime
from datetime import timezone
from zoneinfo import ZoneInfo

from markupsafe import Markup
from werkzeug.http import parse_date

from .exceptions import SessionDataError

logger = logging.getLogger("flask_kitsession")

# Flask's tags (flask.json.tag), read and written the way Flask does.
TAG_DICT = " di"
TAG_TUPLE = " t"
TAG_BYTES = " b"
TAG_MARKUP = " m"
TAG_UUID = " u"
#: Flask's datetime tag (an HTTP date: whole seconds, UTC); read, no longer written.
TAG_HTTP_DATE = " d"
# kitsession's own, for what Flask's format or a database would change.
TAG_TEXT = " ks"
TAG_KEYS = " kk"
TAG_FLOAT = " kf"
TAG_DATETIME = " kt"

#: What JSONB and MariaDB's JSON cannot hold in a string: NUL, and surrogate
#: code points (a lone one is not text; a pair is read back as one character).
_UNSTORABLE = re.compile("([\x00\ud800-\udfff])")

#: Plain types the stored form keeps, for the message about a subclass.
_PLAIN_TYPES: tuple[type, ...] = (bool, int, float, str, bytes, list, tuple, dict, datetime)


class _Refused(Exception):
    """A value that cannot be stored; ``path`` is filled in on the way up."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[t.Any] = []


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


#: "The serializer's own :attr:`~SessionSerializer.max_size`".
DEFAULT: t.Final = _Default()


class SessionSerializer:
    """Turns session data into a JSON-compatible value and back.

    :param max_size: Largest encoded size, in characters of compact JSON, that
        :meth:`dump` accepts. ``None`` for no limit.
    """

    def __init__(self, max_size: int | None = None) -> None:
        self.max_size = max_size

    def dump(
        self, data: t.Mapping[str, t.Any], *, max_size: int | None | _Default = DEFAULT
    ) -> tuple[t.Any, str]:
        """Return ``(value, text)``: the JSON-compatible value to store and its
        compact JSON text.

        :param max_size: The size limit (``None``: none); :attr:`max_size` by
            default. An app's own limit (``KITSESSION_MAX_DATA_SIZE``) is passed
            here, so that a store shared by several apps keeps each app's.
        :raises SessionDataError: if a value cannot be stored exactly (see the
            module's documentation), or the data is larger than the limit.
            Nothing has been written then.
        """
        limit = self.max_size if isinstance(max_size, _Default) else max_size
        for key in data:
            _check_key(key)
        try:
            value = _encode(dict(data))
        except _Refused as e:
            raise SessionDataError(_message(e.path, e.reason)) from None
        except RecursionError:
            raise SessionDataError(
                "The session data cannot be stored: it is nested too deeply."
            ) from None
        _check_depth(value, "The session data", inside=0)
        text = _json_text(value, "The session data")
        if limit is not None and len(text) > limit:
            raise SessionDataError(
                f"The session data is {len(text)} characters of JSON, more than"
                f" the limit of {limit} (KITSESSION_MAX_DATA_SIZE). Keep"
                " large data in your own tables and only its key in the session."
            )
        return value, text

    def check_value(
        self, key: t.Any, value: t.Any, *, max_size: int | None | _Default = DEFAULT
    ) -> None:
        """Raise :exc:`SessionDataError` now if ``session[key] = value`` could
        never be stored exactly: a key that is not a string, a value the
        module's rule refuses, or one larger alone than the size limit.

        The session calls it on every assignment, so the error points at the
        line that made the mistake. :meth:`dump` still checks the whole data
        when it is saved (a value changed in place, the total size).

        :param max_size: As for :meth:`dump`.
        """
        limit = self.max_size if isinstance(max_size, _Default) else max_size
        _check_key(key)
        try:
            encoded = _encode(value)
        except _Refused as e:
            raise SessionDataError(_message([key, *e.path], e.reason)) from None
        except RecursionError:
            raise SessionDataError(
                f"{_where([key])} cannot be stored: it is nested too deeply."
            ) from None
        _check_depth(encoded, _where([key]), inside=VALUE_LEVEL)
        text = _json_text(encoded, _where([key]))
        if limit is not None and len(text) > limit:
            raise SessionDataError(
                f"{_where([key])} is {len(text)} characters of JSON, more than the"
                f" limit of {limit} for the whole session"
                " (KITSESSION_MAX_DATA_SIZE). Keep large data in your own tables"
                " and only its key in the session."
            )

    def dumps(self, data: t.Mapping[str, t.Any]) -> str:
        """Return the compact JSON text of ``data`` (see :meth:`dump`)."""
        return self.dump(data)[1]

    def load(self, value: t.Any) -> dict[str, t.Any]:
        """Return the session data from a stored JSON-compatible value.

        Stored data that cannot be read back (edited by hand into something
        that is not an object, say) gives empty data and a warning on the
        ``flask_kitsession`` logger rather than a failed request. The warning
        names the kind of problem only, never the data.
        """
        try:
            if isinstance(value, (str, bytes)):
                # Some drivers hand JSON columns back as text.
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError
            # The top-level object is tagged like any other (a single key
            # named like a tag is escaped), so it is read back like any other.
            data = _decode(value)
            if not isinstance(data, dict):
                raise ValueError
            return data
        except (
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            AttributeError,
            OverflowError,
            RecursionError,
        ) as e:
            logger.warning(
                "Stored session data cannot be read (%s); using empty data.", type(e).__name__
            )
            return {}

    def loads(self, text: str | bytes) -> dict[str, t.Any]:
        """Return the session data from its JSON text."""
        return self.load(text)


# -- writing ------------------------------------------------------------------


def _encode(value: t.Any) -> t.Any:
    """Return the JSON-compatible form of ``value``.

    :raises _Refused: naming why, with the path to the value.
    """
    kind = type(value)
    if kind is str:
        return _encode_text(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise _Refused("JSON has no NaN or infinity")
        text = repr(value)
        if "e" in text or (value == 0.0 and math.copysign(1.0, value) < 0):
            return {TAG_FLOAT: text}
        return value
    if kind is dict:
        return _encode_dict(value)
    if kind is list:
        return _encode_items(value)
    if kind is tuple:
        return {TAG_TUPLE: _encode_items(value)}
    if kind is bytes:
        return {TAG_BYTES: b64encode(value).decode("ascii")}
    if kind is datetime:
        return _encode_datetime(value)
    if kind is uuid.UUID:
        return {TAG_UUID: value.hex}
    if kind is Markup:
        return {TAG_MARKUP: _encode_text(str(value))}
    raise _Refused(_why_not(value))


def _encode_items(items: t.Sequence[t.Any]) -> list[t.Any]:
    encoded = []
    for index, item in enumerate(items):
        try:
            encoded.append(_encode(item))
        except _Refused as e:
            e.path.insert(0, index)
            raise
    return encoded


def _encode_dict(value: dict[t.Any, t.Any]) -> dict[str, t.Any]:
    escaped_keys = False
    for key in value:
        if type(key) is not str:
            raise _Refused(f"keys must be strings, this one is a {type(key).__name__}")
        if _needs_escape(key):
            escaped_keys = True
    encoded = {}
    for key, item in value.items():
        try:
            encoded[key] = _encode(item)
        except _Refused as e:
            e.path.insert(0, key)
            raise
    if escaped_keys:
        return {TAG_KEYS: [[_encode_text(key), item] for key, item in encoded.items()]}
    if len(encoded) == 1:
        key = next(iter(encoded))
        if key in _DECODERS:
            # A one-key dict whose key is a tag's name: escaped as Flask does.
            return {TAG_DICT: {f"{key}__": encoded[key]}}
    return encoded


def _needs_escape(text: str) -> bool:
    if text.isascii():
        return "\x00" in text
    return _UNSTORABLE.search(text) is not None


def _encode_text(text: str) -> t.Any:
    if not _needs_escape(text):
        return text
    parts: list[str | int] = []
    for index, part in enumerate(_UNSTORABLE.split(text)):
        # split() with a group alternates text and the matched code points.
        if index % 2:
            parts.append(ord(part))
        elif part:
            parts.append(part)
    return {TAG_TEXT: parts}


def _encode_datetime(value: datetime) -> dict[str, t.Any]:
    zone = value.tzinfo
    if isinstance(zone, ZoneInfo) and zone.key is not None:
        # The wall time, its zone and fold: the value itself, not just the
        # instant (adding a day keeps to the zone's clock, DST included).
        wall = value.replace(tzinfo=None, fold=0).isoformat()
        return {TAG_DATETIME: [wall, zone.key, value.fold]}
    if zone is not None and not _is_plain_offset(zone):
        raise _Refused(
            # The zone's type only: its name and offset are the value's own.
            f"its tzinfo, a {type(zone).__name__} (with a name, or not a fixed"
            " offset), would be read back as a bare UTC offset: use a"
            " zoneinfo.ZoneInfo zone, or datetime.timezone(offset) without a name"
        )
    if value.fold:
        return {TAG_DATETIME: [value.replace(fold=0).isoformat(), None, 1]}
    # Naive, or with a fixed UTC offset that isoformat() keeps.
    return {TAG_DATETIME: value.isoformat()}


def _is_plain_offset(zone: t.Any) -> bool:
    """Whether ``zone`` is a ``datetime.timezone`` that reading its UTC
    offset back makes again: one without a name of its own.
    """
    if type(zone) is not timezone:
        return False
    offset = zone.utcoffset(None)
    return zone == timezone(offset) and zone.tzname(None) == timezone(offset).tzname(None)


def _why_not(value: t.Any) -> str:
    name = type(value).__name__
    for plain in _PLAIN_TYPES:
        if isinstance(value, plain):
            return (
                f"it is a {name}, which would be read back as a plain {plain.__name__}:"
                f" store {plain.__name__}(value) (or, for an enum, value.value)"
            )
    if callable(getattr(value, "__html__", None)):
        return f"it is a {name}: store Markup(value.__html__())"
    return (
        f"it is a {name}. Session values are None, bool, int, float, str, list,"
        " tuple, dict with string keys, bytes, datetime, UUID or Markup"
    )


def _json_text(value: t.Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        # Only an int too long for Python to write as text is left here
        # (sys.set_int_max_str_digits); it could not be read back either.
        raise SessionDataError(
            f"{what} cannot be stored: it holds an integer with more digits than"
            " Python turns into text."
        ) from None


def _where(path: t.Sequence[t.Any]) -> str:
    return "session" + "".join(f"[{step!r}]" for step in path)


def _message(path: t.Sequence[t.Any], reason: str) -> str:
    if not path:
        return f"The session data cannot be stored as JSON exactly: {reason}."
    return f"{_where(path)} cannot be stored as JSON exactly: {reason}."


def _check_key(key: t.Any) -> None:
    if type(key) is not str:
        # Its type only: a key is session data too.
        raise SessionDataError(
            f"Session keys must be strings, got a key of type {type(key).__name__}."
        )


#: The deepest nesting of the stored JSON, the top-level object counted: the
#: most MariaDB's JSON column accepts (its JSON_VALID refuses documents 32
#: levels deep), so the rule is the same on every backend.
MAX_DEPTH = 31
#: How deep a value of the session can sit in the stored JSON: under the
#: session's own object, or under the escapes of its keys (a key with NUL is
#: stored as ``{" kk": [[key, value]]}``). A value set with at most
#: ``MAX_DEPTH - VALUE_LEVEL`` levels is stored, whatever the other keys.
VALUE_LEVEL = 3


def _depth(value: t.Any) -> int:
    """How deeply JSON-compatible ``value`` nests objects and arrays."""
    deepest = 0
    pending = [(value, 1)]
    while pending:
        item, level = pending.pop()
        kind = type(item)
        if kind is dict:
            children: t.Iterable[t.Any] = item.values()
        elif kind is list:
            children = item
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in children if type(child) in (dict, list))
    return deepest


def _check_depth(encoded: t.Any, where: str, *, inside: int) -> None:
    """Refuse ``encoded`` if, ``inside`` levels down, it nests deeper than
    any backend stores.
    """
    depth = _depth(encoded)
    if depth + inside > MAX_DEPTH:
        raise SessionDataError(
            f"{where} cannot be stored: it nests {depth} levels deep as JSON (tagged"
            f" values count), more than the {MAX_DEPTH - inside} that every database"
            f" accepts there (MariaDB's JSON holds {MAX_DEPTH} in all)."
        )


# -- reading ------------------------------------------------------------------


def _decode(value: t.Any) -> t.Any:
    """Return the Python value of a stored JSON value, inner values first (a
    tag's content is read before the tag).
    """
    if type(value) is list:
        return [_decode(item) for item in value]
    if type(value) is dict:
        if len(value) == 1:
            key, item = next(iter(value.items()))
            decoder = _DECODERS.get(key)
            if decoder is not None:
                return decoder(_decode(item))
        return {key: _decode(item) for key, item in value.items()}
    return value


def _decode_dict(value: t.Any) -> dict[str, t.Any]:
    [(key, item)] = value.items()
    if not key.endswith("__"):
        raise ValueError
    return {key[:-2]: item}


def _decode_keys(pairs: t.Any) -> dict[str, t.Any]:
    data = {}
    for key, item in _list(pairs):
        if type(key) is not str:
            raise TypeError
        data[key] = item
    return data


def _decode_text(parts: t.Any) -> str:
    return "".join(chr(part) if type(part) is int else _text(part) for part in _list(parts))


def _decode_datetime(value: t.Any) -> datetime:
    if type(value) is str:
        return datetime.fromisoformat(value)
    wall, zone, fold = value
    found = datetime.fromisoformat(_text(wall))
    if zone is not None:
        found = found.replace(tzinfo=ZoneInfo(_text(zone)))
    return found.replace(fold=int(fold))


def _decode_http_date(value: t.Any) -> datetime:
    found = parse_date(_text(value))
    if found is None:
        raise ValueError
    return found


def _list(value: t.Any) -> list[t.Any]:
    if type(value) is not list:
        raise TypeError
    return value


def _text(value: t.Any) -> str:
    if type(value) is not str:
        raise TypeError
    return value


_DECODERS: dict[str, t.Callable[[t.Any], t.Any]] = {
    TAG_DICT: _decode_dict,
    TAG_TUPLE: lambda items: tuple(_list(items)),
    TAG_BYTES: lambda text: b64decode(_text(text)),
    TAG_MARKUP: lambda text: Markup(_text(text)),
    TAG_UUID: lambda text: uuid.UUID(_text(text)),
    TAG_HTTP_DATE: _decode_http_date,
    TAG_TEXT: _decode_text,
    TAG_KEYS: _decode_keys,
    TAG_FLOAT: lambda text: float(_text(text)),
    TAG_DATETIME: _decode_datetime,
}
