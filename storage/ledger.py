"""The usage ledger: one row per upstream call, and the sums /cost shows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, func
from sqlalchemy import select as select_columns
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.records import NewUsage, UsageTotals
from storage.tables import UsageRow
from storage.utc import utc_now


async def insert(session: AsyncSession, usage: Sequence[NewUsage]) -> str:
    """Record one turn's calls under a fresh turn id (what "the last reply's cost" groups by)."""
    turn_id = uuid.uuid4().hex
    now = utc_now()
    session.add_all(
        UsageRow(
            turn_id=turn_id,
            user_id=item.user_id,
            chat_id=item.chat_id,
            conversation_id=item.conversation_id,
            model=item.model,
            purpose=item.purpose,
            prompt_tokens=item.prompt_tokens,
            cached_tokens=item.cached_tokens,
            completion_tokens=item.completion_tokens,
            web_search_calls=item.web_search_calls,
            cost_micro=item.cost_micro,
            created_at=now,
        )
        for item in usage
    )
    await session.flush()
    return turn_id


def _totals_query(*conditions: Any) -> Any:
    # sqlmodel's select is typed for at most four columns; SQLAlchemy's takes any number.
    return (
        select_columns(
            col(UsageRow.model),
            func.count(col(UsageRow.id)),
            func.coalesce(func.sum(UsageRow.prompt_tokens), 0),
            func.coalesce(func.sum(UsageRow.cached_tokens), 0),
            func.coalesce(func.sum(UsageRow.completion_tokens), 0),
            func.coalesce(func.sum(UsageRow.cost_micro), 0),
            func.coalesce(func.sum(UsageRow.web_search_calls), 0),
            # What the searches' fees came to (their own rows, purpose "search"), for /cost.
            func.coalesce(
                func.sum(case((col(UsageRow.purpose) == "search", UsageRow.cost_micro), else_=0)), 0
            ),
        )
        .where(*conditions)
        .group_by(UsageRow.model)
        .order_by(UsageRow.model)
    )


async def totals(
    session: AsyncSession,
    user_id: int,
    since: datetime | None,
    conversation_id: int | None,
) -> list[UsageTotals]:
    conditions: list[Any] = [UsageRow.user_id == user_id]
    if since is not None:
        conditions.append(col(UsageRow.created_at) >= since)
    if conversation_id is not None:
        conditions.append(UsageRow.conversation_id == conversation_id)
    return _as_totals(await session.exec(_totals_query(*conditions)))


async def last_turn(session: AsyncSession, user_id: int) -> list[UsageTotals]:
    latest = (
        select(UsageRow.turn_id)
        .where(UsageRow.user_id == user_id)
        .order_by(col(UsageRow.created_at).desc(), col(UsageRow.id).desc())
        .limit(1)
    )
    turn_id = (await session.exec(latest)).first()
    if turn_id is None:
        return []
    # By turn_id alone (a uuid4, drawn per settle, so the rows are this user's): with user_id too,
    # SQLite's planner took the (user_id, created_at) index and read all of the user's rows
    # (110 ms at 100,000) instead of the turn's few.
    query = _totals_query(UsageRow.turn_id == turn_id)
    return _as_totals(await session.exec(query))


def _as_totals(rows: Any) -> list[UsageTotals]:
    # SUM of a BIGINT comes back as Decimal on PostgreSQL: int() keeps the records integral.
    return [
        UsageTotals(
            model=model,
            calls=int(calls),
            prompt_tokens=int(prompt),
            cached_tokens=int(cached),
            completion_tokens=int(completion),
            cost_micro=int(cost),
            web_search_calls=int(searches),
            web_search_cost_micro=int(search_cost),
        )
        for model, calls, prompt, cached, completion, cost, searches, search_cost in rows
    ]
