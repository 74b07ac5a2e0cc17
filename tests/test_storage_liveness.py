"""A live process keeps its PostgreSQL liveness lock even when the lock's connection drops."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage import Store
from storage import liveness as liveness_module
from storage.liveness import PG_LOCK_SPACE, PostgresLiveness
from tests.db_fixtures import _asyncpg_args, _asyncpg_url
from tests.waiting import WAIT_CEILING


async def test_a_dropped_lock_connection_is_noticed_and_the_lock_taken_again(
    migrated_pg_url: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(liveness_module, "WATCH_SECONDS", 0.1)
    alive = Store(migrated_pg_url)
    await alive.start()
    try:
        lock = alive._liveness
        assert isinstance(lock, PostgresLiveness) and await lock.holds_key()
        # The server ends the lock's session (a restart, a network cut, an idle reaper).
        admin = await asyncpg.connect(**_asyncpg_args(_asyncpg_url(migrated_pg_url)))
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid::bigint = $1 AND objid::bigint = $2",
                PG_LOCK_SPACE,
                alive.owner,
            )
        finally:
            await admin.close()
        assert ended == 1

        await asyncio.wait_for(lock.taken_again.wait(), WAIT_CEILING)
        assert lock.regained == 1 and await lock.holds_key()
        # A process starting now sees this one alive and leaves its rows alone.
        starting = Store(migrated_pg_url)
        await starting.start()
        try:
            assert starting._liveness is not None
            async with starting._liveness.if_dead(alive.owner) as dead:
                assert not dead
        finally:
            await starting.close()
    finally:
        await alive.close()
