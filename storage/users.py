"""Users: language, chosen model, role and budget override, keyed by Telegram id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import dialect
from storage.records import UserRecord
from storage.tables import UserRow
from storage.utc import utc_now


async def get(session: AsyncSession, telegram_id: int) -> UserRecord | None:
    row = (await session.exec(select(UserRow).where(UserRow.telegram_id == telegram_id))).first()
    return None if row is None else _record(row)


async def ensure(session: AsyncSession, telegram_id: int) -> None:
    """Create the user if absent (race-safe: two first messages at once make one user)."""
    statement = (
        dialect.insert(dialect.name_of(session), UserRow)
        .values(telegram_id=telegram_id, role="user", created_at=utc_now())
        .on_conflict_do_nothing()
    )
    await session.exec(statement)


async def upsert(session: AsyncSession, telegram_id: int, **values: Any) -> UserRecord:
    """The user with these fields set, created if absent, in one statement (race-safe as ensure)."""
    insert = dialect.insert(dialect.name_of(session), UserRow).values(
        telegram_id=telegram_id, role="user", created_at=utc_now(), **values
    )
    # With nothing to change, a no-op update still makes RETURNING give the existing row.
    changes = values or {"telegram_id": telegram_id}
    statement = insert.on_conflict_do_update(index_elements=["telegram_id"], set_=changes).returning(
        *UserRow.__table__.columns  # type: ignore[attr-defined]
    )
    row = (await session.exec(statement)).one()
    return _record(row)


async def update_fields(session: AsyncSession, telegram_id: int, **values: Any) -> None:
    statement = (
        update(UserRow)
        .where(UserRow.telegram_id == telegram_id)  # type: ignore[arg-type]
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


def _record(row: UserRow) -> UserRecord:
    return UserRecord(
        telegram_id=row.telegram_id,
        language=row.language,
        username=row.username,
        model=row.model,
        role=row.role,
        budget_override_micro=row.budget_override_micro,
        created_at=row.created_at,
        web_search=row.web_search,
        thinking=row.thinking,
        warned_period=row.warned_period,
    )


async def claim_budget_warning(session: AsyncSession, telegram_id: int, period_key: str) -> bool:
    """Mark the 80 % notice as shown in this period; True only for the call that marked it, so
    two turns finishing together show it once."""
    statement = (
        update(UserRow)
        .where(
            UserRow.telegram_id == telegram_id,  # type: ignore[arg-type]
            or_(col(UserRow.warned_period).is_(None), col(UserRow.warned_period) != period_key),
        )
        .values(warned_period=period_key)
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).rowcount == 1


async def claim_budget_renewal(session: AsyncSession, telegram_id: int, period_key: str) -> bool:
    """Forget a warning of an earlier period; True only for the call that forgot it (the renewal
    notice is then shown once)."""
    statement = (
        update(UserRow)
        .where(
            UserRow.telegram_id == telegram_id,  # type: ignore[arg-type]
            col(UserRow.warned_period).is_not(None),
            col(UserRow.warned_period) != period_key,
        )
        .values(warned_period=None)
        .execution_options(synchronize_session=False)
    )
    return (await session.exec(statement)).rowcount == 1
