"""Cache of text extracted from documents, keyed by Telegram's file_unique_id."""

from __future__ import annotations

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import dialect
from storage.records import ExtractionRecord
from storage.tables import ExtractionRow
from storage.utc import utc_now


async def get(session: AsyncSession, file_unique_id: str) -> ExtractionRecord | None:
    statement = select(ExtractionRow).where(ExtractionRow.file_unique_id == file_unique_id)
    row = (await session.exec(statement)).first()
    if row is None:
        return None
    return ExtractionRecord(
        file_unique_id=row.file_unique_id,
        filename=row.filename,
        content=row.content,
        tokens=row.tokens,
        created_at=row.created_at,
    )


async def save(
    session: AsyncSession, file_unique_id: str, filename: str, content: str, tokens: int | None
) -> None:
    # An upsert: two users sending the same file at once both extract it; the last one wins,
    # and the text is the same anyway.
    values = {"filename": filename, "content": content, "tokens": tokens, "created_at": utc_now()}
    statement = (
        dialect.insert(dialect.name_of(session), ExtractionRow)
        .values(file_unique_id=file_unique_id, **values)
        .on_conflict_do_update(index_elements=["file_unique_id"], set_=values)
    )
    await session.exec(statement)
