"""Resource limits: bounds on the CPU, memory and storage an account's (or the platform's)
exocorps request, beside the exocorp count of 0007; and when a billing account was suspended, so
enforcement can stop its exocorps once the suspension outlasts its grace period.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("resource_limits") as batch:
        batch.add_column(sa.Column("max_cpu_millicores", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("max_memory_bytes", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("max_storage_bytes", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("billing_accounts") as batch:
        batch.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
    # Accounts suspended before this revision: their last change is the best known start.
    op.execute("UPDATE billing_accounts SET suspended_at = updated_at "
               "WHERE state = 'suspended'")


def downgrade() -> None:
    with op.batch_alter_table("billing_accounts") as batch:
        batch.drop_column("suspended_at")
    with op.batch_alter_table("resource_limits") as batch:
        batch.drop_column("max_storage_bytes")
        batch.drop_column("max_memory_bytes")
        batch.drop_column("max_cpu_millicores")
