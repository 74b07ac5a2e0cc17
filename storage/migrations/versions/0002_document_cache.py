"""Document extraction cache; indexes for /cost.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

/cost sums a user's ledger since a time (today, this period) and over one conversation; without
these indexes both scan the whole ledger, which grows by a row per upstream call.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "document_extractions",
        # Telegram's file_unique_id: the same file sent twice (or by two users) has the same one.
        sa.Column("file_unique_id", sa.String(length=128), nullable=False),
        sa.Column("filename", sa.String(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("file_unique_id", name="pk_document_extractions"),
    )
    op.create_index("ix_usage_ledger_user_created", "usage_ledger", ["user_id", "created_at"])
    op.create_index("ix_usage_ledger_conversation_id", "usage_ledger", ["conversation_id"])


def downgrade() -> None:
    op.drop_index("ix_usage_ledger_conversation_id", table_name="usage_ledger")
    op.drop_index("ix_usage_ledger_user_created", table_name="usage_ledger")
    op.drop_table("document_extractions")
