"""The bot's users as the Telegram side sees them: met on every update, with a model of their own."""

from __future__ import annotations

from storage import Store, UserRecord


class Users:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def met(self, telegram_id: int, language: str | None, username: str | None) -> UserRecord:
        """The user, created on first sight; language and username follow Telegram's latest."""
        return await self._store.get_or_create_user(telegram_id, language, username)

    async def find(self, telegram_id: int) -> UserRecord | None:
        """The user if they ever wrote (or an admin configured them); nobody is created."""
        return await self._store.get_user(telegram_id)

    async def choose_model(self, telegram_id: int, model: str) -> None:
        await self._store.set_user_model(telegram_id, model)

    async def switch(
        self, telegram_id: int, *, web_search: bool | None = None, thinking: bool | None = None
    ) -> None:
        """Turn a user's web search or thinking on or off (None: leave it as it is)."""
        await self._store.set_user_switches(telegram_id, web_search=web_search, thinking=thinking)
