"""Aggregations over the usage ledger for charts, exports and admin reports.

user_id=None means every user (admin views); since=None means all time. Sums are done by the
database; SUM of a BIGINT comes back as Decimal on PostgreSQL, hence the int() on the way out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as select_columns
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import dialect
from storage.ledger import _as_totals, _totals_query
from storage.records import ChatSpend, DailyCost, LedgerEntry, UsageTotals, UserSpend
from storage.tables import UsageRow, UserRow


def _scope(user_id: int | None, since: datetime | None) -> list[Any]:
    conditions: list[Any] = []
    if user_id is not None:
        conditions.append(UsageRow.user_id == user_id)
    if since is not None:
        conditions.append(col(UsageRow.created_at) >= since)
    return conditions


async def entries(session: AsyncSession, user_id: int | None, since: datetime | None) -> list[LedgerEntry]:
    statement = (
        select(UsageRow).where(*_scope(user_id, since)).order_by(col(UsageRow.created_at), col(UsageRow.id))
    )
    return [
        LedgerEntry(
            created_at=row.created_at,
            user_id=row.user_id,
            chat_id=row.chat_id,
            model=row.model,
            purpose=row.purpose,
            prompt_tokens=row.prompt_tokens,
            cached_tokens=row.cached_tokens,
            completion_tokens=row.completion_tokens,
            web_search_calls=row.web_search_calls,
            cost_micro=row.cost_micro,
        )
        for row in (await session.exec(statement)).all()
    ]


async def daily_costs(session: AsyncSession, user_id: int | None, since: datetime) -> list[DailyCost]:
    day = dialect.utc_day(dialect.name_of(session), col(UsageRow.created_at)).label("day")
    statement = (
        select(day, UsageRow.model, func.coalesce(func.sum(UsageRow.cost_micro), 0))
        .where(*_scope(user_id, since))
        .group_by(day, UsageRow.model)
        .order_by(day, UsageRow.model)
    )
    return [
        DailyCost(_as_date(day_value), model, int(cost))
        for day_value, model, cost in (await session.exec(statement)).all()
    ]


async def totals(session: AsyncSession, user_id: int | None, since: datetime | None) -> list[UsageTotals]:
    return _as_totals(await session.exec(_totals_query(*_scope(user_id, since))))


async def spend_by_user(session: AsyncSession, since: datetime | None, limit: int) -> list[UserSpend]:
    """The users who spent most (ties: the most recent first), with their Telegram username."""
    cost = func.coalesce(func.sum(UsageRow.cost_micro), 0)
    last_used = func.max(UsageRow.created_at)
    statement: Any = (
        # sqlmodel's select is typed for at most four columns; SQLAlchemy's takes any number.
        select_columns(
            col(UsageRow.user_id),
            col(UserRow.username),
            func.count(col(UsageRow.id)),
            func.coalesce(func.sum(UsageRow.prompt_tokens + UsageRow.completion_tokens), 0),
            cost,
            last_used,
        )
        .join(UserRow, col(UserRow.telegram_id) == col(UsageRow.user_id), isouter=True)
        .where(*_scope(None, since))
        .group_by(col(UsageRow.user_id), col(UserRow.username))
        .order_by(cost.desc(), last_used.desc())
        .limit(limit)
    )
    return [
        UserSpend(int(user_id), username, int(calls), int(tokens), int(spent), _as_datetime(last))
        for user_id, username, calls, tokens, spent, last in (await session.exec(statement)).all()
    ]


async def spend_by_group_chat(session: AsyncSession, since: datetime | None) -> list[ChatSpend]:
    """Totals per group chat (Telegram group and supergroup ids are negative)."""
    cost = func.coalesce(func.sum(UsageRow.cost_micro), 0)
    statement: Any = (
        select(
            col(UsageRow.chat_id),
            func.count(col(UsageRow.id)),
            func.coalesce(func.sum(UsageRow.prompt_tokens + UsageRow.completion_tokens), 0),
            cost,
        )
        .where(col(UsageRow.chat_id) < 0, *_scope(None, since))
        .group_by(col(UsageRow.chat_id))
        .order_by(cost.desc(), col(UsageRow.chat_id))
    )
    return [
        ChatSpend(int(chat_id), int(calls), int(tokens), int(spent))
        for chat_id, calls, tokens, spent in (await session.exec(statement)).all()
    ]


def _as_date(value: Any) -> date:
    # SQLite's date() gives 'YYYY-MM-DD' text; PostgreSQL a date.
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _as_datetime(value: Any) -> datetime:
    # max() bypasses the column type: SQLite returns naive UTC text, PostgreSQL an aware datetime.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
