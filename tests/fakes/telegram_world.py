"""The state behind the fake Telegram: who exists, what was said where, and the update queue.

Kept apart from the HTTP layer and from the Bot API rules so both the bot-facing methods and the
test-facing helpers change it through the same small set of operations.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram_models import (
    JSON,
    BotApiError,
    Chat,
    ChatActionRecord,
    DraftRecord,
    StoredFile,
    StoredMessage,
    User,
)

# Update kinds a bot receives when it never set allowed_updates (Bot API getUpdates).
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the "
    "webhook first"
)


class World:
    def __init__(self, bot: User, clock: Callable[[], float], wall_clock: Callable[[], float]) -> None:
        self.bot = bot
        self.clock = clock
        self.wall_clock = wall_clock
        self.users: dict[int, User] = {bot.id: bot}
        self.chats: dict[int, Chat] = {}
        self.messages: dict[int, dict[int, StoredMessage]] = {}
        self.files: dict[str, StoredFile] = {}
        self.drafts: dict[int, list[DraftRecord]] = {}
        self.active_drafts: dict[tuple[int, int | None], DraftRecord] = {}
        self.chat_actions: list[ChatActionRecord] = []
        self.commands: dict[tuple[str, str], list[JSON]] = {}
        self.callback_queries: dict[str, JSON] = {}
        self.webhook_url = ""
        self.webhook_secret: str | None = None
        self.webhook_max_connections = 40
        self.webhook_sets = 0
        self.webhook_deletes = 0
        self._next_message_id: dict[int, int] = {}
        self._file_numbers = itertools.count(1)
        self._query_numbers = itertools.count(4_000_000_000_000_000_001)
        # Updates: kept until the bot confirms them with a higher offset, like Telegram does.
        self.updates: list[JSON] = []
        self.delivered_updates: list[JSON] = []
        self.allowed_updates: list[str] | None = None
        self._next_update_id = 100_000_001
        self.pushed_update_ids: list[int] = []  # every update ever queued for the bot, in order
        self.confirmed_update_id = 0  # the bot confirmed every update up to this one (getUpdates offset)
        self._updates_changed = asyncio.Event()
        self._poll_generation = 0
        self.closing = False

    # ------------------------------------------------------------ messages

    def next_message_id(self, chat_id: int) -> int:
        number = self._next_message_id.get(chat_id, 0) + 1
        self._next_message_id[chat_id] = number
        return number

    def store(self, message: StoredMessage) -> StoredMessage:
        self.messages.setdefault(message.chat_id, {})[message.message_id] = message
        message.snapshot(self.clock())
        if message.from_bot:
            # A message from the bot replaces the draft the user was watching (MTProto docs).
            for key in [k for k in self.active_drafts if k[0] == message.chat_id]:
                del self.active_drafts[key]
        return message

    def new_message(self, chat: Chat, sender: User, **fields: Any) -> StoredMessage:
        message = StoredMessage(
            chat_id=chat.id,
            message_id=self.next_message_id(chat.id),
            sender=sender,
            date=int(self.wall_clock()),
            from_bot=sender.id == self.bot.id,
            **fields,
        )
        return self.store(message)

    def message(self, chat_id: int, message_id: int) -> StoredMessage | None:
        found = self.messages.get(chat_id, {}).get(message_id)
        return None if found is None or found.deleted else found

    def chat_messages(self, chat_id: int) -> list[StoredMessage]:
        return sorted(self.messages.get(chat_id, {}).values(), key=lambda m: m.message_id)

    def message_dict(self, message: StoredMessage, *, nested: bool = True) -> JSON:
        """The Message object as the Bot API returns it."""
        chat = self.chats[message.chat_id]
        data: JSON = {
            "message_id": message.message_id,
            "from": message.sender.to_dict(),
            "chat": chat.to_dict(),
            "date": message.date,
        }
        if message.thread_id is not None and chat.is_forum:
            data["message_thread_id"] = message.thread_id
            if message.is_topic_message:
                data["is_topic_message"] = True
        if nested and message.reply_to_message_id is not None:
            target = self.messages.get(message.chat_id, {}).get(message.reply_to_message_id)
            if target is not None:
                data["reply_to_message"] = self.message_dict(target, nested=False)
        if message.edit_date is not None:
            data["edit_date"] = message.edit_date
        if message.text is not None:
            data["text"] = message.text
            if message.entities:
                data["entities"] = [dict(e) for e in message.entities]
        if message.photo:
            data["photo"] = [dict(size) for size in message.photo]
        data.update(copy.deepcopy(message.media))
        if message.media_group_id is not None:
            data["media_group_id"] = message.media_group_id
        if message.document is not None or message.photo or message.media:
            if message.document is not None:
                data["document"] = dict(message.document)
            if message.caption:
                data["caption"] = message.caption
                if message.caption_entities:
                    data["caption_entities"] = [dict(e) for e in message.caption_entities]
        if message.reply_markup:
            data["reply_markup"] = message.reply_markup
        data.update(message.service)
        return data

    # ------------------------------------------------------------ drafts and actions

    def add_draft(self, draft: DraftRecord) -> None:
        self.drafts.setdefault(draft.chat_id, []).append(draft)
        self.active_drafts[(draft.chat_id, draft.thread_id)] = draft

    # ------------------------------------------------------------ files

    def add_file(
        self, data: bytes, *, file_name: str | None, mime_type: str | None, size: int | None, kind: str
    ) -> StoredFile:
        number = next(self._file_numbers)
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        stored = StoredFile(
            file_id=f"BQACAgIAAxkBAAI{number:06d}FakeFileId",
            file_unique_id=f"AgAD{number:06d}",
            file_path=f"{kind}/file_{number}{suffix}",
            data=data,
            size=len(data) if size is None else size,
            file_name=file_name,
            mime_type=mime_type,
        )
        self.files[stored.file_id] = stored
        return stored

    def file_by_path(self, path: str) -> StoredFile | None:
        return next((f for f in self.files.values() if f.file_path == path), None)

    # ------------------------------------------------------------ updates

    def push_update(self, kind: str, payload: JSON) -> JSON:
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self.pushed_update_ids.append(update["update_id"])
        self.updates.append(update)
        self._wake()
        return update

    def set_webhook(self, url: str, secret: str | None, max_connections: int) -> None:
        self.webhook_url, self.webhook_secret = url, secret
        self.webhook_max_connections = max_connections
        self._wake()  # the webhook delivery starts (or stops) at once

    def deliverable(self) -> list[JSON]:
        return self._deliverable()

    async def updates_changed(self) -> None:
        await self._updates_changed.wait()

    def new_callback_query_id(self) -> str:
        return str(next(self._query_numbers))

    def drop_pending_updates(self) -> None:
        self.updates.clear()

    def _wake(self) -> None:
        self._updates_changed.set()
        self._updates_changed = asyncio.Event()

    def close(self) -> None:
        self.closing = True
        self._wake()

    def _deliverable(self) -> list[JSON]:
        allowed = self.allowed_updates
        result = []
        for update in self.updates:
            kind = next(k for k in update if k != "update_id")
            if allowed:
                if kind not in allowed:
                    continue
            elif kind in DEFAULT_EXCLUDED_UPDATES:
                continue
            result.append(update)
        return result

    async def get_updates(
        self, offset: int | None, limit: int, poll_seconds: float, allowed_updates: list[str] | None
    ) -> list[JSON]:
        """getUpdates: confirm by offset, then long-poll up to ``poll_seconds`` (real time) (real time)."""
        if self.webhook_url:
            raise BotApiError(409, CONFLICT_WEBHOOK)
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake()  # an older long poll still waiting ends with 409, as on Telegram
        if allowed_updates is not None:
            self.allowed_updates = list(allowed_updates)
        if offset:
            if offset > 0:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                self.confirmed_update_id = max(self.confirmed_update_id, offset - 1)
            else:
                self.updates = self.updates[offset:]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, poll_seconds)
        while True:
            if generation != self._poll_generation:
                raise BotApiError(409, CONFLICT_OTHER_POLL)
            pending = self._deliverable()[:limit]
            remaining = deadline - loop.time()
            if pending or remaining <= 0 or self.closing:
                self.delivered_updates.extend(u for u in pending if u not in self.delivered_updates)
                return pending
            event = self._updates_changed
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                pass
