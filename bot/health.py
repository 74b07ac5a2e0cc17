"""Readiness for /healthz: the database answers now, and Telegram answered at the last check."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from storage import Store

log = logging.getLogger(__name__)


@dataclass
class HealthReport:
    database: bool
    telegram: bool

    @property
    def ready(self) -> bool:
        return self.database and self.telegram


class Health:
    """Telegram's reachability is learnt from the bot's own calls (every call is a check) and from
    a periodic probe when the bot has been quiet; the database is pinged on every request."""

    def __init__(self, store: Store, listening: Callable[[], bool] = lambda: True) -> None:
        self._store = store
        self._listening = listening  # several replicas: this one hears the others (LISTEN)
        self.telegram_reachable = False  # until the first answer from Telegram
        self.telegram_checked_at = 0.0

    def note_telegram(self, reachable: bool) -> None:
        if reachable != self.telegram_reachable:
            log.log(
                logging.INFO if reachable else logging.WARNING,
                "Telegram is %s",
                "reachable" if reachable else "unreachable",
            )
        self.telegram_reachable = reachable
        self.telegram_checked_at = time.monotonic()

    def telegram_quiet_for(self) -> float:
        return time.monotonic() - self.telegram_checked_at

    async def report(self) -> HealthReport:
        try:
            await self._store.ping()
            database = self._listening()
        except Exception as error:  # any failure means "not ready"; the reason goes to the log
            log.warning("database check failed: %s", type(error).__name__)
            database = False
        return HealthReport(database=database, telegram=self.telegram_reachable)
