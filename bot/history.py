"""A conversation's stored state: which one is current for a key, starting anew, and which Telegram
messages show a stored answer."""

from __future__ import annotations

from collections.abc import Sequence

from bot.group_commit import GroupCommit
from bot.turn import ConversationKey
from storage import ConversationRecord, Store


class History:
    def __init__(self, store: Store) -> None:
        self._store = store
        # A burst of answers finishing together records what shows them in a few transactions.
        self._shown: GroupCommit[tuple[int, Sequence[int]]] = GroupCommit(store.set_message_telegram_ids)

    async def current(self, key: ConversationKey) -> ConversationRecord:
        """The key's active conversation, opened if it has none yet."""
        return await self._store.active_conversation(key.chat_id, key.user_id, key.thread_id)

    async def start_new(self, key: ConversationKey) -> ConversationRecord:
        """/reset: the old conversation is kept but no longer continued."""
        return await self._store.start_new_conversation(key.chat_id, key.user_id, key.thread_id)

    async def shown_as(self, message_id: int, telegram_ids: Sequence[int]) -> None:
        """Remember which Telegram messages show a stored answer."""
        await self._shown.add((message_id, tuple(telegram_ids)))
