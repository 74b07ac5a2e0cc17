"""What replicas share through PostgreSQL (storage.coordination), against a real server."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage import Coordination, Store

pytest_plugins = ["tests.db_fixtures"]


@pytest.fixture
async def coordination(pg_url: str):
    store = Store(pg_url)
    await store.start()
    shared = Coordination(store)
    await shared.start()
    yield shared
    await shared.close()
    await store.close()


async def test_an_update_is_claimed_once_and_a_dead_replicas_claim_is_taken_over(coordination: Coordination):
    first = await coordination.claim_update(100, -5)
    assert first is not None
    assert await coordination.claim_update(100, -5) is None  # a retried delivery
    me = coordination.owner
    coordination.owner = 424242  # a replica that holds no liveness lock: dead
    orphan = await coordination.claim_update(101, -5)
    coordination.owner = me
    assert await coordination.claim_update(101, -5) == orphan  # its retry is ours, same place
    await coordination.finish_update(orphan, -5)  # type: ignore[arg-type]
    assert await coordination.claim_update(101, -5) is None  # done: a retry is ignored


async def test_a_turn_waits_for_earlier_open_updates_of_its_conversation_only(coordination: Coordination):
    a = await coordination.claim_update(1, -7)
    b = await coordination.claim_update(2, -7)
    c = await coordination.claim_update(3, -7)
    assert a and b and c
    assert await coordination.key_turn_and_check(c, -7, "alice")  # a and b: not yet known
    await coordination.set_turn_key(a, "bob")
    assert await coordination.turn_is_blocked(c, -7, "alice")  # b still unknown
    await coordination.set_turn_key(b, "alice")
    assert await coordination.turn_is_blocked(c, -7, "alice")  # b is alice's, still open
    waiter = coordination.turn_waiter(-7)
    await coordination.finish_update(b, -7)
    await asyncio.wait_for(waiter.wait(), 10)  # NOTIFY woke us
    assert not await coordination.turn_is_blocked(c, -7, "alice")  # bob's turn does not hold us


async def test_a_confirmation_is_taken_once(coordination: Coordination):
    await coordination.save_pending("tok", 7, {"question": "why?"})
    assert await coordination.pending("tok", 60) == (7, {"question": "why?"})
    results = await asyncio.gather(*(coordination.take_pending("tok") for _ in range(4)))
    assert results.count(True) == 1
    assert await coordination.pending("tok", 60) is None


async def test_stop_signals_survive_a_dropped_listen_connection(coordination: Coordination, pg_url: str):
    heard: list[str] = []
    coordination.on_stop_signal(heard.append)
    listener_pid = coordination._listener.get_server_pid()
    admin = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", listener_pid)
    finally:
        await admin.close()
    for _ in range(200):  # the watchdog looks every few seconds
        if coordination.listening and coordination._listener.get_server_pid() != listener_pid:
            break
        await asyncio.sleep(0.1)
    assert coordination.listening
    await coordination.signal_stop("answer-1")
    for _ in range(100):
        if heard:
            break
        await asyncio.sleep(0.05)
    assert heard == ["answer-1"]
