"""The core's side of final messages Telegram has not taken yet (handlers.delivery retries them):
kept in the database so that a restart does not lose them. The payload is the handlers' own."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from storage import PendingDelivery, Store


class PendingDeliveries:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def keep(self, chat_id: int, payload: dict[str, Any]) -> int:
        return await self._store.add_pending_delivery(chat_id, payload)

    async def progress(self, delivery_id: int, payload: dict[str, Any]) -> None:
        """Record the steps done so far, so that a retry (or the next process) never redoes them."""
        await self._store.update_pending_delivery(delivery_id, payload)

    async def done(self, delivery_id: int) -> None:
        await self._store.drop_pending_delivery(delivery_id)

    async def waiting(self) -> list[PendingDelivery]:
        """This process's pending deliveries: at start-up, those taken over from stopped ones."""
        return await self._store.pending_deliveries()

    async def shown_as(self, message_id: int, telegram_ids: Sequence[int]) -> None:
        await self._store.set_message_telegram_ids([(message_id, telegram_ids)])
