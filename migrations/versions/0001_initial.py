"""Create the session table (and the default user table).

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from flask_kitsession.migrate import first_revision_depends_on
from flask_kitsession.migrate import migration_target
from flask_kitsession.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
# kitsession@head, in an app that keeps these revisions in its own history.
branch_labels: tuple[str, ...] | None = ("kitsession",)
# In an app's own history whose revision creates the user table
# (include_kitsession(user_model=...)): that revision, so it runs first.
depends_on: tuple[str, ...] | None = first_revision_depends_on()


def upgrade() -> None:
    target = migration_target()
    if target.owns_user_table:
        op.create_table(
            "user",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("email", sa.String(length=255), nullable=False),
            sa.Column("password_hash", sa.String(length=255), nullable=True),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
            sa.UniqueConstraint("email", name=op.f("uq_user_email")),
        )
    user_table = target.user_key.table
    assert isinstance(user_table, sa.Table)
    op.create_table(
        "session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", target.user_key.type, nullable=True),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("authenticated_at", UTCDateTime(), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            [f"{user_table.fullname}.{target.user_key.name}"],
            name=op.f(f"fk_session_user_id_{user_table.name}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session")),
    )
    op.create_index(op.f("ix_session_user_id"), "session", ["user_id"])
    op.create_index(op.f("ix_session_expires_at"), "session", ["expires_at"])


def downgrade() -> None:
    # The indexes go with the table. (Dropping ix_session_user_id first fails
    # on MySQL/MariaDB, where the foreign key needs it.)
    op.drop_table("session")
    if migration_target().owns_user_table:
        op.drop_table("user")
