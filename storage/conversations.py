"""Conversations and their messages.

A conversation belongs to a scope: (chat_id, user_id, thread_id). A private chat is
(chat, user, None); in a group, per user (chat, user, None), shared (chat, None, None), or per
forum topic (chat, None, thread). A scope has at most one active conversation (a unique index
says so); starting anew deactivates it and keeps its history.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, null, update
from sqlalchemy import select as select_columns
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


async def recent_messages(
    session: AsyncSession, conversation_id: int, max_chars: int, page: int = 64
) -> list[HistoryMessage]:
    """The newest messages whose contents add up to at least `max_chars` (or all there are),
    oldest first. Read newest first, a page at a time, so a long conversation costs what is used;
    only the columns a context needs, as plain rows (no ORM objects)."""
    found: list[HistoryMessage] = []
    chars = 0
    before: int | None = None
    columns = (
        col(MessageRow.id),
        col(MessageRow.role),
        col(MessageRow.content),
        col(MessageRow.reasoning),
        col(MessageRow.images),
    )
    while chars < max_chars:
        # Any: sqlmodel's exec() is typed for its own select, SQLAlchemy's takes any columns.
        statement: Any = select_columns(*columns).where(col(MessageRow.conversation_id) == conversation_id)
        if before is not None:
            statement = statement.where(col(MessageRow.id) < before)
        statement = statement.order_by(col(MessageRow.id).desc()).limit(page)
        batch = (await session.exec(statement)).all()
        for message_id, role, content, reasoning, images in batch:
            pictures = tuple(StoredImage(image["mime"], image["data"]) for image in images or ())
            found.append(HistoryMessage(message_id, role, content, reasoning, pictures))
            chars += len(content)
            if chars >= max_chars:
                break
        if len(batch) < page:
            break
        before = batch[-1][0]
        page = min(page * 2, 1024)  # a long read takes few round trips
    found.reverse()
    return found


async def append_text(session: AsyncSession, message_id: int, text: str) -> None:
    """A continued answer: its text grows (in SQL, so nothing read earlier is written back)."""
    statement = (
        update(MessageRow)
        .where(MessageRow.id == message_id)  # type: ignore[arg-type]
        .values(content=col(MessageRow.content) + text)
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def set_telegram_ids(session: AsyncSession, message_id: int, ids: Sequence[int]) -> None:
    statement = (
        update(MessageRow)
        .where(MessageRow.id == message_id)  # type: ignore[arg-type]
        .values(telegram_message_ids=list(ids))
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


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
