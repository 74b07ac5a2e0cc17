"""Initial schema: users, conversations, messages, usage ledger, budgets, reservations.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Written by hand. Every constraint and index has a name, so later batch migrations on SQLite can
refer to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Timestamps are UTC; storage.utc.UTCDateTime wraps this type.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("telegram_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("language", sa.String(), nullable=True),
        sa.Column("username", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("role", sa.String(), server_default="user", nullable=False),
        sa.Column("budget_override_micro", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("telegram_id", name="pk_users"),
    )

    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("thread_id", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
    )
    op.create_index("ix_conversations_chat_id", "conversations", ["chat_id"])
    # One active conversation per scope. NULLs are distinct in unique indexes, so the nullable
    # parts of the key go through coalesce (Telegram never uses 0 for a user or a topic).
    # Note for future SQLite batch migrations of this table: reflection skips expression
    # indexes, so drop this index before the batch and create it again after.
    op.create_index(
        "uq_conversations_active_scope",
        "conversations",
        ["chat_id", sa.text("coalesce(user_id, 0)"), sa.text("coalesce(thread_id, 0)")],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )

    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), server_default="text", nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=True),
        sa.Column("telegram_message_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_messages_conversation",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_messages_conversation_id", "messages", ["conversation_id"])

    op.create_table(
        "usage_ledger",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("turn_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("cached_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("web_search_calls", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("cost_micro", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_ledger"),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name="fk_usage_ledger_conversation",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_usage_ledger_turn_id", "usage_ledger", ["turn_id"])

    op.create_table(
        "budgets",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("period_key", sa.String(length=32), nullable=False),
        sa.Column("spent_micro", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("reserved_micro", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "period_key", name="pk_budgets"),
        sa.CheckConstraint("reserved_micro >= 0", name="ck_budgets_reserved_not_negative"),
    )

    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("period_key", sa.String(length=32), nullable=False),
        sa.Column("amount_micro", sa.BigInteger(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_reservations"),
        sa.ForeignKeyConstraint(
            ["user_id", "period_key"],
            ["budgets.user_id", "budgets.period_key"],
            name="fk_reservations_budget",
        ),
    )
    op.create_index("ix_reservations_status_created", "reservations", ["status", "created_at"])


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_table("budgets")
    op.drop_table("usage_ledger")
    op.drop_table("messages")
    op.drop_index("uq_conversations_active_scope", table_name="conversations")
    op.drop_table("conversations")
    op.drop_table("users")
