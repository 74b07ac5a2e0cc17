"""In-flight turns: a row per streaming answer, keyed by its reservation, with text checkpoints.

The row is deleted when its reservation is settled or released; a row whose reservation belongs
to a dead process is what a crash cut (see storage.liveness and Store.adopt_dead_processes).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.records import Checkpoint, InflightTurn, NewInflightTurn, Reservation
from storage.tables import InflightTurnRow, ReservationRow
from storage.utc import utc_now


async def insert(session: AsyncSession, reservation_id: int, turn: NewInflightTurn) -> None:
    session.add(
        InflightTurnRow(
            reservation_id=reservation_id,
            chat_id=turn.chat_id,
            user_id=turn.user_id,
            thread_id=turn.thread_id,
            reply_to=turn.reply_to,
            language=turn.language,
            conversation_id=turn.conversation_id,
            model=turn.model,
            purpose=turn.purpose,
            question=turn.question,
            prompt_tokens=turn.prompt_tokens,
            updated_at=utc_now(),
        )
    )
    await session.flush()


async def checkpoint(session: AsyncSession, checkpoints: Sequence[Checkpoint]) -> None:
    """Save the texts of many in-flight turns in one statement (executemany); a settled or removed
    turn's row is left as it is."""
    statement = (
        update(InflightTurnRow)
        .where(
            col(InflightTurnRow.reservation_id) == bindparam("reservation"),
            col(InflightTurnRow.settled).is_(False),
        )
        .values(content=bindparam("text"), reasoning=bindparam("thinking"), updated_at=bindparam("at"))
    )
    now = utc_now()
    rows = [
        {"reservation": item.reservation_id, "text": item.content, "thinking": item.reasoning, "at": now}
        for item in checkpoints
    ]
    connection = await session.connection()
    await connection.execute(statement, rows)


async def remove(session: AsyncSession, reservation_id: int) -> None:
    statement = delete(InflightTurnRow).where(col(InflightTurnRow.reservation_id) == reservation_id)
    await session.exec(statement)


async def mark_settled(session: AsyncSession, reservation_id: int, assistant_message_id: int | None) -> None:
    statement = (
        update(InflightTurnRow)
        .where(col(InflightTurnRow.reservation_id) == reservation_id)
        .values(settled=True, assistant_message_id=assistant_message_id, updated_at=utc_now())
        .execution_options(synchronize_session=False)
    )
    await session.exec(statement)


async def owned_by(session: AsyncSession, owner: int) -> list[InflightTurn]:
    statement = (
        select(InflightTurnRow, ReservationRow)
        .join(ReservationRow, col(ReservationRow.id) == col(InflightTurnRow.reservation_id))
        .where(ReservationRow.owner == owner)
        .order_by(col(InflightTurnRow.reservation_id))
    )
    found = []
    for row, hold in (await session.exec(statement)).all():
        assert hold.id is not None
        reservation = Reservation(
            hold.id, hold.user_id, hold.period_key, hold.amount_micro, hold.purpose, hold.created_at
        )
        turn = NewInflightTurn(
            chat_id=row.chat_id,
            user_id=row.user_id,
            thread_id=row.thread_id,
            reply_to=row.reply_to,
            language=row.language,
            conversation_id=row.conversation_id,
            model=row.model,
            purpose=row.purpose,
            question=row.question,
            prompt_tokens=row.prompt_tokens,
        )
        found.append(
            InflightTurn(reservation, turn, row.content, row.reasoning, row.settled, row.assistant_message_id)
        )
    return found
