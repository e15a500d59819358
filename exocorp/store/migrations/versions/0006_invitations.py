"""Members: invitations by e-mail, and the read-only role ``viewer``.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
NAMING_CONVENTION = {  # exocorp.store.schema.base's, spelled out as a migration must
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _role(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def _memberships(*roles: str) -> sa.Table:
    """The memberships table as it stands with ``roles``: SQLite cannot alter a CHECK
    constraint, so batch mode rebuilds the table from this description."""
    return sa.Table(
        "memberships", sa.MetaData(naming_convention=NAMING_CONVENTION),
        sa.Column("user_id", sa.String(40), sa.ForeignKey("users.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("exocorp_id", sa.String(63), sa.ForeignKey("exocorps.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("role", _role("role", *roles), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
    )


def _set_roles(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    with op.batch_alter_table("memberships", copy_from=_memberships(*old),
                              recreate="always") as batch:
        batch.alter_column("role", existing_type=_role("role", *old), type_=_role("role", *new),
                           existing_nullable=False)
    # The rebuilt table has no indexes of its own.
    op.create_index(op.f("ix_memberships_exocorp_id"), "memberships", ["exocorp_id"])


def upgrade() -> None:
    _set_roles(("owner", "member"), ("owner", "member", "viewer"))
    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("exocorp_id", sa.String(length=63), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_normalized", sa.String(length=320), nullable=False),
        sa.Column("role", _role("invitation_role", "owner", "member", "viewer"), nullable=False),
        sa.Column("invited_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["exocorp_id"], ["exocorps.id"],
                                name=op.f("fk_invitations_exocorp_id_exocorps"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["invited_by"], ["users.id"],
                                name=op.f("fk_invitations_invited_by_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("exocorp_id", "email_normalized",
                            name=op.f("uq_invitations_exocorp_id_email_normalized")),
    )
    op.create_index(op.f("ix_invitations_email_normalized"), "invitations",
                    ["email_normalized"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_invitations_email_normalized"), table_name="invitations")
    op.drop_table("invitations")
    op.execute("UPDATE memberships SET role = 'member' WHERE role = 'viewer'")
    _set_roles(("owner", "member", "viewer"), ("owner", "member"))
