"""How session data is turned into JSON and back.

The data may hold what Flask's own cookie session holds: besides JSON's types,
tuples, bytes, datetimes, UUIDs and :class:`~markupsafe.Markup`, kept through
the tags of :mod:`flask.json.tag`. Every store uses the same serializer, so a
session moves between stores without loss.
"""

from __future__ import annotations

import json
import logging
import typing as t

from flask.json.tag import TaggedJSONSerializer

from .exceptions import SessionDataError

logger = logging.getLogger("flask_kitsession")


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
        self._tagger = TaggedJSONSerializer()

    def dump(
        self, data: t.Mapping[str, t.Any], *, max_size: int | None | _Default = DEFAULT
    ) -> tuple[t.Any, str]:
        """Return ``(value, text)``: the JSON-compatible value to store and its
        compact JSON text.

        :param max_size: The size limit (``None``: none); :attr:`max_size` by
            default. An app's own limit (``KITSESSION_MAX_DATA_SIZE``) is passed
            here, so that a store shared by several apps keeps each app's.
        :raises SessionDataError: if the data cannot be represented as JSON or
            is larger than the limit. Nothing has been written then.
        """
        limit = self.max_size if isinstance(max_size, _Default) else max_size
        for key in data:
            _check_key(key)
        try:
            value, text = self._encode(dict(data))
        except (TypeError, ValueError) as e:
            bad = [key for key, item in data.items() if not self._encodes(item)]
            raise SessionDataError(
                f"The session data cannot be stored as JSON: {e}. Keys {bad} hold"
                " values that are not JSON types (or tuples, bytes, datetimes, UUIDs)."
            ) from e
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
        never be stored: a key that is not a string, a value that is not
        JSON (or a tag), or one larger alone than :attr:`max_size`.

        The session calls it on every assignment, so the error points at the
        line that made the mistake. :meth:`dump` still checks the whole data
        when it is saved (a value changed in place, the total size).

        :param max_size: As for :meth:`dump`.
        """
        limit = self.max_size if isinstance(max_size, _Default) else max_size
        _check_key(key)
        try:
            _, text = self._encode(value)
        except (TypeError, ValueError) as e:
            raise SessionDataError(
                f"session[{key!r}] cannot be stored as JSON: {e}. Session values"
                " must be JSON types (or tuples, bytes, datetimes, UUIDs, Markup)."
            ) from e
        if limit is not None and len(text) > limit:
            raise SessionDataError(
                f"session[{key!r}] is {len(text)} characters of JSON, more than the"
                f" limit of {limit} for the whole session"
                " (KITSESSION_MAX_DATA_SIZE). Keep large data in your own tables"
                " and only its key in the session."
            )

    def _encode(self, value: t.Any) -> tuple[t.Any, str]:
        """Return the tagged value and its compact JSON text.

        :raises TypeError: or :exc:`ValueError` if JSON cannot hold it.
        """
        tagged = self._tagger.tag(value)
        return tagged, json.dumps(tagged, separators=(",", ":"), allow_nan=False)

    def _encodes(self, value: t.Any) -> bool:
        try:
            self._encode(value)
        except (TypeError, ValueError):
            return False
        return True

    def dumps(self, data: t.Mapping[str, t.Any]) -> str:
        """Return the compact JSON text of ``data`` (see :meth:`dump`)."""
        return self.dump(data)[1]

    def load(self, value: t.Any) -> dict[str, t.Any]:
        """Return the session data from a stored JSON-compatible value.

        Stored data that cannot be read back (edited by hand into something
        that is not an object, say) gives empty data and a warning on the
        ``flask_kitsession`` logger rather than a failed request.
        """
        try:
            if isinstance(value, (str, bytes)):
                # Some drivers hand JSON columns back as text.
                value = json.loads(value)
            if not isinstance(value, dict):
                raise ValueError(f"expected a JSON object, found {type(value).__name__}")
            untag = self._untag
            return {key: untag(item) for key, item in value.items()}
        except (ValueError, TypeError, KeyError, IndexError) as e:
            logger.warning("Stored session data cannot be read (%s); using empty data.", e)
            return {}

    def loads(self, text: str | bytes) -> dict[str, t.Any]:
        """Return the session data from its JSON text."""
        return self.load(text)

    def _untag(self, value: t.Any) -> t.Any:
        if isinstance(value, dict):
            untag = self._untag
            return self._tagger.untag({key: untag(item) for key, item in value.items()})
        if isinstance(value, list):
            return [self._untag(item) for item in value]
        return value


def _check_key(key: t.Any) -> None:
    if not isinstance(key, str):
        raise SessionDataError(f"Session keys must be strings, got {key!r} ({type(key).__name__}).")
