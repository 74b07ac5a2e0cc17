"""Budgets: reservations that concurrent turns cannot overspend, settled or released once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from storage import NewMessage, NewUsage, Reservation, Store
from storage.engine import create_engine, write_engine
from storage.tables import ReservationRow
from storage.utc import utc_now

# Until tests/conftest.py loads them for the whole suite (loading twice is harmless).
pytest_plugins = ["tests.db_fixtures"]

USER = 1001
PERIOD = "2026-11"
LIMIT = 1_000_000  # 1 元点
REPO = Path(__file__).resolve().parent.parent


def usage(cost: int, *, user: int = USER, model: str = "kimi-k2-0905-preview") -> NewUsage:
    return NewUsage(
        user_id=user,
        chat_id=user,
        model=model,
        prompt_tokens=200,
        cached_tokens=0,
        completion_tokens=1000,
        cost_micro=cost,
        purpose="chat",
        conversation_id=None,
    )


async def reserve_many(store: Store, count: int, amount: int, limit: int | None) -> list[Reservation]:
    results = await asyncio.gather(*(store.reserve(USER, PERIOD, amount, limit) for _ in range(count)))
    return [r for r in results if r is not None]


async def test_fifty_concurrent_reservations_never_exceed_the_limit(any_store: Store) -> None:
    granted = await reserve_many(any_store, 50, 30_000, LIMIT)

    # 33 × 30 000 = 990 000 fits, a 34th would not: exactly 33, no more and no fewer.
    assert len(granted) == 33
    assert len({r.id for r in granted}) == 33
    state = await any_store.budget_state(USER, PERIOD)
    assert state.spent_micro == 0
    assert state.reserved_micro == 33 * 30_000 <= LIMIT

    await asyncio.gather(*(any_store.settle(r, 25_000, usage(25_000)) for r in granted))
    state = await any_store.budget_state(USER, PERIOD)
    assert (state.spent_micro, state.reserved_micro) == (33 * 25_000, 0)


async def test_concurrent_reservations_count_what_is_already_spent(any_store: Store) -> None:
    await any_store.charge(USER, PERIOD, 700_000, usage(700_000))
    amounts = [10_000 * (i % 7 + 1) for i in range(50)]  # 10 000 … 70 000, mixed
    results = await asyncio.gather(*(any_store.reserve(USER, PERIOD, a, LIMIT) for a in amounts))
    held = sum(r.amount_micro for r in results if r is not None)

    state = await any_store.budget_state(USER, PERIOD)
    assert state.reserved_micro == held
    assert 700_000 + held <= LIMIT
    assert LIMIT - 700_000 - held < 10_000 * 7  # refusals only once the rest could not fit


@pytest.fixture(params=["sqlite", "postgresql"])
def any_url(request: pytest.FixtureRequest) -> str:
    """An empty database's URL on each backend in turn (PostgreSQL: a fresh database)."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.mark.slow
def test_processes_racing_for_the_last_point_never_overspend(any_url: str) -> None:
    # Replicas of the bot share one database: each process has its own Store and they race for
    # the last 1 元点 of a 10 元点 budget. The guarantee must come from the database, not from any
    # one process's locks. They all stay alive until the end: a stopped process's holds are freed
    # by the next Store that starts. (Planting a read-check-write reserve makes the PostgreSQL
    # run grant more than 11.) Eight attempts a process keep the connections well under
    # PostgreSQL's default 100 while other tests run beside this one.
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from storage import Store

        async def main() -> None:
            store = Store(sys.argv[1])
            await store.start()
            sys.stdout.write("ready\\n")
            sys.stdout.flush()
            sys.stdin.readline()  # all processes start reserving together
            results = await asyncio.gather(
                *(store.reserve({USER}, "{PERIOD}", 90_000, {10 * LIMIT}) for _ in range(8))
            )
            print(sum(r is not None for r in results), flush=True)
            sys.stdin.read()  # until the test says all are done
            await store.close()

        asyncio.run(main())
        """
    )
    asyncio.run(_spend(any_url, 9 * LIMIT))
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, any_url],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "ready", process.stderr
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        granted = 0
        for process in processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.strip(), process.communicate(timeout=60)[1]
            granted += int(line)
        # While every process still holds its reservations:
        state = asyncio.run(_state(any_url))
        for process in processes:
            _, err = process.communicate(timeout=60)
            assert process.returncode == 0, err
    finally:
        for process in processes:
            process.kill()
    assert granted == 11  # of 32 attempts: 11 × 0.09 元点 fit in the last 1 元点, a 12th would not
    assert (state.spent_micro, state.reserved_micro) == (9 * LIMIT, 11 * 90_000)


async def _spend(url: str, amount: int) -> None:
    store = Store(url)
    await store.start()
    try:
        await store.charge(USER, PERIOD, amount, usage(amount))
    finally:
        await store.close()


async def _state(url: str):
    store = Store(url)
    await store.start()
    try:
        return await store.budget_state(USER, PERIOD)
    finally:
        await store.close()


async def test_settle_replaces_the_reservation_by_the_actual_cost(any_store: Store) -> None:
    conversation = await any_store.active_conversation(USER, USER)
    reservation = await any_store.reserve(USER, PERIOD, 400_000, LIMIT)
    assert reservation is not None
    assert (await any_store.budget_state(USER, PERIOD)).reserved_micro == 400_000

    settled = await any_store.settle(
        reservation,
        6_000,
        [usage(5_000), usage(1_000, model="kimi-k2-thinking")],
        messages=[
            NewMessage(role="user", content="hi"),
            NewMessage(role="assistant", content="hello", reasoning="greet", tokens=3),
        ],
        conversation_id=conversation.id,
    )

    state = await any_store.budget_state(USER, PERIOD)
    assert (state.spent_micro, state.reserved_micro) == (6_000, 0)
    assert settled.budget == state  # the budget as the settle left it, without another read
    ids = settled.message_ids
    assert len(ids) == 2
    history = await any_store.conversation_messages(conversation.id)
    assert [(m.id, m.role, m.content) for m in history] == [
        (ids[0], "user", "hi"),
        (ids[1], "assistant", "hello"),
    ]
    assert history[1].reasoning == "greet" and history[1].tokens == 3
    totals = await any_store.usage_totals(USER)
    assert {t.model: t.cost_micro for t in totals} == {
        "kimi-k2-0905-preview": 5_000,
        "kimi-k2-thinking": 1_000,
    }


async def test_settling_twice_charges_once(any_store: Store) -> None:
    conversation = await any_store.active_conversation(USER, USER)
    reservation = await any_store.reserve(USER, PERIOD, 50_000, LIMIT)
    assert reservation is not None
    message = NewMessage(role="user", content="once")

    first = await any_store.settle(reservation, 9_000, usage(9_000), [message], conversation.id)
    again = await asyncio.gather(
        *(any_store.settle(reservation, 9_000, usage(9_000), [message], conversation.id) for _ in range(3))
    )

    assert len(first.message_ids) == 1 and first.budget is not None
    assert [(a.message_ids, a.budget) for a in again] == [([], None)] * 3
    state = await any_store.budget_state(USER, PERIOD)
    assert (state.spent_micro, state.reserved_micro) == (9_000, 0)
    assert len(await any_store.conversation_messages(conversation.id)) == 1
    assert [t.calls for t in await any_store.usage_totals(USER)] == [1]


async def test_release_returns_the_hold_and_is_repeatable(any_store: Store) -> None:
    reservation = await any_store.reserve(USER, PERIOD, 800_000, LIMIT)
    assert reservation is not None
    assert await any_store.reserve(USER, PERIOD, 300_000, LIMIT) is None  # full for now

    await any_store.release(reservation)
    await any_store.release(reservation)

    state = await any_store.budget_state(USER, PERIOD)
    assert (state.spent_micro, state.reserved_micro) == (0, 0)
    assert await any_store.reserve(USER, PERIOD, 300_000, LIMIT) is not None


async def test_release_after_settle_changes_nothing(any_store: Store) -> None:
    reservation = await any_store.reserve(USER, PERIOD, 100_000, LIMIT)
    assert reservation is not None
    await any_store.settle(reservation, 40_000, usage(40_000))
    await any_store.release(reservation)
    state = await any_store.budget_state(USER, PERIOD)
    assert (state.spent_micro, state.reserved_micro) == (40_000, 0)


async def test_unlimited_budget_always_reserves_and_still_counts(any_store: Store) -> None:
    granted = await reserve_many(any_store, 10, 10**12, None)  # a million 元点 each
    assert len(granted) == 10
    assert (await any_store.budget_state(USER, PERIOD)).reserved_micro == 10 * 10**12
    for reservation in granted:
        await any_store.settle(reservation, 1, usage(1))
    assert (await any_store.budget_state(USER, PERIOD)).spent_micro == 10


async def test_periods_and_users_are_kept_apart(any_store: Store) -> None:
    assert await any_store.reserve(USER, "2026-11", LIMIT, LIMIT) is not None
    assert await any_store.reserve(USER, "2026-11", 1, LIMIT) is None
    assert await any_store.reserve(USER, "2026-12", LIMIT, LIMIT) is not None  # a new month
    assert await any_store.reserve(USER + 1, "2026-11", LIMIT, LIMIT) is not None  # another user
    assert (await any_store.budget_state(USER, "2026-10")).reserved_micro == 0


async def test_zero_limit_refuses_everything_but_nothing(any_store: Store) -> None:
    assert await any_store.reserve(USER, PERIOD, 1, 0) is None
    assert await any_store.reserve(USER, PERIOD, 0, 0) is not None


async def test_charge_without_reservation_is_spent_and_ledgered(any_store: Store) -> None:
    await any_store.charge(USER, PERIOD, 12_345, usage(12_345))
    state = await any_store.budget_state(USER, PERIOD)
    assert (state.spent_micro, state.reserved_micro) == (12_345, 0)
    assert [t.cost_micro for t in await any_store.last_reply_usage(USER)] == [12_345]
    assert await any_store.reserve(USER, PERIOD, LIMIT - 12_345 + 1, LIMIT) is None


async def test_ownerless_holds_from_before_owners_are_released_when_stale(any_store: Store) -> None:
    old = await any_store.reserve(USER, PERIOD, 300_000, LIMIT)
    fresh = await any_store.reserve(USER, PERIOD, 200_000, LIMIT)
    assert old is not None and fresh is not None
    await _backdate(any_store, old, minutes=30, owner=None)
    await _backdate(any_store, fresh, minutes=30)  # old, but its process (this one) lives

    assert await any_store.release_stale_reservations(600) == 1
    assert await any_store.release_stale_reservations(600) == 0
    assert (await any_store.budget_state(USER, PERIOD)).reserved_micro == 200_000


async def test_start_frees_a_dead_process_holds_at_once_and_never_a_live_one(any_store: Store) -> None:
    live = await any_store.reserve(USER, PERIOD, 300_000, LIMIT)
    assert live is not None
    crashed = Store(any_store.database_url)
    await crashed.start()
    assert crashed.owner != any_store.owner
    assert await crashed.reserve(USER, PERIOD, LIMIT - 300_000, LIMIT) is not None
    await crashed.close()  # the process ends holding the budget: a fresh hold, not 10 minutes old

    restarted = Store(any_store.database_url)
    await restarted.start()
    try:
        assert (await restarted.budget_state(USER, PERIOD)).reserved_micro == 300_000  # the live one's
        assert await restarted.reserve(USER, PERIOD, LIMIT - 300_000, LIMIT) is not None
    finally:
        await restarted.close()
    await any_store.settle(live, 1, usage(1))


async def test_settle_after_a_dead_process_release_still_charges_the_call(any_store: Store) -> None:
    # A process lost its liveness lock (say its connection to PostgreSQL broke) while a turn ran,
    # and another process started and freed the hold: the call still happened and is paid, once.
    reservation = await any_store.reserve(USER, PERIOD, 300_000, LIMIT)
    assert reservation is not None
    await any_store._liveness.close()  # type: ignore[union-attr]
    other = Store(any_store.database_url)
    await other.start()
    await other.close()
    assert (await any_store.budget_state(USER, PERIOD)).reserved_micro == 0

    await any_store.settle(reservation, 70_000, usage(70_000))
    await any_store.settle(reservation, 70_000, usage(70_000))

    state = await any_store.budget_state(USER, PERIOD)
    assert (state.spent_micro, state.reserved_micro) == (70_000, 0)


async def test_bad_amounts_and_period_keys_are_refused(any_store: Store) -> None:
    with pytest.raises(ValueError):
        await any_store.reserve(USER, PERIOD, -1, LIMIT)
    with pytest.raises(ValueError):
        await any_store.reserve(USER, "", 1, LIMIT)
    with pytest.raises(ValueError):
        await any_store.reserve(USER, "x" * 33, 1, LIMIT)
    with pytest.raises(ValueError):
        usage(-5)


async def _backdate(store: Store, reservation: Reservation, *, minutes: int, **values: object) -> None:
    """Pretend the reservation was made `minutes` ago (no other way to age it in a test)."""
    engine = create_engine(store.database_url)
    try:
        async with write_engine(engine).begin() as connection:
            await connection.execute(
                update(ReservationRow)
                .where(ReservationRow.id == reservation.id)  # type: ignore[arg-type]
                .values(created_at=utc_now() - timedelta(minutes=minutes), **values)
            )
    finally:
        await engine.dispose()
