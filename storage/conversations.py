"""Conversations and their messages.

A conversation belongs to a scope: (chat_id, user_id, thread_id). A private chat is
(chat, user, None); in a group, per user (chat, user, None), shared (chat, None, None), or per
forum topic (chat, None, thread). A scope has at most one active conversation (a unique index
says so); starting anew deactivates it and keeps its history.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Text, bindparam, cast, func, null, update
from sqlalchemy import select as select_columns
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import dialect
from storage.records import ConversationRecord, HistoryMessage, MessageRecord, NewMessage, StoredImage
from storage.tables import ConversationRow, MessageRow
from storage.utc import utc_now


def _in_scope(chat_id: int, user_id: int | None, thread_id: int | None) -> list[ColumnElement[bool]]:
    # `== None` compiles to IS NULL, which is what a shared or topic-less scope needs.
    return [
        col(ConversationRow.chat_id) == chat_id,
        col(ConversationRow.user_id) == user_id,
        col(ConversationRow.thread_id) == thread_id,
        col(ConversationRow.active).is_(True),
    ]


async def find_active(
    session: AsyncSession, chat_id: int, user_id: int | None, thread_id: int | None
) -> ConversationRecord | None:
    statement = select(ConversationRow).where(*_in_scope(chat_id, user_id, thread_id))
    row = (await session.exec(statement)).first()
    return None if row is None else _conversation(row)


async def open_if_none(
    session: AsyncSession, chat_id: int, user_id: int | None, thread_id: int | None
) -> None:
    """Insert an active conversation unless the scope has one (the unique index decides, so a
    concurrent caller that got there first simply wins)."""
    statement = (
        dialect.insert(dialect.name_of(session), ConversationRow)
        .values(
            chat_id=chat_id,
            user_id=user_id,
            thread_id=thread_id,
            active=True,
            created_at=utc_now(),
        )
        .on_conflict_do_nothing()
    )
    await session.exec(statement)


async def deactivate(session: AsyncSession, chat_id: int, user_id: int | None, thread_id: int | None) -> None:
    # Pictures are kept only while their conversation is active: the history stays, the
    # (possibly personal) photos go.
    active_ids = select(ConversationRow.id).where(*_in_scope(chat_id, user_id, thread_id))
    forget_images = (
        update(MessageRow)
        .where(col(MessageRow.conversation_id).in_(active_ids), col(MessageRow.images).is_not(None))
        .values(images=null())
        .execution_options(synchronize_session=False)
    )
    await session.exec(forget_images)
    statement = (
        update(ConversationRow)
        .where(*_in_scope(chat_id, user_id, thread_id))
        .values(active=False)
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def insert_messages(
    session: AsyncSession, messages: Sequence[NewMessage], conversation_id: int | None
) -> list[int]:
    rows = []
    for message in messages:
        target = message.conversation_id or conversation_id
        if target is None:
            raise ValueError("a message needs a conversation_id (on the message or the call)")
        rows.append(
            MessageRow(
                conversation_id=target,
                role=message.role,
                kind=message.kind,
                content=message.content,
                reasoning=message.reasoning,
                tokens=message.tokens,
                telegram_message_ids=list(message.telegram_message_ids),
                created_at=utc_now(),
                images=[{"mime": image.mime, "data": image.data} for image in message.images] or None,
            )
        )
    session.add_all(rows)
    await session.flush()  # assigns the ids, in insertion order
    return [row.id for row in rows if row.id is not None]


async def list_messages(
    session: AsyncSession, conversation_id: int, limit: int | None
) -> list[MessageRecord]:
    statement = (
        select(MessageRow)
        .where(MessageRow.conversation_id == conversation_id)
        .order_by(col(MessageRow.id).desc())
    )
    if limit is not None:
        statement = statement.limit(limit)
    rows = list((await session.exec(statement)).all())
    rows.reverse()  # the newest `limit`, returned oldest first
    return [_message(row) for row in rows]


# The newest-first read of a context: a first page, then pages sized by the average message so far.
FIRST_PAGE = 128
PAGE_MARGIN = 1.25  # read a quarter more than the average predicts, to need one page more rarely
MAX_PAGE = 8192


async def recent_messages(
    session: AsyncSession, conversation_id: int, max_chars: int, chars_per_message: int = 0
) -> list[HistoryMessage]:
    """The newest messages whose contents, counting `chars_per_message` more for each, add up to
    at least `max_chars` (or all there are), oldest first.

    Read newest first, so a long conversation costs what is used: a first page, then (usually)
    one more sized by the average message so far. Only the columns a context needs, through Core
    (no ORM objects), and pictures only for the messages that have some.
    """
    messages = MessageRow.__table__.c  # type: ignore[attr-defined]
    connection = await session.connection()
    found: list[HistoryMessage] = []
    with_images: list[int] = []
    chars = 0
    page = FIRST_PAGE
    before: int | None = None
    while chars < max_chars:
        statement = select_columns(
            messages.id, messages.role, messages.content, _has_images(messages.images)
        ).where(messages.conversation_id == conversation_id)
        if before is not None:
            statement = statement.where(messages.id < before)
        batch = (await connection.execute(statement.order_by(messages.id.desc()).limit(page))).all()
        for message_id, role, content, has_images in batch:
            found.append(HistoryMessage(message_id, role, content))
            if has_images:
                with_images.append(message_id)
            chars += len(content) + chars_per_message
            if chars >= max_chars:
                break
        if len(batch) < page:
            break
        before = batch[-1][0]
        average = max(1.0, chars / len(found))
        page = min(MAX_PAGE, max(FIRST_PAGE, math.ceil((max_chars - chars) / average * PAGE_MARGIN)))
    found.reverse()
    if with_images:
        found = await _with_images(connection, found, with_images)
    return found


def _has_images(images: Any) -> ColumnElement[bool]:
    # No pictures is JSON null (what the ORM writes for None) or SQL NULL (rows older than the
    # column, or whose pictures were forgotten at /reset): both read as 'null' here.
    return func.coalesce(cast(images, Text), "null") != "null"


async def _with_images(
    connection: AsyncConnection, found: list[HistoryMessage], ids: list[int]
) -> list[HistoryMessage]:
    messages = MessageRow.__table__.c  # type: ignore[attr-defined]
    statement = select_columns(messages.id, messages.images).where(messages.id.in_(ids))
    pictures = {
        message_id: tuple(StoredImage(image["mime"], image["data"]) for image in images or ())
        for message_id, images in (await connection.execute(statement)).all()
    }
    return [
        message._replace(images=pictures[message.id]) if message.id in pictures else message
        for message in found
    ]


async def append_text(session: AsyncSession, message_id: int, text: str) -> None:
    """A continued answer: its text grows (in SQL, so nothing read earlier is written back)."""
    statement = (
        update(MessageRow)
        .where(MessageRow.id == message_id)  # type: ignore[arg-type]
        .values(content=col(MessageRow.content) + text)
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def set_telegram_ids(session: AsyncSession, shown: Sequence[tuple[int, Sequence[int]]]) -> None:
    """For each (stored message id, Telegram message ids): which messages show it (executemany)."""
    table = MessageRow.__table__  # type: ignore[attr-defined]  # Core: one statement, many rows
    statement = (
        update(table)
        .where(table.c.id == bindparam("message"))
        .values(telegram_message_ids=bindparam("shown_ids"))
    )
    connection = await session.connection()
    await connection.execute(statement, [{"message": mid, "shown_ids": list(ids)} for mid, ids in shown])


def _conversation(row: ConversationRow) -> ConversationRecord:
    assert row.id is not None
    return ConversationRecord(
        id=row.id,
        chat_id=row.chat_id,
        user_id=row.user_id,
        thread_id=row.thread_id,
        active=row.active,
        created_at=row.created_at,
    )


def _message(row: MessageRow) -> MessageRecord:
    assert row.id is not None
    return MessageRecord(
        id=row.id,
        conversation_id=row.conversation_id,
        role=row.role,
        content=row.content,
        reasoning=row.reasoning,
        tokens=row.tokens,
        telegram_message_ids=tuple(row.telegram_message_ids or ()),
        kind=row.kind,
        created_at=row.created_at,
        images=tuple(StoredImage(image["mime"], image["data"]) for image in row.images or ()),
    )
