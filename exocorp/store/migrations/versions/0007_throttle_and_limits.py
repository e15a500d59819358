"""Abuse limits: throttle counters every gateway replica shares (login per account and per client,
signup per client) and exocorp limits (per account, default, platform-wide).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "throttle_counters",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("window_start", UTC_DATETIME, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_throttle_counters")),
    )
    op.create_index(op.f("ix_throttle_counters_window_start"), "throttle_counters",
                    ["window_start"])
    op.create_table(
        "resource_limits",
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("max_exocorps", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("scope", name=op.f("pk_resource_limits")),
    )


def downgrade() -> None:
    op.drop_table("resource_limits")
    op.drop_index(op.f("ix_throttle_counters_window_start"), table_name="throttle_counters")
    op.drop_table("throttle_counters")
