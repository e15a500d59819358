"""Metering marks: how far each exocorp component's running-time counter has been billed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "metering_marks",
        sa.Column("exocorp_id", sa.String(length=63), nullable=False),
        sa.Column("component", sa.String(length=63), nullable=False),
        sa.Column("incarnation", sa.String(length=64), nullable=False),
        sa.Column("incarnation_created_at", UTC_DATETIME, nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.Column("accrued_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["exocorp_id"], ["exocorps.id"], name=op.f("fk_metering_marks_exocorp_id_exocorps")
        ),
        sa.PrimaryKeyConstraint("exocorp_id", "component", name=op.f("pk_metering_marks")),
    )


def downgrade() -> None:
    op.drop_table("metering_marks")
