"""What only admins see or change: the Kimi account's balance and a user's own budget."""

from __future__ import annotations

from bot.kimi import Balance, KimiClient
from storage import Store, UserRecord


class Admin:
    def __init__(self, store: Store, kimi: KimiClient) -> None:
        self._store = store
        self._kimi = kimi

    async def kimi_balance(self) -> Balance:
        """The Moonshot account's balance (raises KimiError when Kimi cannot say)."""
        return await self._kimi.balance()

    async def set_budget_override(self, telegram_id: int, limit_micro: int | None) -> UserRecord:
        """A user's own limit (-1 unlimited, None the default), creating the user if they never wrote."""
        await self._store.set_budget_override(telegram_id, limit_micro)
        return await self._store.get_or_create_user(telegram_id)
