"""Documents sent to the bot: read them with Kimi, confirm the cost if it is high, and summarise."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.budget import Refused
from bot.documents import Document, DocumentRejected, SummaryPlan, check_document
from bot.kimi import KimiError
from bot.pricing import format_points
from bot.turn import TurnOutcome, TurnPlace, TurnStatus
from handlers.bot_context import BotContext
from handlers.buttons import ConfirmSummary, decode, encode
from handlers.chat import answer, conversation_key, known_user, refusal_text, take_place
from handlers.command_arguments import excerpt
from handlers.services import BotServices, services
from handlers.texts import error_text, language_of, text
from handlers.triggers import caption_command, group_file_question
from storage import NewInflightTurn, NewMessage

log = logging.getLogger(__name__)

# An unanswered confirmation expires after an hour (the budget it was computed for has moved on).
PENDING_TTL = 3600.0
# A file name is the sender's text: replies show at most this much of it.
FILENAME_CHARS = 60


@dataclass
class PendingSummary:
    """A summary waiting for its asker to confirm the cost."""

    asker: Message
    quote: Message
    document: Document
    plan: SummaryPlan
    question: str


@dataclass(frozen=True)
class Attachment:
    """A file to read: a document, or the largest size of a photo (photos with text are read too)."""

    file_id: str
    file_unique_id: str
    file_name: str | None
    mime_type: str | None
    file_size: int | None


def attachment_of(message: Message | None) -> Attachment | None:
    if message is None:
        return None
    if message.document is not None:
        doc = message.document
        return Attachment(doc.file_id, doc.file_unique_id, doc.file_name, doc.mime_type, doc.file_size)
    if message.photo:
        photo = message.photo[-1]
        return Attachment(photo.file_id, photo.file_unique_id, "photo.jpg", "image/jpeg", photo.file_size)
    return None


class AccessWithdrawn(Exception):
    """The asker was denied (/deny) while their document was being read in parts."""


async def on_document(update: Update, context: BotContext) -> None:
    """A document in a private chat: always for us."""
    svc = services(context)
    message = update.effective_message
    if message is None or attachment_of(message) is None or message.from_user is None:
        return
    question = caption_command(message, context.bot, "summary")
    place = take_place(svc, message)
    try:
        if question is None:
            question = message.caption
        await summarise_document(context, svc, message, message, question, place)
    finally:
        place.leave()


async def on_group_document(update: Update, context: BotContext) -> None:
    """A document in a group: only when its caption mentions the bot or is /summary, or the
    document replies to one of the bot's messages."""
    svc = services(context)
    message = update.effective_message
    if message is None or attachment_of(message) is None or message.from_user is None:
        return
    question = group_file_question(message, context.bot)
    if question is None:
        return
    place = take_place(svc, message)
    try:
        await summarise_document(context, svc, message, message, question, place)
    finally:
        place.leave()


async def summarise_replied_document(update: Update, context: BotContext, question: str) -> bool:
    """A message addressed to the bot that replies to a document: that document is the subject."""
    message = update.effective_message
    replied = message.reply_to_message if message else None
    if message is None or message.from_user is None or replied is None or attachment_of(replied) is None:
        return False
    svc = services(context)
    place = take_place(svc, message)
    try:
        await summarise_document(context, svc, message, replied, question, place)
    finally:
        place.leave()
    return True


async def on_summary_command(update: Update, context: BotContext) -> None:
    svc = services(context)
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    place = take_place(svc, message)
    try:
        replied = message.reply_to_message
        if replied is None or attachment_of(replied) is None:
            lang = language_of(message.from_user.language_code)
            await message.reply_text(text(lang, "summary_usage"))
            return
        await summarise_document(context, svc, message, replied, " ".join(context.args or []), place)
    finally:
        place.leave()


async def summarise_document(
    context: BotContext,
    svc: BotServices,
    asker: Message,
    document_message: Message,
    question: str | None,
    place: TurnPlace,
) -> None:
    """Read the document and answer about it in `place`; the caller leaves the place afterwards
    (a confirmation does not keep it: the conversation goes on while the button waits)."""
    sender = asker.from_user
    telegram_document = attachment_of(document_message)
    if sender is None or telegram_document is None:
        return
    lang = language_of(sender.language_code)
    name = telegram_document.file_name or "document"
    try:
        check_document(telegram_document.file_name, telegram_document.mime_type, telegram_document.file_size)
    except DocumentRejected as rejected:
        await asker.reply_text(text(lang, f"doc_{rejected.reason}"))
        return
    user = await known_user(svc, sender)
    question = (question or "").strip() or text(lang, "doc_default_question")
    try:
        thread_id = asker.message_thread_id if asker.is_topic_message else None
        await context.bot.send_chat_action(asker.chat.id, ChatAction.TYPING, message_thread_id=thread_id)
    except TelegramError:
        pass
    try:
        document = await svc.document_reader.read(
            telegram_document.file_unique_id, name, lambda: download(context, telegram_document)
        )
    except DocumentRejected as rejected:
        await asker.reply_text(text(lang, f"doc_{rejected.reason}"))
        return
    except KimiError as error:
        log.info("document extraction failed: %s", error.log_text())
        await asker.reply_text(error_text(lang, error))
        return
    except TelegramError as error:
        log.info("document download failed: %s", error)
        await asker.reply_text(text(lang, "doc_download_failed"))
        return
    price = svc.conversations.model_for(user)
    plan = await svc.summaries.plan(user, price, document)
    if not plan.startable:
        await asker.reply_text(
            text(
                lang,
                "doc_cannot_afford",
                name=excerpt(document.filename, FILENAME_CHARS),
                cost=format_points(plan.estimate_micro),
                remaining=format_points(plan.remaining_micro or 0),
            )
        )
        return
    if svc.summaries.needs_confirmation(plan):
        await _ask_confirmation(
            context, svc, PendingSummary(asker, document_message, document, plan, question), lang
        )
        return
    await _run_summary(
        context, svc, PendingSummary(asker, document_message, document, plan, question), lang, place
    )


async def download(context: BotContext, document: Attachment) -> bytes:
    telegram_file = await context.bot.get_file(document.file_id)
    return bytes(await telegram_file.download_as_bytearray())


async def _ask_confirmation(
    context: BotContext, svc: BotServices, pending: PendingSummary, lang: str
) -> None:
    plan = pending.plan
    remaining = (
        text(lang, "unlimited") if plan.remaining_micro is None else format_points(plan.remaining_micro)
    )
    token = secrets.token_urlsafe(8)
    asker = pending.asker.from_user
    assert asker is not None  # summarise_document returns early for messages without a sender
    # In the database, not in memory: with several replicas the button may reach any of them.
    await svc.coordination.save_pending(token, asker.id, _pending_payload(pending))
    parts = text(lang, "doc_confirm_parts", count=len(plan.parts)) if plan.split else ""
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    text(lang, "doc_confirm_yes"), callback_data=encode(ConfirmSummary(token, go=True))
                ),
                InlineKeyboardButton(
                    text(lang, "doc_confirm_no"), callback_data=encode(ConfirmSummary(token, go=False))
                ),
            ]
        ]
    )
    question = text(
        lang,
        "doc_confirm",
        name=excerpt(pending.document.filename, FILENAME_CHARS),
        tokens=plan.document_tokens,
        parts=parts,
        cost=format_points(plan.estimate_micro),
        remaining=remaining,
        capped="" if plan.affordable else text(lang, "doc_confirm_capped"),
    )
    await pending.asker.reply_text(question, reply_markup=keyboard)


async def on_confirm_button(update: Update, context: BotContext) -> None:
    query = update.callback_query
    pressed = decode(query.data) if query is not None else None
    if query is None or not isinstance(pressed, ConfirmSummary):
        return
    lang = context.incoming.language
    token = pressed.token
    svc = services(context)
    found = await svc.coordination.pending(token, PENDING_TTL)
    pending = None if found is None else await _restore_pending(context, svc, found[1])
    if found is None or pending is None:
        await query.answer(text(lang, "doc_expired"), show_alert=True)
        return
    if found[0] != query.from_user.id:
        await query.answer(text(lang, "doc_not_yours"), show_alert=True)
        return
    if not await svc.coordination.take_pending(token):  # pressed twice: the other press has it
        await query.answer(text(lang, "doc_expired"), show_alert=True)
        return
    await query.answer()
    if query.message is not None:
        try:
            await query.edit_message_reply_markup(reply_markup=None)
        except TelegramError:
            pass
    if not pressed.go:
        await pending.asker.reply_text(text(lang, "doc_cancelled"))
        return
    place = take_place(svc, pending.asker)
    try:
        await _run_summary(context, svc, pending, lang, place)
    finally:
        place.leave()


def _pending_payload(pending: PendingSummary) -> dict[str, Any]:
    """What a confirmation needs later, as JSON: the messages, and the document by its cache key."""
    return {
        "asker": pending.asker.to_dict(),
        "quote": pending.quote.to_dict(),
        "file_unique_id": pending.document.file_unique_id,
        "filename": pending.document.filename,
        "question": pending.question,
    }


async def _restore_pending(
    context: BotContext, svc: BotServices, payload: dict[str, Any]
) -> PendingSummary | None:
    """The confirmation again, planned anew against the budget as it is now; None if the
    document's text is no longer cached."""
    asker = Message.de_json(payload["asker"], context.bot)
    quote = Message.de_json(payload["quote"], context.bot)
    document = await svc.document_reader.cached(payload["file_unique_id"], payload["filename"])
    if asker is None or quote is None or asker.from_user is None or document is None:
        return None
    user = await known_user(svc, asker.from_user)
    plan = await svc.summaries.plan(user, svc.conversations.model_for(user), document)
    return PendingSummary(asker, quote, document, plan, payload["question"])


async def _run_summary(
    context: BotContext, svc: BotServices, pending: PendingSummary, lang: str, place: TurnPlace
) -> None:
    document = pending.document
    shown_name = excerpt(document.filename, FILENAME_CHARS)
    preamble = document.as_message()
    if pending.plan.split:
        assert pending.asker.from_user is not None  # only documents with a sender get this far
        asker_id = pending.asker.from_user.id
        status = await pending.asker.reply_text(
            text(lang, "doc_part_progress", name=shown_name, index=1, total=pending.plan.steps)
        )

        async def progress(index: int, total: int) -> None:
            if not svc.is_allowed(asker_id):
                raise AccessWithdrawn  # denied while the document is read: no further part
            # Optional, like a stream's edits: skipped rather than waited for when the chat's
            # allowance is short (a group's 20 a minute is shared with everyone's answers).
            chat_id = status.chat.id
            if index == 1 or svc.guard.delay_for(chat_id) > 0 or not svc.guard.has_headroom(chat_id):
                return
            try:
                await context.bot.edit_message_text(
                    text(lang, "doc_part_progress", name=shown_name, index=index, total=total),
                    chat_id=chat_id,
                    message_id=status.message_id,
                    rate_limit_args={"retry": False},
                )
            except TelegramError as error:
                log.debug("progress edit skipped: %s", error)

        user = await known_user(svc, pending.asker.from_user)
        key = conversation_key(svc, pending.asker, user.telegram_id)
        conversation = await svc.history.current(key)
        # Recorded with each part's hold: a crash mid-part is freed and told at the next start.
        asked = NewInflightTurn(
            chat_id=pending.asker.chat.id,
            user_id=user.telegram_id,
            thread_id=key.thread_id,
            reply_to=pending.asker.message_id,
            language=user.language,
            conversation_id=conversation.id,
            model=pending.plan.price.model,
            purpose="document",
            question=pending.question,
            prompt_tokens=0,  # each part's own bound is filled in with its hold
        )
        try:
            result = await svc.summaries.summarise_parts(
                user,
                pending.asker.chat.id,
                pending.plan,
                document,
                pending.question,
                progress,
                conversation.id,
                asked,
            )
        except KimiError as error:
            await pending.asker.reply_text(error_text(lang, error))
            return
        except AccessWithdrawn:
            await pending.asker.reply_text(text(lang, "not_allowed", user_id=asker_id))
            return
        if isinstance(result, Refused):
            outcome = TurnOutcome(
                TurnStatus.REFUSED,
                pending.plan.price.model,
                budget=result.view,
                needed_micro=result.needed_micro,
            )
            await pending.asker.reply_text(refusal_text(outcome, lang))
            return
        try:
            await status.edit_text(
                text(lang, "doc_parts_done", name=shown_name, total=len(pending.plan.parts))
            )
        except TelegramError as error:
            log.debug("progress edit skipped: %s", error)
        preamble = NewMessage(
            role="system",
            content=f"The user shared the document «{document.filename}», too long to read at once. "
            f"Summaries of its parts follow.\n\n{result}",
            kind="document",
        )
    await answer(
        context,
        svc,
        pending.asker,
        pending.question,
        preamble=(preamble,),
        purpose="document",
        quote=pending.quote,
        place=place,
    )
