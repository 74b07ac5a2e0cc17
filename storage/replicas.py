"""SQL for several replicas on one database: claimed updates and their arrival order, answers
being streamed (for stop), pending document confirmations, and shared flood-control slots.

Liveness is storage.liveness's: rows carry the owner key of the process that wrote them, and on
PostgreSQL a process is alive while it holds its advisory lock, so a crashed replica's rows stop
counting the moment its session ends, with no heartbeat to keep.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, text
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import dialect
from storage.liveness import PG_LOCK_SPACE
from storage.tables import ProcessedUpdateRow
from storage.utc import utc_now

TURNS_CHANNEL = "kimi_turns"  # payload: the chat id whose queue moved
STOP_CHANNEL = "kimi_stop"  # payload: the token of the answer to stop
ACCESS_CHANNEL = "kimi_access"  # payload: the user id an admin allowed or denied


def _owner_dead(column: str = "owner") -> str:
    # storage.liveness: a live process holds the advisory lock (PG_LOCK_SPACE, its owner key).
    held = (
        "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
        f"AND classid::bigint = {PG_LOCK_SPACE} AND granted"
    )
    return f"{column} IS NOT NULL AND {column} NOT IN ({held})"


_OWNER_DEAD = _owner_dead()


def _postgres(session: AsyncSession) -> bool:
    return dialect.name_of(session) == "postgresql"


async def _sql(session: AsyncSession, statement: str, **params: Any) -> CursorResult[*tuple[Any, ...]]:
    """Plain SQL in the session's transaction (these statements are short and dialect-aware)."""
    connection = await session.connection()
    return await connection.execute(text(statement), params)


def _alive(session: AsyncSession) -> str:
    return f"AND NOT ({_OWNER_DEAD})" if _postgres(session) else ""


# --- updates: claimed once, in arrival order --------------------------------------------------------


async def claim_update(session: AsyncSession, update_id: int, chat_id: int | None, owner: int) -> int | None:
    """The update's arrival number, or None when it was claimed before (a retried delivery).

    An update claimed by a replica that died before finishing it is taken over (same number): the
    dead one never answered, and Telegram's retry is then the only chance to."""
    table = ProcessedUpdateRow.__table__  # type: ignore[attr-defined]
    statement = dialect.insert(dialect.name_of(session), table).values(
        update_id=update_id, chat_id=chat_id, owner=owner, done=False, received_at=utc_now()
    )
    if _postgres(session):
        statement = statement.on_conflict_do_update(
            index_elements=["update_id"],
            set_={"owner": owner},
            where=text(f"NOT processed_updates.done AND {_owner_dead('processed_updates.owner')}"),
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["update_id"])
    connection = await session.connection()
    row = (await connection.execute(statement.returning(table.c.seq))).first()
    return None if row is None else int(row[0])


async def set_turn_key(session: AsyncSession, seq: int, turn_key: str) -> None:
    await _sql(
        session, "UPDATE processed_updates SET turn_key = :key WHERE seq = :seq", key=turn_key, seq=seq
    )


async def finish_update(session: AsyncSession, seq: int, chat_id: int | None) -> None:
    await _sql(
        session, "UPDATE processed_updates SET done = :done WHERE seq = :seq AND NOT done", done=True, seq=seq
    )
    if _postgres(session) and chat_id is not None:
        # Delivered at commit: waiters of this chat look again.
        await _sql(
            session, "SELECT pg_notify(:channel, :payload)", channel=TURNS_CHANNEL, payload=str(chat_id)
        )


async def turn_is_blocked(session: AsyncSession, seq: int, chat_id: int, turn_key: str) -> bool:
    """Whether an earlier update of the chat is still open and is (or may yet become) a turn of
    the same conversation. Updates of dead replicas do not count."""
    owners = [
        row[0]
        for row in await _sql(
            session,
            "SELECT owner FROM processed_updates WHERE chat_id = :chat AND NOT done AND seq < :seq "
            "AND (turn_key IS NULL OR turn_key = :key)",
            chat=chat_id,
            seq=seq,
            key=turn_key,
        )
    ]
    if not owners or not _postgres(session):
        return bool(owners)
    # Rarely reached (the chat's previous turn is still running): only then ask who is alive.
    alive = await _sql(
        session,
        f"SELECT 1 FROM processed_updates WHERE chat_id = :chat AND NOT done AND seq < :seq "
        f"AND (turn_key IS NULL OR turn_key = :key) AND NOT ({_OWNER_DEAD}) LIMIT 1",
        chat=chat_id,
        seq=seq,
        key=turn_key,
    )
    return alive.first() is not None


async def prune_updates(session: AsyncSession, older_than: datetime) -> int:
    result = await _sql(
        session, "DELETE FROM processed_updates WHERE received_at < :when", when=_stamp(session, older_than)
    )
    return int(result.rowcount or 0)


def _stamp(session: AsyncSession, when: datetime) -> datetime:
    # SQLite keeps naive UTC text (storage.utc); PostgreSQL an aware timestamptz.
    return when if _postgres(session) else when.astimezone(UTC).replace(tzinfo=None)


# --- answers being streamed ---------------------------------------------------------------------


async def add_active(session: AsyncSession, token: str, chat_id: int, user_id: int, owner: int) -> None:
    await _sql(
        session,
        "INSERT INTO active_answers (token, chat_id, user_id, owner, created_at) "
        "VALUES (:token, :chat, :user, :owner, :now)",
        token=token,
        chat=chat_id,
        user=user_id,
        owner=owner,
        now=_stamp(session, utc_now()),
    )


async def remove_active(session: AsyncSession, token: str) -> None:
    await _sql(session, "DELETE FROM active_answers WHERE token = :token", token=token)


async def active_answer(session: AsyncSession, token: str) -> tuple[int, int] | None:
    """(chat_id, user_id) of the answer, if it is still being streamed by a live replica."""
    row = (
        await _sql(
            session,
            f"SELECT chat_id, user_id FROM active_answers WHERE token = :token {_alive(session)}",
            token=token,
        )
    ).first()
    return None if row is None else (int(row[0]), int(row[1]))


async def active_tokens(session: AsyncSession, chat_id: int, user_id: int) -> list[str]:
    rows = await _sql(
        session,
        f"SELECT token FROM active_answers WHERE chat_id = :chat AND user_id = :user {_alive(session)}",
        chat=chat_id,
        user=user_id,
    )
    return [str(row[0]) for row in rows]


async def notify_stop(session: AsyncSession, token: str) -> None:
    await _sql(session, "SELECT pg_notify(:channel, :payload)", channel=STOP_CHANNEL, payload=token)


async def notify_access(session: AsyncSession, user_id: int) -> None:
    """Tell every replica the allow-list changed (delivered when the transaction commits)."""
    if _postgres(session):
        await _sql(
            session, "SELECT pg_notify(:channel, :payload)", channel=ACCESS_CHANNEL, payload=str(user_id)
        )


async def prune_dead_active(session: AsyncSession) -> None:
    if _postgres(session):
        await _sql(session, f"DELETE FROM active_answers WHERE {_OWNER_DEAD}")


# --- pending document confirmations ------------------------------------------------------------------


async def save_pending(session: AsyncSession, token: str, user_id: int, payload: dict[str, Any]) -> None:
    await _sql(
        session,
        "INSERT INTO pending_summaries (token, user_id, payload, created_at) "
        "VALUES (:token, :user, :payload, :now)",
        token=token,
        user=user_id,
        payload=json.dumps(payload, ensure_ascii=False),
        now=_stamp(session, utc_now()),
    )


async def pending(
    session: AsyncSession, token: str, newer_than: datetime
) -> tuple[int, dict[str, Any]] | None:
    row = (
        await _sql(
            session,
            "SELECT user_id, payload FROM pending_summaries WHERE token = :token AND created_at > :when",
            token=token,
            when=_stamp(session, newer_than),
        )
    ).first()
    if row is None:
        return None
    payload = row[1] if isinstance(row[1], dict) else json.loads(row[1])
    return int(row[0]), payload


async def take_pending(session: AsyncSession, token: str) -> bool:
    """Delete the confirmation; True for the one caller (on any replica) that deleted it."""
    result = await _sql(session, "DELETE FROM pending_summaries WHERE token = :token", token=token)
    return (result.rowcount or 0) == 1


async def prune_pending(session: AsyncSession, older_than: datetime) -> None:
    await _sql(
        session, "DELETE FROM pending_summaries WHERE created_at < :when", when=_stamp(session, older_than)
    )


# --- flood-control slots (PostgreSQL) --------------------------------------------------------------

# One lock for every slot taker: a decision needs the chat's and the bot's counts to hold still.
# At Telegram's ~30 messages/s that is one short transaction every 30 ms or so.
_FLOOD_LOCK = 0x6B696D69  # "kimi"


async def take_flood_slot(
    session: AsyncSession,
    chat_id: int,
    *,
    group: bool,
    chat_interval: float,
    group_limit: int,
    group_window: float,
    global_per_second: int,
) -> tuple[int | None, float]:
    """Take a slot for one message to `chat_id` if every limit allows it now: (slot id, 0).
    Otherwise (None, seconds to wait). Counts the slots of every replica."""
    await _sql(session, "SELECT pg_advisory_xact_lock(:key)", key=_FLOOD_LOCK)
    now: datetime = (await _sql(session, "SELECT clock_timestamp()")).scalar_one()
    horizon = group_window if group else chat_interval
    recent = [
        row[0]
        for row in await _sql(
            session,
            "SELECT sent_at FROM flood_slots WHERE chat_id = :chat AND sent_at > :since "
            "ORDER BY sent_at DESC LIMIT :n",
            chat=chat_id,
            since=now - timedelta(seconds=horizon),
            n=group_limit,
        )
    ]
    last_second = [
        row[0]
        for row in await _sql(
            session,
            "SELECT sent_at FROM flood_slots WHERE sent_at > :since ORDER BY sent_at DESC LIMIT :n",
            since=now - timedelta(seconds=1),
            n=global_per_second,
        )
    ]
    waits = [0.0]
    if recent:
        waits.append((recent[0] + timedelta(seconds=chat_interval) - now).total_seconds())
    if group and len(recent) >= group_limit:
        waits.append((recent[group_limit - 1] + timedelta(seconds=group_window) - now).total_seconds())
    if len(last_second) >= global_per_second:
        waits.append((last_second[global_per_second - 1] + timedelta(seconds=1) - now).total_seconds())
    wait = max(waits)
    if wait > 0:
        return None, wait
    slot = await _sql(
        session,
        "INSERT INTO flood_slots (chat_id, sent_at) VALUES (:chat, :now) RETURNING id",
        chat=chat_id,
        now=now,
    )
    return int(slot.scalar_one()), 0.0


async def flood_slot_landed(session: AsyncSession, slot_id: int) -> None:
    """Count the slot from when Telegram answered (it counts on arrival, somewhere before)."""
    await _sql(session, "UPDATE flood_slots SET sent_at = clock_timestamp() WHERE id = :id", id=slot_id)


async def prune_flood_slots(session: AsyncSession, horizon: float) -> None:
    await _sql(
        session,
        "DELETE FROM flood_slots WHERE sent_at < clock_timestamp() - make_interval(secs => :secs)",
        secs=horizon,
    )
