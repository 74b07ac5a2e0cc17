"""Final messages that must arrive: retried with backoff when Telegram fails, kept in the database.

When the last send or edit of an answer meets a 5xx, a timeout or a network error, the answer
is not lost: what the chat must end up showing (a `FinalMessages` plan: each piece's text and
entities, and which message already shows it) is saved as a pending delivery and retried with
backoff for up to DELIVERY_DEADLINE. A restart does not lose it either: the next process takes the
row over (storage.liveness) and resends at start-up. Steps already done are recorded as they
succeed, so a retry never sends a piece twice (unless Telegram took it but the answer was lost
in a timeout: Telegram offers no idempotency key).

403 (blocked, kicked, chat gone) and other definitive refusals end the delivery with one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, MessageEntity, ReplyParameters
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError

from bot.pending_deliveries import PendingDeliveries
from handlers.bot_context import TelegramBot

log = logging.getLogger(__name__)

DELIVERY_DEADLINE = timedelta(minutes=10)
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 30.0
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def is_transient(error: BaseException) -> bool:
    """Worth retrying: a 5xx, a timeout or a broken connection (PTB: NetworkError, not a 400)."""
    return isinstance(error, NetworkError) and not isinstance(error, BadRequest)


@dataclass
class Piece:
    text: str
    entities: list[dict[str, Any]]
    message_id: int | None = None  # the message that shows it, once one does
    done: bool = False


@dataclass
class FinalMessages:
    """What a chat must end up showing for one answer."""

    chat_id: int
    pieces: list[Piece]
    thread_id: int | None = None
    reply_to: int | None = None  # quote the question with the first piece (groups)
    markup: dict[str, Any] | None = None  # on the last piece (e.g. a Continue button)
    delete: list[int] = field(default_factory=list)  # leftovers of a longer progress render
    assistant_message_id: int | None = None  # the stored answer, to record the message ids on

    def to_payload(self) -> dict[str, Any]:
        return {
            "chat_id": self.chat_id,
            "thread_id": self.thread_id,
            "reply_to": self.reply_to,
            "markup": self.markup,
            "delete": self.delete,
            "assistant_message_id": self.assistant_message_id,
            "pieces": [vars(piece) for piece in self.pieces],
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> FinalMessages:
        return cls(
            chat_id=payload["chat_id"],
            thread_id=payload.get("thread_id"),
            reply_to=payload.get("reply_to"),
            markup=payload.get("markup"),
            delete=list(payload.get("delete") or []),
            assistant_message_id=payload.get("assistant_message_id"),
            pieces=[Piece(**piece) for piece in payload.get("pieces") or []],
        )

    @property
    def message_ids(self) -> list[int]:
        return [piece.message_id for piece in self.pieces if piece.message_id is not None]


async def show_step(bot: TelegramBot, plan: FinalMessages, index: int) -> None:
    """Make piece `index` final in the chat (an edit if a message shows it, else a send)."""
    piece = plan.pieces[index]
    entities = [MessageEntity.de_json(entity, bot) for entity in piece.entities] or None
    last = index == len(plan.pieces) - 1
    markup = InlineKeyboardMarkup.de_json(plan.markup, bot) if last and plan.markup else None
    if piece.message_id is not None:
        try:
            await bot.edit_message_text(
                piece.text,
                chat_id=plan.chat_id,
                message_id=piece.message_id,
                entities=entities,
                reply_markup=markup,
                link_preview_options=NO_PREVIEW,
            )
            return
        except BadRequest as error:
            description = str(error).lower()
            if "not modified" in description:
                return
            if "not found" not in description:
                raise
            piece.message_id = None  # the user deleted it: send the piece anew
    reply = None
    if index == 0 and plan.reply_to is not None:
        reply = ReplyParameters(plan.reply_to, allow_sending_without_reply=True)
    sent = await bot.send_message(
        plan.chat_id,
        piece.text,
        entities=entities,
        reply_markup=markup,
        message_thread_id=plan.thread_id,
        reply_parameters=reply,
        link_preview_options=NO_PREVIEW,
    )
    piece.message_id = sent.message_id


class Deliveries:
    """Keeps final messages Telegram did not take, and retries them until delivered."""

    def __init__(self, pending: PendingDeliveries) -> None:
        self._pending = pending
        self._tasks: set[asyncio.Task[None]] = set()
        self.bot: TelegramBot | None = None

    @property
    def retrying(self) -> int:
        """How many deliveries are being retried now."""
        return len(self._tasks)

    async def keep(self, plan: FinalMessages, error: BaseException) -> None:
        """Save `plan` (which just failed with a transient `error`) and retry it in the background."""
        log.warning("final message to chat %s not delivered (%s); retrying", plan.chat_id, describe(error))
        delivery_id = await self._pending.keep(plan.chat_id, plan.to_payload())
        self._start(delivery_id, plan, datetime.now(UTC))

    async def start(self, bot: TelegramBot) -> None:
        """Retry what is pending: what this process took over from stopped ones at start-up."""
        self.bot = bot
        for pending in await self._pending.waiting():
            self._start(pending.id, FinalMessages.from_payload(pending.payload), pending.created_at)

    async def close(self) -> None:
        """Stop retrying; what is still pending stays in the database for the next start."""
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self, delivery_id: int, plan: FinalMessages, since: datetime) -> None:
        task = asyncio.create_task(self._retry(delivery_id, plan, since), name=f"delivery-{delivery_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry(self, delivery_id: int, plan: FinalMessages, since: datetime) -> None:
        assert self.bot is not None, "the bot is set when the application is built"
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                await self._deliver(delivery_id, plan)
                break
            except RetryAfter as error:
                delay = max(delay, _seconds(error.retry_after))
            except TelegramError as error:
                if not is_transient(error):
                    log.warning("final message to chat %s dropped: %s", plan.chat_id, describe(error))
                    break
            if datetime.now(UTC) - since > DELIVERY_DEADLINE:
                log.warning("final message to chat %s dropped: undelivered for 10 minutes", plan.chat_id)
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
        await self._pending.done(delivery_id)

    async def _deliver(self, delivery_id: int, plan: FinalMessages) -> None:
        assert self.bot is not None
        for index, piece in enumerate(plan.pieces):
            if piece.done:
                continue
            await show_step(self.bot, plan, index)
            piece.done = True
            await self._pending.progress(delivery_id, plan.to_payload())  # never twice
        for message_id in plan.delete:
            with contextlib.suppress(TelegramError):
                await self.bot.delete_message(plan.chat_id, message_id)
        plan.delete = []
        if plan.assistant_message_id is not None:
            await self._pending.shown_as(plan.assistant_message_id, plan.message_ids)
        log.info("final message to chat %s delivered", plan.chat_id)


def describe(error: BaseException) -> str:
    """One line for the log: the kind and Telegram's words (never a traceback)."""
    if not isinstance(error, TelegramError):
        return type(error).__name__
    name, message = type(error).__name__, str(error)
    return message if message.startswith(name) else f"{name}: {message}"


def _seconds(value: object) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)  # type: ignore[arg-type]


__all__ = ["Deliveries", "FinalMessages", "Piece", "describe", "is_transient", "show_step"]
