"""Agent tokens scoped (issue 13): the exocorps each operator client may reach, the grants its
human gave (destroy, provider-secret writes), the pairing code approval must present, and an
expiry on every bearer token.

Existing approved clients keep only the exocorp they were approved with, without grants; their
bearer tokens without an expiry get the default one from now.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY_BEARER_TTL = timedelta(days=30)  # = tokens.DEFAULT_BEARER_TOKEN_TTL at this revision


def upgrade() -> None:
    with op.batch_alter_table("operator_clients") as batch:
        batch.add_column(sa.Column("may_destroy", sa.Boolean(), server_default=sa.false(),
                                   nullable=False))
        batch.add_column(sa.Column("may_write_secrets", sa.Boolean(),
                                   server_default=sa.false(), nullable=False))
        batch.add_column(sa.Column("pairing_code_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("pairing_failures", sa.Integer(), server_default=sa.text("0"),
                                   nullable=False))
    op.create_table(
        "operator_client_exocorps",
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("exocorp_id", sa.String(length=63), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["operator_clients.id"],
            name=op.f("fk_operator_client_exocorps_client_id_operator_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["exocorp_id"], ["exocorps.id"],
            name=op.f("fk_operator_client_exocorps_exocorp_id_exocorps"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "exocorp_id",
                                name=op.f("pk_operator_client_exocorps")),
    )
    op.create_index(op.f("ix_operator_client_exocorps_exocorp_id"), "operator_client_exocorps",
                    ["exocorp_id"], unique=False)
    op.execute(
        "INSERT INTO operator_client_exocorps (client_id, exocorp_id) "
        "SELECT c.id, d.exocorp_id FROM operator_clients c JOIN drafts d ON d.id = c.draft_id "
        "WHERE c.approved_by IS NOT NULL AND d.exocorp_id IS NOT NULL"
    )
    tokens = sa.table("operator_tokens", sa.column("kind", sa.String),
                      sa.column("expires_at", sa.DateTime(timezone=True)))
    op.get_bind().execute(
        tokens.update()
        .where(tokens.c.kind == "client_bearer", tokens.c.expires_at.is_(None))
        .values(expires_at=_stored(datetime.now(UTC) + LEGACY_BEARER_TTL))
    )


def _stored(at: datetime) -> datetime:
    """As UTCDateTime stores it: naive UTC on SQLite, aware elsewhere."""
    return at.replace(tzinfo=None) if op.get_bind().dialect.name == "sqlite" else at


def downgrade() -> None:
    op.drop_index(op.f("ix_operator_client_exocorps_exocorp_id"),
                  table_name="operator_client_exocorps")
    op.drop_table("operator_client_exocorps")
    with op.batch_alter_table("operator_clients") as batch:
        batch.drop_column("pairing_failures")
        batch.drop_column("pairing_code_hash")
        batch.drop_column("may_write_secrets")
        batch.drop_column("may_destroy")
