"""The tables, as SQLModel classes. Only storage/ sees them; callers get records.py dataclasses.

The schema itself is owned by the Alembic migrations (migrations/versions/); these classes must
describe the same thing, which tests/test_storage_migrations.py checks by comparing the two.

Money is integer micro-元点 (1 元点 = 1_000_000) in BIGINT columns: never floats.
Telegram ids (users, chats) exceed 32 bits, so they are BIGINT too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Text,
    false,
    func,
    text,
    true,
)
from sqlmodel import Field, SQLModel

from storage.utc import UTCDateTime, utc_now


def _created_at() -> Any:
    # A column default (not only a pydantic default) so Core INSERTs get a timestamp too.
    return Field(default_factory=utc_now, sa_type=UTCDateTime, sa_column_kwargs={"default": utc_now})


class UserRow(SQLModel, table=True):
    __tablename__ = "users"

    telegram_id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    language: str | None = None
    username: str | None = None
    model: str | None = None  # None: the deployment's default model
    role: str = Field(default="user", sa_column_kwargs={"server_default": "user"})
    budget_override_micro: int | None = Field(default=None, sa_type=BigInteger)
    created_at: datetime = _created_at()
    # 0004: chat turns declare $web_search; thinking on or off where the model can switch it.
    web_search: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    thinking: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    # The period in which the 80 % budget notice was shown (0005); None: not warned lately.
    warned_period: str | None = Field(default=None, max_length=32)


class ConversationRow(SQLModel, table=True):
    """One conversation of a scope: (chat, user or None when shared, forum thread or None)."""

    __tablename__ = "conversations"

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger, index=True)
    user_id: int | None = Field(default=None, sa_type=BigInteger)
    thread_id: int | None = Field(default=None, sa_type=BigInteger)
    active: bool = True
    created_at: datetime = _created_at()


# At most one active conversation per scope, enforced by the database so that two concurrent
# first messages cannot open two. NULL never equals NULL in a unique index, hence coalesce(…, 0):
# Telegram user and thread ids are never 0.
ACTIVE_SCOPE_INDEX = Index(
    "uq_conversations_active_scope",
    ConversationRow.chat_id,  # type: ignore[arg-type]
    func.coalesce(ConversationRow.user_id, 0),
    func.coalesce(ConversationRow.thread_id, 0),
    unique=True,
    sqlite_where=ConversationRow.active,
)


def describe_for_postgresql() -> None:
    """The PostgreSQL options of the tables above: the same partial index there. Called when a
    PostgreSQL engine is made (storage/engine.py), not at import: naming a dialect's option makes
    SQLAlchemy load that dialect (~2 MB), which a bot on SQLite never uses."""
    ACTIVE_SCOPE_INDEX.dialect_options["postgresql"]["where"] = ConversationRow.active


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(
        sa_column_args=[ForeignKey("conversations.id", ondelete="CASCADE", name="fk_messages_conversation")],
        index=True,
    )
    role: str  # system | user | assistant
    kind: str = Field(default="text", sa_column_kwargs={"server_default": "text"})
    content: str = Field(sa_type=Text)
    reasoning: str | None = Field(default=None, sa_type=Text)
    tokens: int | None = None
    # The Telegram messages that showed it (a long reply is split over several).
    telegram_message_ids: list[int] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = _created_at()
    # 0004: the images a user message showed, [{"mime": ..., "data": base64}, ...] (size-capped).
    images: list[dict[str, str]] | None = Field(default=None, sa_type=JSON)


class UsageRow(SQLModel, table=True):
    """The ledger: one row per upstream call. Rows settled together share a turn_id."""

    __tablename__ = "usage_ledger"
    __table_args__ = (
        Index("ix_usage_ledger_user_created", "user_id", "created_at"),  # /cost periods (0002)
    )

    id: int | None = Field(default=None, primary_key=True)
    turn_id: str = Field(max_length=32, index=True)
    user_id: int = Field(sa_type=BigInteger)
    chat_id: int | None = Field(default=None, sa_type=BigInteger)
    conversation_id: int | None = Field(
        default=None,
        sa_column_args=[
            ForeignKey("conversations.id", ondelete="SET NULL", name="fk_usage_ledger_conversation")
        ],
        index=True,  # /cost for this conversation (0002)
    )
    model: str
    purpose: str  # chat | document | search
    prompt_tokens: int  # as the API reports it: cached tokens included
    cached_tokens: int
    completion_tokens: int
    web_search_calls: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    cost_micro: int = Field(sa_type=BigInteger)
    created_at: datetime = _created_at()


class BudgetRow(SQLModel, table=True):
    """What a user has spent and holds reserved in one period ("2026-11", "total", …)."""

    __tablename__ = "budgets"
    __table_args__ = (
        # A safety net: a bookkeeping bug must fail loudly, not hand out a negative reservation.
        CheckConstraint("reserved_micro >= 0", name="ck_budgets_reserved_not_negative"),
    )

    user_id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    period_key: str = Field(primary_key=True, max_length=32)
    spent_micro: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": text("0")})
    reserved_micro: int = Field(default=0, sa_type=BigInteger, sa_column_kwargs={"server_default": text("0")})


class ReservationRow(SQLModel, table=True):
    """A hold on a budget. Rows stay after they end (status settled/released): that is what
    makes settle and release idempotent, and lets a late settle still charge the actual cost."""

    __tablename__ = "reservations"
    __table_args__ = (
        ForeignKeyConstraint(
            ["user_id", "period_key"],
            ["budgets.user_id", "budgets.period_key"],
            name="fk_reservations_budget",
        ),
        Index("ix_reservations_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(sa_type=BigInteger)
    period_key: str = Field(max_length=32)
    amount_micro: int = Field(sa_type=BigInteger)
    purpose: str
    status: str = Field(default="held", max_length=16)  # held | settled | released
    created_at: datetime = _created_at()
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The process holding it (storage.liveness); NULL for holds made before 0003.
    owner: int | None = Field(default=None, sa_type=BigInteger)


class InflightTurnRow(SQLModel, table=True):
    """An answer being streamed, with checkpoints of its text (0003): if its process dies, the
    next start-up settles it by what was written, stores it, and tells the user. Deleted when
    the turn's reservation is settled or released (and, after a crash, once the user is told)."""

    __tablename__ = "inflight_turns"

    reservation_id: int = Field(
        sa_column_args=[
            ForeignKey("reservations.id", ondelete="CASCADE", name="fk_inflight_turns_reservation")
        ],
        primary_key=True,
        sa_column_kwargs={"autoincrement": False},
    )
    chat_id: int = Field(sa_type=BigInteger)
    user_id: int = Field(sa_type=BigInteger)
    thread_id: int | None = Field(default=None, sa_type=BigInteger)
    reply_to: int | None = Field(default=None, sa_type=BigInteger)  # the question's message
    language: str | None = None
    conversation_id: int | None = None
    model: str
    purpose: str
    question: str = Field(sa_type=Text)
    prompt_tokens: int
    content: str = Field(default="", sa_type=Text)
    reasoning: str = Field(default="", sa_type=Text)
    settled: bool = False  # a start-up settled it; the user is still to be told
    assistant_message_id: int | None = None  # the stored partial answer, once settled
    updated_at: datetime = _created_at()


class PendingDeliveryRow(SQLModel, table=True):
    """A final message Telegram did not take yet (5xx, timeout, network) (0003). Retried until
    delivered or expired, by its process or, after a restart, by the next one."""

    __tablename__ = "pending_deliveries"

    id: int | None = Field(default=None, primary_key=True)
    owner: int = Field(sa_type=BigInteger, index=True)
    chat_id: int = Field(sa_type=BigInteger)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = _created_at()


class ExtractionRow(SQLModel, table=True):
    """Text extracted from a document, keyed by Telegram's file_unique_id (0002)."""

    __tablename__ = "document_extractions"

    file_unique_id: str = Field(primary_key=True, max_length=128)
    filename: str
    content: str = Field(sa_type=Text)
    tokens: int | None = None
    created_at: datetime = _created_at()


class AccessRow(SQLModel, table=True):
    """An admin's /allow or /deny of a user (0005); the latest decision per user wins."""

    __tablename__ = "access_list"

    user_id: int = Field(sa_type=BigInteger, primary_key=True, sa_column_kwargs={"autoincrement": False})
    allowed: bool
    changed_by: int | None = Field(default=None, sa_type=BigInteger)
    changed_at: datetime = Field(sa_type=UTCDateTime)


# --- several replicas on one database (0006) -------------------------------------------------------


class ProcessedUpdateRow(SQLModel, table=True):
    """A webhook update, claimed once: Telegram retries a delivery it saw fail, and a retry must
    not answer or charge twice. `seq` is the arrival order across replicas; `turn_key` the
    conversation the update became a turn of (None until known); `owner` the process handling it."""

    __tablename__ = "processed_updates"
    __table_args__ = (Index("ix_processed_updates_chat_pending", "chat_id", "done", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)
    update_id: int = Field(sa_type=BigInteger, unique=True)
    chat_id: int | None = Field(default=None, sa_type=BigInteger)
    turn_key: str | None = Field(default=None, max_length=64)
    owner: int | None = Field(default=None, sa_type=BigInteger)
    done: bool = False
    received_at: datetime = _created_at()


class ActiveAnswerRow(SQLModel, table=True):
    """An answer being streamed by some replica, so a stop pressed on any replica reaches it."""

    __tablename__ = "active_answers"

    token: str = Field(primary_key=True, max_length=32)
    chat_id: int = Field(sa_type=BigInteger, index=True)
    user_id: int = Field(sa_type=BigInteger)
    owner: int = Field(sa_type=BigInteger)
    created_at: datetime = _created_at()


class PendingSummaryRow(SQLModel, table=True):
    """A document summary waiting for its asker's confirmation; whoever gets the button takes it."""

    __tablename__ = "pending_summaries"

    token: str = Field(primary_key=True, max_length=32)
    user_id: int = Field(sa_type=BigInteger)
    payload: dict[str, Any] = Field(sa_type=JSON)
    created_at: datetime = _created_at()


class FloodSlotRow(SQLModel, table=True):
    """One message or edit sent to a chat, for Telegram's flood limits held across replicas."""

    __tablename__ = "flood_slots"
    __table_args__ = (Index("ix_flood_slots_chat_sent", "chat_id", "sent_at"),)

    id: int | None = Field(default=None, primary_key=True)
    chat_id: int = Field(sa_type=BigInteger)
    sent_at: datetime = Field(sa_type=UTCDateTime, index=True)
