"""What the store hands out and takes in: plain frozen dataclasses, never sessions or rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, NamedTuple

Role = Literal["system", "user", "assistant"]
UserRole = Literal["user", "admin"]
Purpose = Literal["chat", "document", "search"]

ROLES: frozenset[str] = frozenset({"system", "user", "assistant"})
USER_ROLES: frozenset[str] = frozenset({"user", "admin"})
PURPOSES: frozenset[str] = frozenset({"chat", "document", "search"})

MICRO_PER_YUANDIAN = 1_000_000  # amounts are integer micro-元点


@dataclass(frozen=True, slots=True)
class UserRecord:
    telegram_id: int
    language: str | None
    username: str | None
    model: str | None  # None: the default model
    role: str  # "user" | "admin"
    budget_override_micro: int | None  # None: the default limit applies
    created_at: datetime
    web_search: bool = False  # chat turns may search the web ($web_search)
    thinking: bool = True  # thinking on, where the model can switch it
    warned_period: str | None = None  # the period of the last 80 % budget notice


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    id: int
    chat_id: int
    user_id: int | None  # None: shared by the whole group (or topic)
    thread_id: int | None  # forum topic, if the conversation is per topic
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredImage:
    """A picture shown with a user message, as sent to Kimi: its MIME type and base64 bytes."""

    mime: str
    data: str  # base64


@dataclass(frozen=True, slots=True)
class NewMessage:
    role: Role
    content: str
    reasoning: str | None = None
    tokens: int | None = None
    telegram_message_ids: Sequence[int] = ()
    kind: str = "text"  # e.g. "document" for an extracted file's text
    conversation_id: int | None = None  # None: the conversation given to settle/add_messages
    images: Sequence[StoredImage] = ()  # pictures shown with a user message

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown message role {self.role!r}")
        object.__setattr__(self, "telegram_message_ids", tuple(self.telegram_message_ids))
        object.__setattr__(self, "images", tuple(self.images))


@dataclass(frozen=True, slots=True)
class MessageRecord:
    id: int
    conversation_id: int
    role: str
    content: str
    reasoning: str | None
    tokens: int | None
    telegram_message_ids: tuple[int, ...]
    kind: str
    created_at: datetime
    images: tuple[StoredImage, ...] = ()


class HistoryMessage(NamedTuple):
    """What the next turn's context needs of a stored message, and no more (it is read by the
    thousand: a long conversation's turn must not pay for whole rows). A named tuple, read-only
    like the dataclasses here but built in a third of the time of a frozen one."""

    id: int
    role: str
    content: str
    images: tuple[StoredImage, ...] = ()


@dataclass(frozen=True, slots=True)
class NewUsage:
    """One upstream call. prompt_tokens is the API's figure, cached tokens included."""

    user_id: int
    chat_id: int | None
    model: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_micro: int
    purpose: Purpose
    conversation_id: int | None
    web_search_calls: int = 0

    def __post_init__(self) -> None:
        if self.purpose not in PURPOSES:
            raise ValueError(f"unknown usage purpose {self.purpose!r}")
        counts = (
            self.prompt_tokens,
            self.cached_tokens,
            self.completion_tokens,
            self.cost_micro,
            self.web_search_calls,
        )
        if min(counts) < 0:
            raise ValueError("usage counts and cost must not be negative")


@dataclass(frozen=True, slots=True)
class Reservation:
    id: int
    user_id: int
    period_key: str
    amount_micro: int
    purpose: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class BudgetState:
    spent_micro: int
    reserved_micro: int

    @property
    def committed_micro(self) -> int:
        """Spent plus held: what a new reservation is checked against."""
        return self.spent_micro + self.reserved_micro


@dataclass(frozen=True, slots=True)
class Settlement:
    """What settling a reservation did: the stored messages' ids, in order, and the period's
    budget right after (None: it had been settled before, nothing was done)."""

    message_ids: list[int]
    budget: BudgetState | None


@dataclass(frozen=True, slots=True)
class UsageTotals:
    model: str
    calls: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost_micro: int
    web_search_calls: int = 0
    web_search_cost_micro: int = 0  # the searches' fees, included in cost_micro


@dataclass(frozen=True, slots=True)
class ExtractionRecord:
    file_unique_id: str
    filename: str
    content: str
    tokens: int | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """What an in-flight turn (by its reservation) has written so far."""

    reservation_id: int
    content: str
    reasoning: str


@dataclass(frozen=True, slots=True)
class NewInflightTurn:
    """What a turn's hold is for, kept while it streams: enough to settle it and tell the user
    if the process dies (chat, user, where to answer, the question, the prompt's size)."""

    chat_id: int
    user_id: int
    thread_id: int | None
    reply_to: int | None  # the question's message id
    language: str | None
    conversation_id: int | None
    model: str
    purpose: str
    question: str
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class InflightTurn:
    """An in-flight turn of a process that died, with its last checkpoint; taken over by this one."""

    reservation: Reservation
    turn: NewInflightTurn
    content: str
    reasoning: str
    settled: bool  # a start-up settled it already (then crashed, or could not tell the user yet)
    assistant_message_id: int | None


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    id: int
    chat_id: int
    payload: dict[str, object]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """An admin's decision about a user: allowed (/allow) or denied (/deny)."""

    user_id: int
    allowed: bool
    changed_by: int | None
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One charged upstream call, as /export writes it."""

    created_at: datetime
    user_id: int
    chat_id: int | None
    model: str
    purpose: str
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    web_search_calls: int
    cost_micro: int


@dataclass(frozen=True, slots=True)
class DailyCost:
    """What one model cost on one UTC day (one user's, or everyone's)."""

    day: date
    model: str
    cost_micro: int


@dataclass(frozen=True, slots=True)
class UserSpend:
    user_id: int
    username: str | None
    calls: int
    tokens: int  # prompt + completion
    cost_micro: int
    last_used: datetime


@dataclass(frozen=True, slots=True)
class ChatSpend:
    chat_id: int
    calls: int
    tokens: int  # prompt + completion
    cost_micro: int
