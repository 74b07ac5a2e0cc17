"""Shows an answer in Telegram while Kimi writes it.

The streamer keeps the raw Markdown and, at a pace the flood guard allows, renders all of it to
text + entities (so unclosed Markdown never reaches Telegram as markup), cuts it into 4096-unit
pieces and makes the chat show them: a draft (private chats) or a message that is edited (groups,
or STREAM_MODE=edit). Pieces before the last are final messages as soon as they exist. `finish()`
makes the chat show exactly the final render: nothing lost, nothing shown twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from telegram import InlineKeyboardMarkup, LinkPreviewOptions, MessageEntity, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError

from handlers.bot_context import TelegramBot
from handlers.delivery import FinalMessages, Piece
from handlers.flood import FloodGuard, is_group_chat
from handlers.progress_pace import ProgressPace
from handlers.rendering import (
    MAX_ENTITIES_PER_MESSAGE,
    GrowingRender,
    RenderedMessage,
    render_for_telegram,
    render_reasoning_preview,
    utf16_len,
)

log = logging.getLogger(__name__)

TELEGRAM_LIMIT = 4096
TYPING_REFRESH = 4.5  # a chat action shows for about 5 s
DRAFT_KEEPALIVE = 20.0  # a draft disappears after 30 s without a refresh
PRIVATE_EDIT_INTERVAL = 1.0
GROUP_EDIT_INTERVAL = 3.0
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


def error_text(error: TelegramError) -> str:
    # PTB capitalises Telegram's descriptions; compare lower-cased.
    return str(error).lower()


def is_not_modified(error: TelegramError) -> bool:
    return isinstance(error, BadRequest) and "message is not modified" in error_text(error)


def is_rejected_formatting(error: TelegramError) -> bool:
    text = error_text(error)
    return isinstance(error, BadRequest) and ("entit" in text or "parse" in text)


def with_note(pieces: list[RenderedMessage], note: str | None) -> list[RenderedMessage]:
    """Append an italic status line (stopped, incomplete…) after the answer, never inside it."""
    if not note:
        return pieces
    if not pieces:
        return [RenderedMessage(note, (MessageEntity(MessageEntity.ITALIC, 0, utf16_len(note)),))]
    last = pieces[-1]
    separator = "\n\n" if last.text else ""
    start = utf16_len(last.text) + utf16_len(separator)
    if start + utf16_len(note) > TELEGRAM_LIMIT or len(last.entities) >= MAX_ENTITIES_PER_MESSAGE:
        return [*pieces, *with_note([], note)]
    entity = MessageEntity(MessageEntity.ITALIC, start, utf16_len(note))
    return [*pieces[:-1], RenderedMessage(last.text + separator + note, (*last.entities, entity))]


@dataclass
class _Shown:
    message_id: int
    text: str
    entities: tuple[MessageEntity, ...]
    markup: InlineKeyboardMarkup | None


@dataclass
class StreamPlacement:
    chat_id: int
    thread_id: int | None = None
    reply_to: int | None = None  # quote the question (groups)


@dataclass
class ReplyStreamer:
    bot: TelegramBot
    placement: StreamPlacement
    guard: FloodGuard
    use_draft: bool
    # Shared by every answer of the process; a streamer of its own (a test, a one-off) paces alone.
    pace: ProgressPace = field(default_factory=ProgressPace)
    stop_markup: InlineKeyboardMarkup | None = None
    thinking_label: str = "💭"
    searching_label: str = "🔎"
    draft_failed: bool = False  # set when Telegram refuses drafts here: edits from then on
    answer: str = ""
    reasoning: str = ""
    searching: bool = False
    _shown: list[_Shown] = field(default_factory=list)
    _progress_render: GrowingRender = field(default_factory=GrowingRender)  # drafts and edits
    # Each entity as Telegram's JSON, converted once per answer: every draft resends them all.
    _wire_entities: dict[int, tuple[MessageEntity, dict[str, object]]] = field(default_factory=dict)
    _plain: bool = False
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    _finished: bool = False
    _pump: asyncio.Task[None] | None = None
    _draft_id: int = field(default_factory=lambda: random.randint(1, 2**31 - 1))
    _last_draft: tuple[str, tuple[MessageEntity, ...]] | None = None
    _last_draft_at: float = 0.0
    _last_progress_at: float = 0.0
    _reserved: bool = False
    # Called once when Telegram answers 403 (blocked, kicked, chat gone): the answer should end.
    on_chat_gone: Callable[[], None] | None = None
    _final_request: tuple[str | None, str, InlineKeyboardMarkup | None] = (None, "…", None)
    _announced: bool = False

    # --- feeding ---------------------------------------------------------------------------------

    async def announce(self) -> None:
        """A sign of life as soon as the question arrives, before any work on it: an empty draft
        (Telegram shows "Thinking…") or the typing action. Neither counts toward flood limits."""
        self._announced = True
        if self.use_draft:
            try:
                await self._send_draft(RenderedMessage("", ()))
                return
            except Forbidden as error:
                self._chat_gone(error)
                return
            except TelegramError as error:
                log.info("drafts refused in chat %s (%s); using edits", self.placement.chat_id, error)
                self.draft_failed = True
        await self._typing()

    async def show_notice(self, notice: str) -> None:
        """A line shown in the draft while nothing is written yet (e.g. waiting for Kimi's slots);
        the answer replaces it. In chats without drafts the typing action has to do."""
        if self.use_draft and not self.draft_failed and not self.answer and not self.reasoning:
            with contextlib.suppress(TelegramError):
                await self._send_draft(RenderedMessage(notice, ()))

    async def start(self) -> None:
        chat_id = self.placement.chat_id
        if is_group_chat(chat_id):
            self.guard.reserve(chat_id)  # the final message must always find a slot
            self._reserved = True
        if not self._announced:
            await self.announce()
        if self._finished:
            return  # the chat is gone (blocked, kicked)
        self._pump = asyncio.create_task(self._run_pump(), name=f"stream-{chat_id}")

    def add_answer(self, text: str) -> None:
        self.answer += text
        self.searching = False
        self._dirty.set()

    def add_thinking(self, text: str) -> None:
        self.reasoning += text
        self._dirty.set()

    def set_searching(self) -> None:
        self.searching = True
        self._dirty.set()

    # --- the final state -------------------------------------------------------------------------

    async def finish(
        self, note: str | None = None, empty_text: str = "…", markup: InlineKeyboardMarkup | None = None
    ) -> list[int]:
        """Show the whole answer as final messages (without the stop button; `markup` on the last
        one); returns their ids. On failure, final_messages() says what is left to show."""
        await self._stop_pump()
        self._final_request = (note, empty_text, markup)
        pieces = self._final_pieces(note, empty_text)
        try:
            try:
                await self._show(pieces, markup_on_last=markup, essential=True)
            except BadRequest as error:
                if not is_rejected_formatting(error):
                    raise
                log.warning("Telegram rejected formatting (%s); sending plain text", error)
                self._plain = True
                await self._show(self._final_pieces(note, empty_text), markup_on_last=markup, essential=True)
        finally:
            self._release_reservation()
        return [shown.message_id for shown in self._shown]

    def final_messages(self) -> FinalMessages:
        """What the chat must still be made to show, after finish() failed part-way (see
        handlers.delivery): each final piece, with the message that shows it if one does."""
        note, empty_text, markup = self._final_request
        pieces = self._final_pieces(note, empty_text)
        plan = []
        for index, piece in enumerate(pieces):
            shown = self._shown[index] if index < len(self._shown) else None
            wanted = _Shown(0, piece.text, piece.entities, markup if index == len(pieces) - 1 else None)
            done = shown is not None and _shown_key(shown) == _shown_key(wanted)
            plan.append(
                Piece(
                    piece.text,
                    [entity.to_dict() for entity in piece.entities],
                    shown.message_id if shown is not None else None,
                    done,
                )
            )
        return FinalMessages(
            chat_id=self.placement.chat_id,
            pieces=plan,
            thread_id=self.placement.thread_id,
            reply_to=self.placement.reply_to,
            markup=markup.to_dict() if markup is not None else None,
            delete=[shown.message_id for shown in self._shown[len(pieces) :]],
        )

    def _chat_gone(self, error: TelegramError) -> None:
        log.warning("chat %s is gone (%s); ending the answer", self.placement.chat_id, error)
        self._finished = True
        if self.on_chat_gone is not None:
            self.on_chat_gone()

    async def abort(self) -> None:
        """Stop showing progress without a final message (the caller replies otherwise)."""
        await self._stop_pump()
        self._release_reservation()

    def _final_pieces(self, note: str | None, empty_text: str) -> list[RenderedMessage]:
        body = self.answer.strip() or ("" if note else empty_text)
        return with_note(self._render(body), note)

    def _render(self, markdown: str, progress: bool = False) -> list[RenderedMessage]:
        """The pieces of `markdown`; `progress`: the answer so far, rendered a block at a time
        (final messages are always rendered whole)."""
        if not markdown:
            return []
        if progress:
            pieces = self._progress_render.render(markdown, TELEGRAM_LIMIT)
        else:
            pieces = render_for_telegram(markdown, TELEGRAM_LIMIT)
        if self._plain:
            # The rendered text without its entities reads better than raw Markdown.
            return [RenderedMessage(piece.text, ()) for piece in pieces]
        return pieces

    def _progress_pieces(self) -> list[RenderedMessage]:
        if self.answer.strip():
            return self._render(self.answer, progress=True)
        if self.reasoning.strip():
            return [render_reasoning_preview(self.reasoning, "", TELEGRAM_LIMIT, label=self.thinking_label)]
        if self.searching:
            return [RenderedMessage(self.searching_label, ())]
        return []

    # --- the pump: progress at the allowed pace --------------------------------------------------

    async def _run_pump(self) -> None:
        with self.pace.stream():
            await self._pump_progress()

    async def _pump_progress(self) -> None:
        chat_id = self.placement.chat_id
        own_interval = GROUP_EDIT_INTERVAL if is_group_chat(chat_id) else PRIVATE_EDIT_INTERVAL
        while not self._finished:
            timeout = self._idle_timeout()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), timeout)
            if self._finished:
                return
            if not self._dirty.is_set():
                await self._keep_alive()
                continue
            interval = self.pace.interval(own_interval)
            wait = max(self.guard.delay_for(chat_id), self._last_progress_at + interval - time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if not self.guard.has_headroom(chat_id):
                await asyncio.sleep(interval)
                continue
            self._dirty.clear()
            try:
                await self._show(self._progress_pieces(), markup_on_last=self.stop_markup, essential=False)
            except RetryAfter:
                self._dirty.set()  # the guard now knows the penalty; the next try shows everything
            except Forbidden as error:
                self._chat_gone(error)
                return
            except (BadRequest, NetworkError) as error:
                self._on_progress_error(error)
            self._last_progress_at = time.monotonic()

    def _idle_timeout(self) -> float:
        if self.use_draft and not self.draft_failed:
            return max(0.1, DRAFT_KEEPALIVE - (time.monotonic() - self._last_draft_at))
        return TYPING_REFRESH

    async def _keep_alive(self) -> None:
        try:
            if self.use_draft and not self.draft_failed and self._last_draft is not None:
                text, entities = self._last_draft
                await self._send_draft(RenderedMessage(text, entities), force=True)
            elif not self._shown:
                await self._typing()
        except TelegramError as error:
            log.debug("keep-alive failed: %s", error)

    def _on_progress_error(self, error: TelegramError) -> None:
        if is_rejected_formatting(error):
            log.warning("Telegram rejected formatting while streaming (%s); plain text from now", error)
            self._plain = True
            self._dirty.set()
        else:
            log.info("progress update skipped: %s", error)

    async def _stop_pump(self) -> None:
        self._finished = True
        self._dirty.set()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None

    def _release_reservation(self) -> None:
        if self._reserved:
            self.guard.unreserve(self.placement.chat_id)
            self._reserved = False

    # --- making the chat show pieces -------------------------------------------------------------

    async def _show(
        self, pieces: list[RenderedMessage], markup_on_last: InlineKeyboardMarkup | None, essential: bool
    ) -> None:
        if not pieces:
            return
        drafting = self.use_draft and not self.draft_failed and not essential
        settled = pieces[:-1] if drafting else pieces
        for index, piece in enumerate(settled):
            markup = markup_on_last if index == len(pieces) - 1 else None
            await self._put(index, piece, markup, essential=essential or index < len(pieces) - 1)
        if drafting:
            try:
                await self._send_draft(pieces[-1])
            except RetryAfter:
                raise
            except TelegramError as error:
                if is_rejected_formatting(error):
                    raise
                # Refused (an old Bot API, a group) or broken: edits work everywhere.
                log.info("drafts refused in chat %s (%s); using edits", self.placement.chat_id, error)
                self.draft_failed = True
                self._dirty.set()
        elif essential:
            # The final render may be shorter than what was shown: remove leftovers.
            for extra in self._shown[len(pieces) :]:
                with contextlib.suppress(TelegramError):
                    await self.bot.delete_message(self.placement.chat_id, extra.message_id)
            del self._shown[len(pieces) :]

    async def _put(
        self, index: int, piece: RenderedMessage, markup: InlineKeyboardMarkup | None, essential: bool
    ) -> None:
        rate_args = None if essential else {"retry": False}
        if index < len(self._shown):
            shown = self._shown[index]
            if (shown.text, _entity_key(shown.entities), _markup_key(shown.markup)) == (
                piece.text,
                _entity_key(piece.entities),
                _markup_key(markup),
            ):
                return  # never an edit with unchanged text
            try:
                await self.bot.edit_message_text(
                    piece.text,
                    chat_id=self.placement.chat_id,
                    message_id=shown.message_id,
                    entities=list(piece.entities) or None,
                    reply_markup=markup,
                    link_preview_options=NO_PREVIEW,
                    rate_limit_args=rate_args,
                )
            except BadRequest as error:
                if not is_not_modified(error):
                    if "not found" in error_text(error) and essential:
                        # The user deleted it: send the piece anew rather than lose it.
                        del self._shown[index:]
                        await self._put(index, piece, markup, essential)
                        return
                    raise
            self._shown[index] = _Shown(shown.message_id, piece.text, piece.entities, markup)
            return
        message = await self.bot.send_message(
            self.placement.chat_id,
            piece.text,
            entities=list(piece.entities) or None,
            reply_markup=markup,
            message_thread_id=self.placement.thread_id,
            reply_parameters=self._reply_parameters(index),
            link_preview_options=NO_PREVIEW,
            rate_limit_args=None,
        )
        self._shown.append(_Shown(message.message_id, piece.text, piece.entities, markup))

    def _reply_parameters(self, index: int) -> ReplyParameters | None:
        if index != 0 or self.placement.reply_to is None:
            return None
        return ReplyParameters(self.placement.reply_to, allow_sending_without_reply=True)

    async def _send_draft(self, piece: RenderedMessage, force: bool = False) -> None:
        key = (piece.text, piece.entities)
        if (
            not force
            and self._last_draft is not None
            and (piece.text, _entity_key(piece.entities))
            == (self._last_draft[0], _entity_key(self._last_draft[1]))
        ):
            return
        # Bot API 10.3: Telegram shows its own stop control on the draft (older versions ignore it).
        wire: dict[str, object] = {"can_stop": True}
        if piece.entities:
            wire["entities"] = self._as_wire(piece.entities)
        await self.bot.send_message_draft(
            self.placement.chat_id,
            self._draft_id,
            text=piece.text,
            message_thread_id=self.placement.thread_id,
            rate_limit_args={"retry": False},
            api_kwargs=wire,
        )
        self._last_draft = key
        self._last_draft_at = time.monotonic()

    def _as_wire(self, entities: tuple[MessageEntity, ...]) -> list[dict[str, object]]:
        """The entities as Telegram's JSON. The progress render reuses its entity objects, so each
        is converted once (by identity: MessageEntity compares equal without its URL)."""
        found = []
        for entity in entities:
            known = self._wire_entities.get(id(entity))
            if known is None:
                known = self._wire_entities[id(entity)] = (entity, entity.to_dict())
            found.append(known[1])
        return found

    async def _typing(self) -> None:
        with contextlib.suppress(TelegramError):
            await self.bot.send_chat_action(
                self.placement.chat_id, ChatAction.TYPING, message_thread_id=self.placement.thread_id
            )


def _shown_key(shown: _Shown) -> tuple[object, ...]:
    return (shown.text, _entity_key(shown.entities), _markup_key(shown.markup))


def _entity_key(entities: tuple[MessageEntity, ...] | list[MessageEntity]) -> tuple[object, ...]:
    return tuple((e.type, e.offset, e.length, e.url, e.language) for e in entities)


def _markup_key(markup: InlineKeyboardMarkup | None) -> object:
    return None if markup is None else markup.to_json()
