"""Pictures sent to the bot: a photo (its largest size), an image document, or an album.

For a model that sees (`vision = true` in the price table) the pictures go to Kimi as image parts of
the user's message, with the caption (or "describe this") as its text; an album is one turn with
all its pictures. For a text-only model the text in the pictures is read as before (Kimi's OCR),
and the answer says in one line which model could see the picture itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from telegram import Message, Update
from telegram.constants import ChatAction
from telegram.error import TelegramError

from bot.documents import Document, DocumentRejected
from bot.images import MAX_IMAGE_BYTES, ImageRejected, prepare_image
from bot.kimi import KimiError
from bot.turn import TurnPlace
from handlers import documents
from handlers.bot_context import BotContext
from handlers.chat import answer, known_user, take_place
from handlers.documents import Attachment, attachment_of
from handlers.services import BotServices, services
from handlers.texts import error_text, language_of, text
from handlers.triggers import caption_command, group_file_question
from storage import StoredImage

log = logging.getLogger(__name__)

ALBUMS_KEY = "albums"
# Telegram delivers an album as one message per picture, in quick succession: the album is
# complete once no further picture of it arrived for this long.
ALBUM_SETTLE_SECONDS = 1.0
IMAGE_EXTENSIONS = frozenset(".jpg .jpeg .png .webp .gif .bmp .tif .tiff .avif .heic".split())
# Preferred when naming a model that can see, in this order; else any priced one that can.
PREFERRED_VISION_MODELS = ("kimi-k2.6", "kimi-k2.5")


@dataclass(eq=False)
class _Album:
    messages: list[Message]
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


def is_picture(message: Message | None) -> bool:
    if message is None:
        return False
    if message.photo:
        return True
    document = message.document
    if document is None:
        return False
    if (document.mime_type or "").startswith("image/"):
        return True
    return PurePosixPath(document.file_name or "").suffix.lower() in IMAGE_EXTENSIONS


def _join_album(context: BotContext, message: Message) -> _Album | None:
    """Add a picture to its album being collected; None if this picture starts the album (it is
    then registered, and the caller collects it). Synchronous: it must run before any await."""
    albums: dict[tuple[int, str], _Album] = context.application.bot_data.setdefault(ALBUMS_KEY, {})
    key = (message.chat.id, str(message.media_group_id))
    album = albums.get(key)
    if album is not None:
        album.messages.append(message)
        album.arrived.set()
        return album
    albums[key] = _Album([message])
    return None


def _album_is_collecting(context: BotContext, message: Message) -> bool:
    albums: dict[tuple[int, str], _Album] = context.application.bot_data.setdefault(ALBUMS_KEY, {})
    return (message.chat.id, str(message.media_group_id)) in albums


async def _collect_album(context: BotContext, first: Message) -> list[Message]:
    """Every picture of `first`'s album, once no more arrive; in the order they were sent."""
    albums: dict[tuple[int, str], _Album] = context.application.bot_data.setdefault(ALBUMS_KEY, {})
    key = (first.chat.id, str(first.media_group_id))
    album = albums[key]
    try:
        while True:
            album.arrived.clear()
            try:
                await asyncio.wait_for(album.arrived.wait(), ALBUM_SETTLE_SECONDS)
            except TimeoutError:
                break
    finally:
        albums.pop(key, None)
    return sorted(album.messages, key=lambda m: m.message_id)


async def on_private_file(update: Update, context: BotContext) -> None:
    """A file or photo in a private chat: pictures here, anything else is a document."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    if not is_picture(message):
        await documents.on_document(update, context)
        return
    if message.media_group_id is not None and _join_album(context, message) is not None:
        return  # the album's first picture answers for all of them
    await _answer_picture_or_album(context, services(context), message, None)


async def on_group_file(update: Update, context: BotContext) -> None:
    """A file or photo in a group: pictures when addressed to the bot (a caption that mentions it
    or is /summary, a reply to the bot), and the rest of an album whose first picture was."""
    message = update.effective_message
    if message is None or message.from_user is None:
        return
    if not is_picture(message):
        await documents.on_group_document(update, context)
        return
    svc = services(context)  # the group is allowed: handlers/access.py checked it
    if message.media_group_id is not None and _album_is_collecting(context, message):
        _join_album(context, message)
        return
    question = group_file_question(message, context.bot)
    if question is None:
        return
    if message.media_group_id is not None:
        _join_album(context, message)
    await _answer_picture_or_album(context, svc, message, question, quote=message)


async def _answer_picture_or_album(
    context: BotContext,
    svc: BotServices,
    message: Message,
    question: str | None,
    quote: Message | None = None,
) -> None:
    """Answer the picture, or the whole album it opens once its pictures are in, in the asker's
    place; `question` None: the album's caption."""
    place = take_place(svc, message)
    try:
        pictures = [message]
        if message.media_group_id is not None:
            pictures = await _collect_album(context, message)
        if question is None:
            question = _question_of(context, pictures)
        await answer_pictures(context, svc, message, pictures, question, place, quote=quote)
    finally:
        place.leave()


async def answer_replied_picture(update: Update, context: BotContext, question: str) -> bool:
    """A message addressed to the bot that replies to a picture: the picture is the subject."""
    message = update.effective_message
    replied = message.reply_to_message if message else None
    if message is None or message.from_user is None or not is_picture(replied):
        return False
    assert replied is not None
    svc = services(context)
    place = take_place(svc, message)
    try:
        await answer_pictures(context, svc, message, [replied], question, place, quote=message)
    finally:
        place.leave()
    return True


def _question_of(context: BotContext, pictures: list[Message]) -> str | None:
    """The album's caption (Telegram puts it on one picture), without a leading /summary."""
    for picture in pictures:
        if picture.caption:
            command = caption_command(picture, context.bot, "summary")
            return picture.caption if command is None else command
    return None


async def answer_pictures(
    context: BotContext,
    svc: BotServices,
    asker: Message,
    pictures: list[Message],
    question: str | None,
    place: TurnPlace,
    quote: Message | None = None,
) -> None:
    """Answer about `pictures` in `place` (the caller leaves it afterwards)."""
    sender = asker.from_user
    assert sender is not None
    lang = language_of(sender.language_code)
    attachments = [attachment for picture in pictures if (attachment := attachment_of(picture))]
    if any(a.file_size is not None and a.file_size > MAX_IMAGE_BYTES for a in attachments):
        await asker.reply_text(text(lang, "photo_too_large"))
        return
    user = await known_user(svc, sender)
    price = svc.conversations.model_for(user)
    await _typing(context, asker)
    if not price.vision:
        await _answer_from_text(context, svc, asker, attachments, question, place, quote, price.model, lang)
        return
    images = []
    for attachment in attachments:
        try:
            data = await documents.download(context, attachment)
            prepared = await asyncio.to_thread(prepare_image, data)
        except TelegramError as error:
            log.info("picture download failed: %s", error)
            await asker.reply_text(text(lang, "doc_download_failed"))
            return
        except ImageRejected as rejected:
            await asker.reply_text(text(lang, f"photo_{rejected.reason}"))
            return
        images.append(StoredImage(prepared.mime, prepared.base64))
    default = "photo_default_question" if len(images) == 1 else "photo_default_question_many"
    question = (question or "").strip() or text(lang, default)
    await answer(context, svc, asker, question, quote=quote, place=place, images=tuple(images))


async def _answer_from_text(
    context: BotContext,
    svc: BotServices,
    asker: Message,
    attachments: list[Attachment],
    question: str | None,
    place: TurnPlace,
    quote: Message | None,
    model: str,
    lang: str,
) -> None:
    """A text-only model: the text in the pictures (Kimi's OCR), and a hint naming a vision model."""
    read: list[Document] = []
    for index, attachment in enumerate(attachments, start=1):
        name = attachment.file_name or "photo.jpg"
        if len(attachments) > 1:
            name = f"{index}-{name}"
        try:
            read.append(
                await svc.document_reader.read(
                    attachment.file_unique_id,
                    name,
                    functools.partial(documents.download, context, attachment),
                )
            )
        except DocumentRejected as rejected:
            if len(attachments) == 1:
                await asker.reply_text(
                    text(lang, f"doc_{rejected.reason}") + "\n" + await _hint(svc, model, lang)
                )
                return
        except KimiError as error:
            log.info("picture text extraction failed: %s", error.log_text())
            if len(attachments) == 1:
                await asker.reply_text(error_text(lang, error) + "\n" + await _hint(svc, model, lang))
                return
        except TelegramError as error:
            log.info("picture download failed: %s", error)
            await asker.reply_text(text(lang, "doc_download_failed"))
            return
    if not read:
        await asker.reply_text(text(lang, "doc_no_text") + "\n" + await _hint(svc, model, lang))
        return
    question = (question or "").strip() or text(lang, "doc_default_question")
    await answer(
        context,
        svc,
        asker,
        question,
        preamble=tuple(document.as_message() for document in read),
        purpose="document",
        quote=quote,
        place=place,
        note=await _hint(svc, model, lang),
    )


async def _hint(svc: BotServices, model: str, lang: str) -> str:
    models = [price for price in await svc.catalog.available() if price.vision]
    names = [price.model for price in models]
    preferred = next((name for name in PREFERRED_VISION_MODELS if name in names), names[0] if names else None)
    if preferred is None:
        return text(lang, "photo_no_vision_model", model=model)
    return text(lang, "photo_vision_hint", model=model, vision=preferred)


async def _typing(context: BotContext, asker: Message) -> None:
    try:
        thread_id = asker.message_thread_id if asker.is_topic_message else None
        await context.bot.send_chat_action(asker.chat.id, ChatAction.TYPING, message_thread_id=thread_id)
    except TelegramError:
        pass
