"""Writes that queue behind one under way go out together, in the next transaction."""

from __future__ import annotations

import asyncio

import pytest

from bot.group_commit import GroupCommit


class SlowWriter:
    """Records each batch; the first write holds until released."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.fail_with: Exception | None = None

    async def write(self, items: list[int]) -> None:
        self.batches.append(items)
        self.started.set()
        if len(self.batches) == 1:
            await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with


async def test_a_lone_write_goes_out_at_once():
    writer = SlowWriter()
    writer.release.set()
    commit = GroupCommit(writer.write)
    await commit.add(1)
    assert writer.batches == [[1]]


async def test_writes_queued_behind_one_under_way_share_the_next():
    writer = SlowWriter()
    commit = GroupCommit(writer.write)
    first = asyncio.create_task(commit.add(1))
    await writer.started.wait()  # the first write is under way, held
    later = [asyncio.create_task(commit.add(n)) for n in range(2, 7)]
    await asyncio.sleep(0)
    writer.release.set()
    await asyncio.gather(first, *later)
    assert writer.batches == [[1], [2, 3, 4, 5, 6]]


async def test_every_caller_of_a_failed_batch_gets_its_error():
    writer = SlowWriter()
    writer.release.set()
    writer.fail_with = RuntimeError("database is locked")
    commit = GroupCommit(writer.write)
    results = await asyncio.gather(commit.add(1), commit.add(2), return_exceptions=True)
    assert [str(result) for result in results] == ["database is locked"] * 2
    writer.fail_with = None
    await commit.add(3)  # the next write is not affected
    assert writer.batches[-1] == [3]


async def test_a_caller_that_gives_up_does_not_cancel_the_write():
    writer = SlowWriter()
    commit = GroupCommit(writer.write)
    waiting = asyncio.create_task(commit.add(1))
    await writer.started.wait()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    writer.release.set()
    await commit.add(2)
    assert writer.batches == [[1], [2]]
