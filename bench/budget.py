"""Atomic budget reservations under concurrency: throughput, latency, and proof of no overspend.

Many concurrent turns of ONE user (the hottest row there is) each reserve a worst case and
settle a smaller actual cost with its ledger row, through the real `storage.Store`, until the
budget runs out. A watcher reads the budget the whole time; the run proves that spent + reserved
never went above the limit and that every settled amount was counted exactly once.

SQLite runs on a file in a temporary directory; PostgreSQL on a throwaway database of the local
server (127.0.0.1:5432, user postgres; override with BENCH_POSTGRES_URL), dropped afterwards,
and skipped with the reason printed when there is no server.

Run: .venv/bin/python -m bench.budget
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.postgres import NoPostgres, throwaway_postgres
from bench.stats import median, ms, percentile, print_header, print_table
from storage import MICRO_PER_YUANDIAN, NewUsage, Store

PERIOD = "2026-11"
CONCURRENCY_LEVELS = (1, 8, 32)
ATTEMPTS_PER_LEVEL = 300
DEADLINE_PER_LEVEL = 12.0  # seconds; a level stops early rather than blow the one-minute bound
# A chat turn's worst case with max_tokens 4096 on kimi-k2 (input + 4096/175 output 元点),
# and actual costs spread below it.
WORST_CASE_MICRO = 24 * MICRO_PER_YUANDIAN
ACTUAL_RANGE_MICRO = (2 * MICRO_PER_YUANDIAN, 24 * MICRO_PER_YUANDIAN)
# The limit is set so that roughly 85% of the attempts fit: the last ones race for the edge.
LIMIT_MICRO = int(ATTEMPTS_PER_LEVEL * 0.85 * sum(ACTUAL_RANGE_MICRO) / 2)
WATCH_INTERVAL = 0.05


@dataclass
class LevelResult:
    concurrency: int
    elapsed: float = 0.0
    cpu: float = 0.0  # process CPU seconds, watcher included
    watcher_reads: int = 0
    settled: int = 0
    refused: int = 0
    settled_micro: int = 0
    reserve_latency: list[float] = field(default_factory=list)
    settle_latency: list[float] = field(default_factory=list)
    max_committed_seen: int = 0
    final_spent: int = 0
    final_reserved: int = 0

    @property
    def never_exceeded(self) -> bool:
        return (
            self.max_committed_seen <= LIMIT_MICRO
            and self.final_spent <= LIMIT_MICRO
            and self.final_reserved == 0
            and self.final_spent == self.settled_micro  # nothing lost, nothing counted twice
        )


def usage_row(user_id: int, cost_micro: int) -> NewUsage:
    return NewUsage(
        user_id=user_id,
        chat_id=user_id,
        model="kimi-k2-0905-preview",
        prompt_tokens=200,
        cached_tokens=0,
        completion_tokens=1000,
        cost_micro=cost_micro,
        purpose="chat",
        conversation_id=None,
    )


async def run_level(store: Store, user_id: int, concurrency: int, seed: int) -> LevelResult:
    result = LevelResult(concurrency)
    rng = random.Random(seed)
    attempts_left = ATTEMPTS_PER_LEVEL
    done = asyncio.Event()
    started, cpu_started = time.perf_counter(), time.process_time()
    deadline = started + DEADLINE_PER_LEVEL

    async def turn_worker() -> None:
        nonlocal attempts_left
        while attempts_left > 0 and time.perf_counter() < deadline:
            attempts_left -= 1
            t0 = time.perf_counter()
            reservation = await store.reserve(user_id, PERIOD, WORST_CASE_MICRO, LIMIT_MICRO)
            t1 = time.perf_counter()
            result.reserve_latency.append(t1 - t0)
            if reservation is None:
                result.refused += 1
                continue
            actual = rng.randint(*ACTUAL_RANGE_MICRO)
            await store.settle(reservation, actual, [usage_row(user_id, actual)])
            result.settle_latency.append(time.perf_counter() - t1)
            result.settled += 1
            result.settled_micro += actual

    async def watcher() -> None:
        # An independent reader: what any other process would see at any moment.
        while not done.is_set():
            state = await store.budget_state(user_id, PERIOD)
            result.max_committed_seen = max(result.max_committed_seen, state.committed_micro)
            result.watcher_reads += 1
            # Often enough to catch an overspend in the act, rarely enough not to be the load.
            await asyncio.sleep(WATCH_INTERVAL)

    watching = asyncio.create_task(watcher())
    await asyncio.gather(*(turn_worker() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - started
    result.cpu = time.process_time() - cpu_started
    done.set()
    await watching
    final = await store.budget_state(user_id, PERIOD)
    result.final_spent, result.final_reserved = final.spent_micro, final.reserved_micro
    result.max_committed_seen = max(result.max_committed_seen, final.committed_micro)
    return result


async def run_backend(database_url: str) -> list[LevelResult]:
    store = Store(database_url)
    await store.start()
    try:
        results = []
        for index, concurrency in enumerate(CONCURRENCY_LEVELS):
            # A fresh user (a fresh budget row) per level, so each starts from an empty budget.
            results.append(await run_level(store, 7_000 + index, concurrency, seed=index))
        return results
    finally:
        await store.close()


def yuandian(micro: int) -> str:
    return f"{micro / MICRO_PER_YUANDIAN:,.2f}"


def rows_for(backend: str, results: list[LevelResult]) -> list[list[object]]:
    rows: list[list[object]] = []
    for r in results:
        rows.append(
            [
                backend,
                r.concurrency,
                r.settled,
                r.refused,
                f"{r.settled / r.elapsed:.0f}",
                ms(r.cpu / max(1, r.settled)),
                f"{ms(median(r.reserve_latency))} / {ms(percentile(r.reserve_latency, 0.95))}",
                f"{ms(median(r.settle_latency))} / {ms(percentile(r.settle_latency, 0.95))}",
                f"{yuandian(r.max_committed_seen)} / {yuandian(r.final_spent)} ({r.watcher_reads} reads)",
                "yes" if r.never_exceeded else "NO: OVERSPENT OR MISCOUNTED",
            ]
        )
    return rows


async def main_async() -> None:
    print_header("bench.budget: atomic reservations on one budget")
    print(
        f"{ATTEMPTS_PER_LEVEL} turns per row, each reserving {yuandian(WORST_CASE_MICRO)} 元点 and "
        f"settling 2-24 元点 with its ledger row; limit {yuandian(LIMIT_MICRO)} 元点."
    )
    print()
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="kimi-bench-") as directory:
        sqlite_url = f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        rows += rows_for("SQLite", await run_backend(sqlite_url))
    skipped = None
    try:
        async with throwaway_postgres() as postgres_url:
            rows += rows_for("PostgreSQL", await run_backend(postgres_url))
    except NoPostgres as reason:
        skipped = str(reason)
    print_table(
        [
            "backend",
            "concurrent",
            "settled",
            "refused",
            "cycles/s",
            "CPU ms/cycle",
            "reserve p50/p95 ms",
            "settle p50/p95 ms",
            "max spent+reserved seen / final spent 元点",
            "never over limit",
        ],
        rows,
    )
    print()
    print(
        "cycles/s: settled reserve+settle cycles per second; CPU ms/cycle: this process's CPU per "
        "settled cycle (refusals and the watcher included). 'never over limit' = every watcher "
        "read and the final state had spent + reserved <= limit, nothing is left reserved, and "
        "spent equals the sum of the settled costs."
    )
    if skipped:
        print()
        print(f"PostgreSQL skipped: {skipped}")


def main() -> None:
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
