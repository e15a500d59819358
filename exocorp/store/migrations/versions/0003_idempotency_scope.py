"""Idempotency records of anonymous requests (signup, agents' drafts): ``user_id`` becomes a
scope that is either a user id or ``anonymous``, so it no longer references ``users``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_records") as batch:
        batch.drop_constraint("fk_idempotency_records_user_id_users", type_="foreignkey")


def downgrade() -> None:
    op.execute("DELETE FROM idempotency_records WHERE user_id NOT IN (SELECT id FROM users)")
    with op.batch_alter_table("idempotency_records") as batch:
        batch.create_foreign_key("fk_idempotency_records_user_id_users", "users",
                                 ["user_id"], ["id"], ondelete="CASCADE")
