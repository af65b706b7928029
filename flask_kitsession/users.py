"""What ``session.user`` is: built from the user columns loaded with the session.

- For kitsession's own ``user`` table, or a user table given as a
  :class:`~sqlalchemy.Table`: a read-only named tuple of the loaded fields.
- For a mapped class (a Flask-SQLAlchemy model, say): an instance of that
  class, built from the loaded columns without another query. It is
  *detached*; the first time a request reads ``session.user`` it joins the
  app's ORM session (Flask-SQLAlchemy's ``db.session``, or the one given to
  :class:`~flask_kitsession.KitSession`), without a query, so its other
  attributes and relationships load as usual. If the app has that user in
  its ORM session already, ``session.user`` is the app's instance, pending
  changes and all.

Both kinds answer Flask-Login's questions (``is_authenticated``,
``is_active``, ``is_anonymous``, ``get_id()``), the mapped class through its
own methods (Flask-Login's ``UserMixin``).
"""

from __future__ import annotations

import collections
import typing as t

import sqlalchemy as sa
from sqlalchemy import inspect
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import set_committed_value


class UserRowMixin:
    """Flask-Login's user protocol, for the named tuples kitsession builds."""

    __slots__ = ()

    #: The name of the field holding the id sessions link the user by.
    _key_field: t.ClassVar[str] = "id"

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """The user's id as a string, as Flask-Login wants it."""
        return str(getattr(self, self._key_field))


def row_class(field_names: t.Sequence[str], key_name: str) -> type[tuple[t.Any, ...]]:
    """Return the named-tuple class for users loaded with these fields."""
    base = collections.namedtuple("SessionUserFields", field_names, rename=True)  # type: ignore[misc]
    key_field = base._fields[list(field_names).index(key_name)] if key_name in field_names else "id"
    return type("SessionUser", (UserRowMixin, base), {"__slots__": (), "_key_field": key_field})


class UserFactory:
    """Builds ``session.user`` from the user columns a store loaded.

    :param user_model: The mapped class, or ``None`` for named tuples.
    :param columns: The loaded columns, in the order of the values.
    :param key: The column sessions link users by (the primary key, or the
        one ``get_id()`` returns): ``get_id()`` of the named tuples gives it.
    :param orm_session: Returns the ORM session to attach users to; by
        default a Flask-SQLAlchemy model's own ``db.session``.
    """

    def __init__(
        self,
        user_model: t.Any,
        columns: t.Sequence[sa.Column[t.Any]],
        key: sa.Column[t.Any],
        *,
        orm_session: t.Callable[[], t.Any] | None = None,
    ) -> None:
        names = [column.name for column in columns]
        self.mapper: Mapper[t.Any] | None = None
        if user_model is not None and not isinstance(user_model, (str, sa.Table)):
            mapper = sa.inspect(user_model, raiseerr=False)
            if isinstance(mapper, Mapper):
                self.mapper = mapper
        if self.mapper is not None:
            by_column = {prop.columns[0]: prop.key for prop in self.mapper.column_attrs}
            self.attributes = [by_column.get(column, column.name) for column in columns]
            if orm_session is None:
                extension = getattr(self.mapper.class_, "__fsa__", None)
                if extension is not None:
                    orm_session = lambda: extension.session  # noqa: E731
            self.orm_session = orm_session
            self.fields: tuple[str, ...] = tuple(self.attributes)
        else:
            self.row_class = row_class(names, key.name)
            self.orm_session = None
            self.fields = tuple(self.row_class._fields)  # type: ignore[attr-defined]

    def build(self, values: t.Sequence[t.Any]) -> t.Any:
        """Return the user for one row of loaded values."""
        if self.mapper is None:
            return self.row_class(*values)
        instance = self.mapper.class_manager.new_instance()
        for attribute, value in zip(self.attributes, values, strict=True):
            set_committed_value(instance, attribute, value)
        make_transient_to_detached(instance)
        return instance

    def attach(self, user: t.Any) -> t.Any:
        """Return the user as the app's ORM session knows it (no query).

        If the ORM session holds an instance with the same primary key
        already (the app loaded the user, and may have changed it), that
        instance is the user: it is never overwritten with the columns loaded
        with the session, which may be older than its pending changes.
        Otherwise the built user itself joins the ORM session, as a persistent
        instance: the app's later ``db.session.get()`` returns it.
        """
        if self.orm_session is None or user is None:
            return user
        orm_session = self.orm_session()
        key = inspect(user).key
        present = orm_session.identity_map.get(key)
        if present is not None:
            return present
        orm_session.add(user)
        return user
