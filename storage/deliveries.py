"""Final messages Telegram has not taken yet: kept until delivered, so a restart resends them.

The payload is the handlers' business (what to send or edit, as JSON); storage keeps it opaque.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.records import PendingDelivery
from storage.tables import PendingDeliveryRow
from storage.utc import utc_now


async def add(session: AsyncSession, owner: int, chat_id: int, payload: dict[str, Any]) -> int:
    row = PendingDeliveryRow(owner=owner, chat_id=chat_id, payload=payload, created_at=utc_now())
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row.id


async def replace_payload(session: AsyncSession, delivery_id: int, payload: dict[str, Any]) -> None:
    statement = (
        update(PendingDeliveryRow)
        .where(col(PendingDeliveryRow.id) == delivery_id)
        .values(payload=payload)
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def remove(session: AsyncSession, delivery_id: int) -> None:
    await session.exec(delete(PendingDeliveryRow).where(col(PendingDeliveryRow.id) == delivery_id))


async def owned_by(session: AsyncSession, owner: int) -> list[PendingDelivery]:
    statement = (
        select(PendingDeliveryRow)
        .where(PendingDeliveryRow.owner == owner)
        .order_by(col(PendingDeliveryRow.id))
    )
    return [
        PendingDelivery(row.id, row.chat_id, dict(row.payload), row.created_at)
        for row in (await session.exec(statement)).all()
        if row.id is not None
    ]


async def adopt(session: AsyncSession, dead_owner: int, owner: int) -> None:
    statement = (
        update(PendingDeliveryRow)
        .where(col(PendingDeliveryRow.owner) == dead_owner)
        .values(owner=owner)
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def owners(session: AsyncSession) -> set[int]:
    return set((await session.exec(select(PendingDeliveryRow.owner).distinct())).all())
