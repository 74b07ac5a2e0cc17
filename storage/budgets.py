"""Budget reservations, enforced by the database so they hold across tasks and processes.

A budget row is (user_id, period_key) -> spent_micro, reserved_micro. The caller computes the
period key ("2026-11", "2026-W47", "2026-11-22", "total") and the limit; nothing here knows
calendars.

reserve is one conditional UPDATE: the database checks spent + reserved + amount <= limit and
adds the amount in the same statement, so concurrent reservations cannot all see the same room
(on PostgreSQL a blocked UPDATE re-checks its WHERE against the committed row; SQLite runs one
writer at a time).

A reservation ends exactly once: the status change held -> settled/released is itself a
conditional UPDATE, and only the call that made it touches the budget. So settle and release
can be repeated (a retry, a cleanup after an error) without charging or freeing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import dialect
from storage.records import BudgetState, Reservation
from storage.tables import BudgetRow, InflightTurnRow, ReservationRow
from storage.utc import utc_now

HELD, SETTLED, RELEASED = "held", "settled", "released"
MAX_PERIOD_KEY = 32


@dataclass(frozen=True, slots=True)
class EndedHold:
    """A reservation that this call ended: whose budget, and how much it still held."""

    user_id: int
    period_key: str
    held_micro: int  # 0 when it had already been released (a late settle)


def check_period_key(period_key: str) -> None:
    if not 0 < len(period_key) <= MAX_PERIOD_KEY:
        raise ValueError(f"period_key must be 1 to {MAX_PERIOD_KEY} characters")


def check_amount(amount_micro: int) -> None:
    if amount_micro < 0:
        raise ValueError("amounts must not be negative")


async def ensure_row(session: AsyncSession, user_id: int, period_key: str) -> None:
    statement = (
        dialect.insert(dialect.name_of(session), BudgetRow)
        .values(user_id=user_id, period_key=period_key, spent_micro=0, reserved_micro=0)
        .on_conflict_do_nothing()
    )
    await session.exec(statement)


async def reserve(
    session: AsyncSession,
    user_id: int,
    period_key: str,
    amount_micro: int,
    limit_micro: int | None,
    purpose: str,
    owner: int | None = None,
) -> Reservation | None:
    await ensure_row(session, user_id, period_key)
    statement = update(BudgetRow).where(
        BudgetRow.user_id == user_id,  # type: ignore[arg-type]
        BudgetRow.period_key == period_key,  # type: ignore[arg-type]
    )
    if limit_micro is not None:
        statement = statement.where(
            col(BudgetRow.spent_micro) + col(BudgetRow.reserved_micro) + amount_micro <= limit_micro
        )
    statement = statement.values(
        reserved_micro=col(BudgetRow.reserved_micro) + amount_micro
    ).execution_options(synchronize_session=False)
    result = await session.exec(statement)
    if result.rowcount != 1:
        return None

    created_at = utc_now()
    insert = (
        dialect.insert(dialect.name_of(session), ReservationRow)
        .values(
            user_id=user_id,
            period_key=period_key,
            amount_micro=amount_micro,
            purpose=purpose,
            status=HELD,
            created_at=created_at,
            owner=owner,
        )
        .returning(col(ReservationRow.id))
    )
    reservation_id = (await session.exec(insert)).scalar_one()
    return Reservation(
        id=reservation_id,
        user_id=user_id,
        period_key=period_key,
        amount_micro=amount_micro,
        purpose=purpose,
        created_at=created_at,
    )


async def end_hold(
    session: AsyncSession, reservation_id: int, status: str, *, from_status: str = HELD
) -> EndedHold | None:
    """Move a reservation from `from_status` to `status`; None if this call did not move it."""
    statement = (
        update(ReservationRow)
        .where(
            ReservationRow.id == reservation_id,  # type: ignore[arg-type]
            ReservationRow.status == from_status,  # type: ignore[arg-type]
        )
        .values(status=status, finished_at=utc_now())
        .returning(
            col(ReservationRow.user_id),
            col(ReservationRow.period_key),
            col(ReservationRow.amount_micro),
        )
        .execution_options(synchronize_session=False)
    )
    row = (await session.exec(statement)).first()
    if row is None:
        return None
    user_id, period_key, amount = row
    return EndedHold(user_id, period_key, amount if from_status == HELD else 0)


async def adjust(
    session: AsyncSession,
    user_id: int,
    period_key: str,
    *,
    spent_delta: int = 0,
    reserved_delta: int = 0,
) -> BudgetState:
    """Move the period's spent and held amounts; returns them as they are now."""
    statement = (
        update(BudgetRow)
        .where(
            BudgetRow.user_id == user_id,  # type: ignore[arg-type]
            BudgetRow.period_key == period_key,  # type: ignore[arg-type]
        )
        .values(
            spent_micro=col(BudgetRow.spent_micro) + spent_delta,
            reserved_micro=col(BudgetRow.reserved_micro) + reserved_delta,
        )
        .returning(col(BudgetRow.spent_micro), col(BudgetRow.reserved_micro))
        .execution_options(synchronize_session=False)
    )
    row = (await session.exec(statement)).first()
    if row is None:  # a hold always has its period's row; kept total for a missing one
        return BudgetState(spent_micro=0, reserved_micro=0)
    return BudgetState(spent_micro=row[0], reserved_micro=row[1])


async def release(session: AsyncSession, reservation_id: int) -> bool:
    ended = await end_hold(session, reservation_id, RELEASED)
    if ended is None:
        return False
    await adjust(session, ended.user_id, ended.period_key, reserved_delta=-ended.held_micro)
    return True


async def settle(session: AsyncSession, reservation_id: int, actual_micro: int) -> BudgetState | None:
    """Replace the hold by the actual cost; returns the period's budget as it is now, or None if
    it was settled before (nothing to do).

    A reservation released meanwhile (a stale-hold cleanup by another process starting up while
    this turn ran long) is still settled: the upstream call happened and must be paid for.
    """
    ended = await end_hold(session, reservation_id, SETTLED)
    if ended is None:
        ended = await end_hold(session, reservation_id, SETTLED, from_status=RELEASED)
    if ended is None:
        return None
    return await adjust(
        session,
        ended.user_id,
        ended.period_key,
        spent_delta=actual_micro,
        reserved_delta=-ended.held_micro,
    )


async def stale_ids(session: AsyncSession, older_than: timedelta) -> list[int]:
    """Holds older than this that name no owner (made before owners existed, migration 0003)."""
    cutoff: datetime = utc_now() - older_than
    statement = select(ReservationRow.id).where(
        ReservationRow.status == HELD,
        col(ReservationRow.owner).is_(None),
        col(ReservationRow.created_at) < cutoff,
    )
    return [rid for rid in (await session.exec(statement)).all() if rid is not None]


async def owners(session: AsyncSession) -> set[int]:
    """Processes that hold budget or had a turn in flight."""
    held = select(ReservationRow.owner).where(ReservationRow.status == HELD)
    inflight = select(ReservationRow.owner).where(
        col(ReservationRow.id).in_(select(InflightTurnRow.reservation_id))
    )
    found = set((await session.exec(held.distinct())).all())
    found |= set((await session.exec(inflight.distinct())).all())
    return {owner for owner in found if owner is not None}


async def adopt_inflight(session: AsyncSession, dead_owner: int, owner: int) -> None:
    """Take over a dead process's holds that had a turn in flight (settled by the caller)."""
    statement = (
        update(ReservationRow)
        .where(
            col(ReservationRow.owner) == dead_owner,
            col(ReservationRow.id).in_(select(InflightTurnRow.reservation_id)),
        )
        .values(owner=owner)
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def held_ids(session: AsyncSession, owner: int) -> list[int]:
    statement = select(ReservationRow.id).where(ReservationRow.status == HELD, ReservationRow.owner == owner)
    return [rid for rid in (await session.exec(statement)).all() if rid is not None]


async def state(session: AsyncSession, user_id: int, period_key: str) -> BudgetState:
    statement = select(BudgetRow).where(BudgetRow.user_id == user_id, BudgetRow.period_key == period_key)
    row = (await session.exec(statement)).first()
    if row is None:
        return BudgetState(spent_micro=0, reserved_micro=0)
    return BudgetState(spent_micro=row.spent_micro, reserved_micro=row.reserved_micro)
