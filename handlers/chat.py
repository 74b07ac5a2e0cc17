"""Text messages: a private message, or a group message meant for the bot, becomes a turn."""

from __future__ import annotations

import contextlib
import logging
import time
from contextlib import aclosing
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot.kimi import KimiQuotaExhausted
from bot.pricing import format_points
from bot.settings import StreamMode
from bot.turn import (
    AnswerDelta,
    ConversationKey,
    Queued,
    SearchingWeb,
    ThinkingDelta,
    TurnFinished,
    TurnOutcome,
    TurnPlace,
    TurnRequest,
    TurnStarted,
    TurnStatus,
)
from handlers.bot_context import BotContext
from handlers.bot_context import conversation_key as key_of
from handlers.budget_notes import budget_notes
from handlers.buttons import ContinueAnswer, StopAnswer, decode, encode
from handlers.delivery import describe, is_transient
from handlers.services import ActiveAnswer, BotServices, StopReason, services
from handlers.streamer import ReplyStreamer, StreamPlacement
from handlers.texts import error_text, language_of, reset_text, text
from storage import NewMessage, Purpose, StoredImage, UserRecord

log = logging.getLogger(__name__)

# Telegram caps a message at 4096 characters; a longer question is refused by Telegram itself, so
# anything that reaches us fits. Kimi's context window is the real limit, checked by the core.


def conversation_key(svc: BotServices, message: Message, user_id: int) -> ConversationKey:
    """The key of a message that is not the update's own (a document's asker); else use
    context.incoming.key."""
    return key_of(message, user_id, svc.settings.group_context)


def take_place(svc: BotServices, asker: Message) -> TurnPlace:
    """The asker's place in their conversation, taken on arrival (before any await): a question
    sent right after a document or picture is then answered after it joined the conversation."""
    assert asker.from_user is not None
    return svc.conversations.take_place(conversation_key(svc, asker, asker.from_user.id))


async def known_user(svc: BotServices, user: User) -> UserRecord:
    return await svc.users.met(user.id, language_of(user.language_code), user.username)


async def on_private_text(update: Update, context: BotContext) -> None:
    svc = services(context)
    message = update.effective_message
    if message is None:
        return
    await answer(context, svc, message, message.text or "")


async def answer(
    context: BotContext,
    svc: BotServices,
    message: Message,
    question: str,
    preamble: tuple[NewMessage, ...] = (),
    purpose: Purpose = "chat",
    quote: Message | None = None,
    place: TurnPlace | None = None,
    images: tuple[StoredImage, ...] = (),
    note: str | None = None,
    sender: User | None = None,
    continues: int | None = None,
) -> TurnOutcome | None:
    """Run one turn for `message` and stream its answer into the chat (quoting `quote` in groups).

    `place`: the conversation queue place, when the caller took it on arrival and awaited other
    work since (a document is read first); it is left when the answer is done. `images`: pictures
    shown with the question; `note`: a line to add under the answer.
    `sender`: who asks, when not the message's author (a button under the bot's message).
    `continues`: the stored answer to continue (see TurnRequest.continues)."""
    sender = sender or message.from_user
    if sender is None:
        if place is not None:
            place.leave()
        return None
    key = conversation_key(svc, message, sender.id)
    place = place or svc.conversations.take_place(key)  # before any await: keeps the arrival order
    lang = language_of(sender.language_code)
    if not question.strip() and not preamble and continues is None:
        place.leave()
        await message.reply_text(text(lang, "empty_message"))
        return None
    active = ActiveAnswer(sender.id, message.chat.id)
    streamer = make_streamer(context, svc, quote or message, lang, active)
    try:
        # A sign of life before any work: in a burst the turn's first steps queue for a while.
        await streamer.announce()
        user = await known_user(svc, sender)
    except BaseException:
        place.leave()
        raise
    request = TurnRequest(
        user=user,
        chat_id=message.chat.id,
        key=key,
        text=question.strip(),
        purpose=purpose,
        preamble=preamble,
        reply_to=message.message_id,
        images=images,
        continues=continues,
    )
    try:
        await svc.active.add(active)
    except BaseException:
        place.leave()
        raise
    if svc.shutting_down:
        active.end(StopReason.SHUTDOWN)  # arrived after the grace: say so rather than start
    outcome: TurnOutcome | None = None
    timer = TurnTimer(svc)
    try:
        async with aclosing(svc.conversations.run_turn(request, active.stop, place)) as events:
            async for event in events:
                timer.saw(event)
                if isinstance(event, TurnStarted):
                    if event.continued:
                        streamer.add_answer(event.continued)  # the whole answer shows, not a fragment
                    await streamer.start()
                elif isinstance(event, AnswerDelta):
                    streamer.add_answer(event.text)
                elif isinstance(event, ThinkingDelta):
                    streamer.add_thinking(event.text)
                elif isinstance(event, SearchingWeb):
                    streamer.set_searching()
                elif isinstance(event, Queued):
                    await streamer.show_notice(text(lang, "queued", seconds=event.seconds))
                elif isinstance(event, TurnFinished):
                    outcome = event.outcome
        if outcome is not None and outcome.status is TurnStatus.NOT_ALLOWED:
            # Denied while this message waited behind an answer: the refusal it would get now.
            await message.reply_text(text(lang, "not_allowed", user_id=sender.id))
        elif outcome is not None:
            await show_outcome(context, svc, message, streamer, outcome, lang, active.reason, note, user)
    except TelegramError as error:
        # Expected (blocked, kicked, a definitive refusal): one line, no traceback.
        log.warning("could not deliver the answer in chat %s: %s", message.chat.id, describe(error))
        await streamer.abort()
    finally:
        timer.done()
        await svc.active.remove(active)
        active.ended.set()
        place.leave()  # idempotent; frees the queue even if the turn never started
    return outcome


class TurnTimer:
    """The metrics of one turn: queue wait, Kimi's first token and total time, its outcome."""

    def __init__(self, svc: BotServices) -> None:
        self._metrics = svc.metrics
        self._arrived = time.monotonic()
        self._started: float | None = None
        self._first_token = False
        self._outcome: str | None = None

    def saw(self, event: object) -> None:
        now = time.monotonic()
        if isinstance(event, TurnStarted):
            self._started = now
            self._metrics.queue_wait_seconds.observe(now - self._arrived)
            self._metrics.active_streams.inc()
        elif isinstance(event, AnswerDelta | ThinkingDelta) and not self._first_token:
            self._first_token = True
            if self._started is not None:
                self._metrics.first_token_seconds.observe(now - self._started)
        elif isinstance(event, TurnFinished):
            self._outcome = event.outcome.status.value
            if self._started is not None:
                self._metrics.answer_seconds.observe(now - self._started)

    def done(self) -> None:
        if self._started is not None:
            self._metrics.active_streams.dec()
        self._metrics.turns.labels(self._outcome or "abandoned").inc()


def make_streamer(
    context: BotContext, svc: BotServices, message: Message, lang: str, active: ActiveAnswer
) -> ReplyStreamer:
    private = message.chat.type == ChatType.PRIVATE
    mode = svc.settings.stream_mode
    use_draft = mode is StreamMode.DRAFT or (mode is StreamMode.AUTO and private)
    stop_markup = InlineKeyboardMarkup(
        [[InlineKeyboardButton(text(lang, "stop_button"), callback_data=encode(StopAnswer(active.token)))]]
    )
    return ReplyStreamer(
        bot=context.bot,
        placement=StreamPlacement(
            chat_id=message.chat.id,
            thread_id=message.message_thread_id if message.is_topic_message else None,
            reply_to=None if private else message.message_id,
        ),
        guard=svc.guard,
        pace=svc.pace,
        use_draft=use_draft and private,
        stop_markup=stop_markup,
        thinking_label=text(lang, "thinking"),
        searching_label=text(lang, "searching"),
        on_chat_gone=lambda: active.end(StopReason.CHAT_GONE),  # stop paying for an unseen answer
    )


async def show_outcome(
    context: BotContext,
    svc: BotServices,
    message: Message,
    streamer: ReplyStreamer,
    outcome: TurnOutcome,
    lang: str,
    stop_reason: StopReason | None = None,
    extra_note: str | None = None,
    asker: UserRecord | None = None,
) -> None:
    """`asker`: the asker's record as the turn began, if the caller has it (saves reads)."""
    status = outcome.status
    if status is TurnStatus.REFUSED:
        await message.reply_text(refusal_text(outcome, lang))
        return
    if status is TurnStatus.TOO_LONG:
        await message.reply_text(text(lang, "too_long", model=outcome.model))
        return
    if status is TurnStatus.NOT_CONTINUABLE:
        await message.reply_text(text(lang, "continue_expired"))
        return
    if status is TurnStatus.FAILED and outcome.error is not None:
        if isinstance(outcome.error, KimiQuotaExhausted):
            await alert_admins(context, svc)
        if not outcome.content.strip():
            await streamer.abort()
            await message.reply_text(error_text(lang, outcome.error))
            return
    if stop_reason is StopReason.CHAT_GONE:
        await streamer.abort()  # nobody to show it to; the turn is settled and stored
        return
    notes = [
        outcome_note(outcome, lang, stop_reason),
        *await budget_notes(svc, message.from_user, outcome, lang, asker),
        extra_note,
    ]
    note = "\n".join(line for line in notes if line) or None
    markup = None
    if stop_reason is StopReason.SHUTDOWN and outcome.assistant_message_id is not None:
        markup = continue_markup(lang, outcome.assistant_message_id)
    await finish_or_keep(
        svc,
        streamer,
        outcome.assistant_message_id,
        note=note,
        empty_text=text(lang, "empty_answer"),
        markup=markup,
    )


async def finish_or_keep(
    svc: BotServices,
    streamer: ReplyStreamer,
    assistant_message_id: int | None,
    **finish: Any,
) -> None:
    """Show the answer's final messages; if Telegram fails for a passing reason, keep them as a
    pending delivery (retried, and resent after a restart) instead of losing a paid answer."""
    try:
        ids = await streamer.finish(**finish)
    except TelegramError as error:
        if not is_transient(error):
            raise
        plan = streamer.final_messages()
        plan.assistant_message_id = assistant_message_id
        await svc.deliveries.keep(plan, error)
        return
    if assistant_message_id is not None and ids:
        await svc.history.shown_as(assistant_message_id, ids)


def search_notes(lang: str, search_skipped: bool, search_limited: bool, searches: int) -> list[str]:
    """Lines added under an answer about its web search."""
    notes = []
    if search_skipped:
        notes.append(text(lang, "note_search_skipped"))
    if search_limited:
        notes.append(text(lang, "note_search_limited", searches=searches))
    return notes


def continue_markup(lang: str, answer_id: int) -> InlineKeyboardMarkup:
    """The Continue button under an answer a restart or a crash cut."""
    button = InlineKeyboardButton(
        text(lang, "continue_button"), callback_data=encode(ContinueAnswer(answer_id))
    )
    return InlineKeyboardMarkup([[button]])


async def on_continue_button(update: Update, context: BotContext) -> None:
    """Continue pressed: Kimi writes on from the stored answer (partial mode), in a new message."""
    query = update.callback_query
    if query is None:
        return
    pressed = decode(query.data)
    await query.answer()
    message = query.message
    if not isinstance(pressed, ContinueAnswer) or not isinstance(message, Message):
        return
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(None)  # pressed once; the answer continues below
    await answer(
        context, services(context), message, "", sender=query.from_user, continues=pressed.message_id
    )


def outcome_note(outcome: TurnOutcome, lang: str, stop_reason: StopReason | None = None) -> str | None:
    notes = search_notes(lang, outcome.search_skipped, outcome.search_limited, outcome.searches)
    status_note = _status_note(outcome, lang, stop_reason)
    if status_note:
        notes.append(status_note)
    return "\n".join(notes) or None


def _status_note(outcome: TurnOutcome, lang: str, stop_reason: StopReason | None) -> str | None:
    match outcome.status:
        case TurnStatus.STOPPED if stop_reason is StopReason.SHUTDOWN:
            return text(lang, "note_restart")
        case TurnStatus.STOPPED:
            return text(lang, "note_stopped")
        case TurnStatus.INCOMPLETE:
            return text(lang, "note_incomplete")
        case TurnStatus.FILTERED:
            return text(lang, "note_filtered")
        case TurnStatus.FAILED if outcome.error is not None:
            return text(lang, "note_failed_partial", error=error_text(lang, outcome.error))
        case TurnStatus.TRUNCATED:
            return text(lang, "note_capped" if outcome.capped else "note_truncated")
    return None


def refusal_text(outcome: TurnOutcome, lang: str) -> str:
    view = outcome.budget
    assert view is not None
    reset = reset_text(lang, view.period.ends_at)
    return text(
        lang,
        "refused_budget",
        remaining=format_points(view.remaining_micro or 0),
        limit=format_points(view.limit_micro or 0),
        needed=format_points(outcome.needed_micro),
        reset=reset,
    )


async def alert_admins(context: BotContext, svc: BotServices) -> None:
    """Tell admins the Kimi account needs topping up; at most once an hour."""
    last = svc.quota_alerted_at
    if last is not None and time.monotonic() - last < 3600:
        return
    svc.quota_alerted_at = time.monotonic()
    for admin_id in svc.settings.admin_user_ids:
        try:
            admin = await svc.users.find(admin_id)
            lang = admin.language if admin and admin.language else "en"
            await context.bot.send_message(admin_id, text(lang, "admin_quota_alert"))
        except TelegramError as error:
            log.warning("could not alert admin %s: %s", admin_id, error)
