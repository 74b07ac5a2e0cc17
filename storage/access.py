"""The allow-list in the database: an admin's latest /allow or /deny per user."""

from __future__ import annotations

from sqlalchemy import exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import dialect
from storage.records import AccessEntry
from storage.tables import AccessRow
from storage.utc import utc_now


async def decide(session: AsyncSession, user_id: int, allowed: bool, changed_by: int | None) -> None:
    values = {"user_id": user_id, "allowed": allowed, "changed_by": changed_by, "changed_at": utc_now()}
    statement = (
        dialect.insert(dialect.name_of(session), AccessRow)
        .values(**values)
        .on_conflict_do_update(index_elements=["user_id"], set_=values)
    )
    await session.exec(statement)


async def lookup(session: AsyncSession, user_id: int) -> tuple[bool | None, bool]:
    """(this user's decision or None, whether anyone is allowed by the database) in one query:
    it runs for every update, so it is one round trip on the primary key and an EXISTS."""
    own = select(AccessRow.allowed).where(AccessRow.user_id == user_id).scalar_subquery()
    anyone = exists().where(col(AccessRow.allowed).is_(True))
    row = (await session.exec(select(own, anyone))).one()
    decision, allowed_exist = row
    return (None if decision is None else bool(decision)), bool(allowed_exist)


async def entries(session: AsyncSession) -> list[AccessEntry]:
    rows = (await session.exec(select(AccessRow).order_by(col(AccessRow.user_id)))).all()
    return [AccessEntry(row.user_id, row.allowed, row.changed_by, row.changed_at) for row in rows]
