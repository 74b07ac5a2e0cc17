"""The core services the handlers call, kept in `application.bot_data`."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.access import AccessPolicy
from bot.admin import Admin
from bot.budget import BudgetKeeper
from bot.budget_notices import BudgetNotices
from bot.catalog import ModelCatalog
from bot.charts import ChartRenderer
from bot.documents import DocumentReader, DocumentSummaries
from bot.health import Health
from bot.history import History
from bot.kimi import KimiClient
from bot.metrics import Metrics
from bot.pricing import PriceTable
from bot.recovery import CrashRecovery
from bot.reports import Reports
from bot.settings import Settings
from bot.turn import Conversations
from bot.users import Users
from handlers.active_answers import ActiveAnswer, ActiveAnswers, StopReason
from handlers.bot_context import SERVICES_KEY, BotContext
from handlers.delivery import Deliveries
from handlers.flood import FloodGuard
from handlers.progress import HandledUpdates
from handlers.progress_pace import ProgressPace
from storage import Coordination, Store

__all__ = ["SERVICES_KEY", "ActiveAnswer", "BotServices", "StopReason", "services"]


@dataclass
class BotServices:
    """What the handlers use: the core's services. `store` and `kimi` are here only for the
    composition root (to close them) and the tests; handlers never touch them (tests/test_house.py)."""

    settings: Settings
    store: Store
    kimi: KimiClient
    users: Users
    history: History
    admin: Admin
    reports: Reports
    prices: PriceTable
    budgets: BudgetKeeper
    conversations: Conversations
    catalog: ModelCatalog
    guard: FloodGuard
    document_reader: DocumentReader
    summaries: DocumentSummaries
    metrics: Metrics
    health: Health
    recovery: CrashRecovery
    deliveries: Deliveries
    access: AccessPolicy
    charts: ChartRenderer
    notices: BudgetNotices
    coordination: Coordination
    replicas: bool = False  # several replicas may run (webhook mode on PostgreSQL)
    active: ActiveAnswers = field(default_factory=ActiveAnswers)
    http_port: int | None = None  # where /healthz and /metrics are served, once they are
    shutting_down: bool = False  # set once the grace is over: answers that start now end at once
    handled: HandledUpdates = field(default_factory=HandledUpdates)  # which updates are done
    pace: ProgressPace = field(default_factory=ProgressPace)  # progress updates shared by all answers
    quota_alerted_at: float | None = None  # when admins were last told the Kimi account is empty

    def is_admin(self, user_id: int) -> bool:
        return self.access.is_admin(user_id)

    def is_allowed(self, user_id: int) -> bool:
        """Asked before every handler: /allow and /deny take effect at once."""
        return self.access.allows(user_id)


def services(context: BotContext) -> BotServices:
    return context.application.bot_data[SERVICES_KEY]
