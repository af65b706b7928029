"""Link sessions by the column ``get_id()`` returns, when it is not the primary key.

Flask-Security's users (``fs_uniquifier``) and Flask-Login apps with an
"alternative token" column (``KITSESSION_USER_ID_COLUMN``) store that column's
value as the session's user. The session table's ``user_id`` then takes that
column's type and its foreign key points at it, with ``ON UPDATE SET NULL``:
changing the value (Flask-Security does on a password change) unlinks the
sessions that named it, and kitsession signs them out. Stored sessions keep
their user: each is relinked through the user table, both ways.

Apps whose sessions link by the primary key (kitsession's own user table, or
no such column) are left as revision 0001 made them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import typing as t

import sqlalchemy as sa
from alembic import op

from flask_kitsession.migrate import migration_target

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

#: The column the relinked user ids are written to before it replaces ``user_id``.
_RELINKED = "user_id_relinked"


def upgrade() -> None:
    target = migration_target()
    if target.user_link is not None:
        _relink(source=target.user_key, destination=target.user_link, onupdate="SET NULL")


def downgrade() -> None:
    target = migration_target()
    if target.user_link is not None:
        _relink(source=target.user_link, destination=target.user_key, onupdate=None)


def _relink(
    *, source: sa.Column[t.Any], destination: sa.Column[t.Any], onupdate: str | None
) -> None:
    """Make ``session.user_id`` hold each session's user by ``destination``
    (a column of the user table) instead of ``source``, and point its foreign
    key at ``destination``.
    """
    user_table = destination.table
    assert isinstance(user_table, sa.Table)
    foreign_key = op.f(f"fk_session_user_id_{user_table.name}")
    with op.batch_alter_table("session") as batch:
        batch.add_column(sa.Column(_RELINKED, destination.type, nullable=True))
    session = sa.table("session", sa.column("user_id"), sa.column(_RELINKED))
    users = sa.table(
        user_table.name,
        sa.column(source.name),
        sa.column(destination.name),
        schema=user_table.schema,
    )
    # A session whose user is gone is left with no user: if its data names
    # one, kitsession signs it out when it is read.
    op.execute(
        session.update().values(
            {
                _RELINKED: sa.select(users.c[destination.name])
                .where(users.c[source.name] == session.c.user_id)
                .scalar_subquery()
            }
        )
    )
    with op.batch_alter_table("session") as batch:
        # The foreign key before the index: MySQL/MariaDB need the index for it.
        batch.drop_constraint(foreign_key, type_="foreignkey")
        batch.drop_index(op.f("ix_session_user_id"))
        batch.drop_column("user_id")
        batch.alter_column(
            _RELINKED,
            new_column_name="user_id",
            existing_type=destination.type,
            existing_nullable=True,
        )
    with op.batch_alter_table("session") as batch:
        batch.create_index(op.f("ix_session_user_id"), ["user_id"])
        batch.create_foreign_key(
            foreign_key,
            user_table.name,
            ["user_id"],
            [destination.name],
            referent_schema=user_table.schema,
            ondelete="CASCADE",
            onupdate=onupdate,
        )
