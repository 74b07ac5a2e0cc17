"""Everything that knows SQL: engine, tables, migrations and the store's methods.

The rest of the bot uses `Store` and the records below, nothing else from this package.
Amounts are integer micro-元点 (MICRO_PER_YUANDIAN per 元点); times are aware UTC datetimes.
"""

from storage.coordination import Coordination  # noqa: E402  (needs Store)
from storage.engine import DEFAULT_DATABASE_URL
from storage.records import (
    MICRO_PER_YUANDIAN,
    AccessEntry,
    BudgetState,
    ChatSpend,
    Checkpoint,
    ConversationRecord,
    DailyCost,
    ExtractionRecord,
    HistoryMessage,
    InflightTurn,
    LedgerEntry,
    MessageRecord,
    NewInflightTurn,
    NewMessage,
    NewUsage,
    PendingDelivery,
    Purpose,
    Reservation,
    Settlement,
    StoredImage,
    UsageTotals,
    UserRecord,
    UserSpend,
)
from storage.store import Store

__all__ = [
    "DEFAULT_DATABASE_URL",
    "MICRO_PER_YUANDIAN",
    "AccessEntry",
    "BudgetState",
    "ChatSpend",
    "DailyCost",
    "LedgerEntry",
    "Coordination",
    "ConversationRecord",
    "ExtractionRecord",
    "InflightTurn",
    "HistoryMessage",
    "MessageRecord",
    "Checkpoint",
    "NewInflightTurn",
    "NewMessage",
    "NewUsage",
    "PendingDelivery",
    "Purpose",
    "Reservation",
    "Settlement",
    "Store",
    "StoredImage",
    "UsageTotals",
    "UserRecord",
    "UserSpend",
]
