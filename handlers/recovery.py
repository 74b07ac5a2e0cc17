"""Telling users about answers a crash cut (bot.recovery settled them at start-up).

Each gets its partial text as a normal message with a notice, in the chat (and forum topic) it
was asked in, quoting the question in groups; an answer with nothing written gets a short note
asking to send the question again. Delivery failures are retried like any final message.
"""

from __future__ import annotations

import logging

from bot.recovery import InterruptedAnswer
from handlers.bot_context import TelegramBot
from handlers.chat import continue_markup, finish_or_keep
from handlers.delivery import describe
from handlers.flood import is_group_chat
from handlers.services import BotServices
from handlers.streamer import ReplyStreamer, StreamPlacement
from handlers.texts import text

log = logging.getLogger(__name__)

QUESTION_EXCERPT = 80


async def report_interrupted(bot: TelegramBot, svc: BotServices, answers: list[InterruptedAnswer]) -> None:
    for answer in answers:
        try:
            await _report(bot, svc, answer)
        except Exception as error:  # one user's chat must not keep the others from being told
            chat_id = answer.turn.turn.chat_id
            log.warning("could not report a cut answer in chat %s: %s", chat_id, describe(error))
        await svc.recovery.forget(answer)


async def _report(bot: TelegramBot, svc: BotServices, answer: InterruptedAnswer) -> None:
    turn = answer.turn.turn
    lang = turn.language or "en"
    streamer = ReplyStreamer(
        bot=bot,
        placement=StreamPlacement(
            chat_id=turn.chat_id,
            thread_id=turn.thread_id,
            reply_to=turn.reply_to if is_group_chat(turn.chat_id) else None,
        ),
        guard=svc.guard,
        pace=svc.pace,
        use_draft=False,
    )
    streamer.answer = answer.text
    if answer.text.strip():
        note = text(lang, "note_crash")
    else:
        question = turn.question
        if len(question) > QUESTION_EXCERPT:
            question = question[:QUESTION_EXCERPT] + "…"
        # A document read in parts: the parts read before the crash were charged as they went.
        kind = "note_crash_document" if turn.purpose == "document" else "note_crash_nothing"
        note = text(lang, kind, question=question)
    markup = None
    if answer.assistant_message_id is not None:
        markup = continue_markup(lang, answer.assistant_message_id)
    await finish_or_keep(svc, streamer, answer.assistant_message_id, note=note, markup=markup)
