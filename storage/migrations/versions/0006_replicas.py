"""Several replicas on one database: claimed webhook updates (arrival order, no double handling),
active answers (stop from any replica), pending document confirmations, flood-control slots.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TIMESTAMP = sa.DateTime(timezone=True)  # storage.utc.UTCDateTime wraps it


revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processed_updates",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("update_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("turn_key", sa.String(length=64), nullable=True),
        sa.Column("owner", sa.BigInteger(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_processed_updates"),
        sa.UniqueConstraint("update_id", name="uq_processed_updates_update_id"),
    )
    op.create_index("ix_processed_updates_chat_pending", "processed_updates", ["chat_id", "done", "seq"])
    op.create_table(
        "active_answers",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_active_answers"),
    )
    op.create_index("ix_active_answers_chat_id", "active_answers", ["chat_id"])
    op.create_table(
        "pending_summaries",
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("token", name="pk_pending_summaries"),
    )
    op.create_table(
        "flood_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flood_slots"),
    )
    op.create_index("ix_flood_slots_chat_sent", "flood_slots", ["chat_id", "sent_at"])
    op.create_index("ix_flood_slots_sent_at", "flood_slots", ["sent_at"])


def downgrade() -> None:
    op.drop_table("flood_slots")
    op.drop_table("pending_summaries")
    op.drop_table("active_answers")
    op.drop_table("processed_updates")
