"""The ledger's aggregations for charts, exports and admin reports, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from storage import Store
from storage import ledger as ledger_module
from tests.test_storage_usage import K2, OTHER, THINKING, USER, call, turn

pytest_plugins = ["tests.db_fixtures"]

GROUP = -100123


def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """The ledger's clock, so that rows land on chosen UTC days (just before midnight: a day
    computed in another time zone than UTC would be the next one)."""
    monkeypatch.setattr(ledger_module, "utc_now", lambda: moment)


async def test_days_models_users_and_groups_add_up(any_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    await any_store.get_or_create_user(USER, "en", "amy")
    at(monkeypatch, datetime(2026, 11, 24, 23, 59, tzinfo=UTC))
    await turn(any_store, call(K2, 1_000_000), call(THINKING, 250_000))
    at(monkeypatch, datetime(2026, 11, 25, 0, 1, tzinfo=UTC))
    await turn(any_store, call(K2, 2_000_000))
    await turn(any_store, call(K2, 4_000_000, user=OTHER), user=OTHER)

    days = await any_store.daily_costs(USER, datetime(2026, 11, 1, tzinfo=UTC))
    assert [(d.day, d.model, d.cost_micro) for d in days] == [
        (date(2026, 11, 24), K2, 1_000_000),
        (date(2026, 11, 24), THINKING, 250_000),
        (date(2026, 11, 25), K2, 2_000_000),
    ]
    everyone = await any_store.daily_costs(None, datetime(2026, 11, 25, tzinfo=UTC))
    assert [(d.day, d.cost_micro) for d in everyone] == [(date(2026, 11, 25), 6_000_000)]

    entries = await any_store.usage_entries(USER)
    assert [e.cost_micro for e in entries] == [1_000_000, 250_000, 2_000_000]
    assert entries[0].created_at == datetime(2026, 11, 24, 23, 59, tzinfo=UTC)
    assert len(await any_store.usage_entries(None, datetime(2026, 11, 25, tzinfo=UTC))) == 2

    spenders = await any_store.spend_by_user(None, limit=10)
    assert [(s.user_id, s.username, s.calls, s.cost_micro) for s in spenders] == [
        (OTHER, None, 1, 4_000_000),
        (USER, "amy", 3, 3_250_000),
    ]
    assert spenders[1].last_used == datetime(2026, 11, 25, 0, 1, tzinfo=UTC)
    totals = {t.model: t.cost_micro for t in await any_store.usage_totals_of_everyone()}
    assert totals == {K2: 7_000_000, THINKING: 250_000}


async def test_group_chats_are_totalled_apart(any_store: Store) -> None:
    await turn(any_store, replace(call(K2, 3_000_000), chat_id=GROUP))
    await turn(any_store, replace(call(K2, 1_000_000, user=OTHER), chat_id=GROUP), user=OTHER)
    await turn(any_store, call(K2, 5_000_000))  # private: not a group's
    chats = await any_store.spend_by_group_chat()
    assert [(c.chat_id, c.calls, c.tokens, c.cost_micro) for c in chats] == [(GROUP, 2, 2400, 4_000_000)]


async def test_access_decisions_and_budget_notice_claims(any_store: Store) -> None:
    assert await any_store.access_of(USER) == (None, False)
    await any_store.set_access(USER, False, changed_by=OTHER)
    assert await any_store.access_of(USER) == (False, False)
    await any_store.set_access(OTHER, True, changed_by=None)
    await any_store.set_access(USER, True, changed_by=OTHER)  # the latest decision wins
    assert await any_store.access_of(USER) == (True, True)
    assert [(e.user_id, e.allowed) for e in await any_store.access_entries()] == [(USER, True), (OTHER, True)]

    await any_store.get_or_create_user(USER)
    assert not await any_store.claim_budget_renewal(USER, "2026-11")  # never warned
    assert await any_store.claim_budget_warning(USER, "2026-11")
    assert not await any_store.claim_budget_warning(USER, "2026-11")  # once per period
    assert not await any_store.claim_budget_renewal(USER, "2026-11")  # same period
    assert await any_store.claim_budget_renewal(USER, "2026-12")
    assert not await any_store.claim_budget_renewal(USER, "2026-12")
    assert (await any_store.get_user(USER)).warned_period is None  # type: ignore[union-attr]
