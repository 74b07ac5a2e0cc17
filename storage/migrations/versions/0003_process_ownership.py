"""Process ownership of holds, in-flight turns, pending deliveries.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

A hold now names the process that made it (storage.liveness), so a dead process's holds are
released at the next start-up at once and a live one's never; the answers a process was
streaming and the final messages Telegram had not taken yet are in the database, so a crash or
a restart loses neither.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("owner", sa.BigInteger(), nullable=True))
    op.create_table(
        "inflight_turns",
        sa.Column("reservation_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("reply_to", sa.BigInteger(), nullable=True),
        sa.Column("language", sa.String(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=False),
        sa.Column("settled", sa.Boolean(), nullable=False),
        sa.Column("assistant_message_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["reservation_id"],
            ["reservations.id"],
            name="fk_inflight_turns_reservation",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reservation_id", name="pk_inflight_turns"),
    )
    op.create_table(
        "pending_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("owner", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pending_deliveries"),
    )
    op.create_index("ix_pending_deliveries_owner", "pending_deliveries", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_pending_deliveries_owner", table_name="pending_deliveries")
    op.drop_table("pending_deliveries")
    op.drop_table("inflight_turns")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("owner")
