"""A long-lived user: the next turn's context at 3,000 prior turns, /cost at 100,000 ledger rows.

Measures, on SQLite and (when the local server is there) PostgreSQL, the median wall time of
repeats and, in brackets, the median CPU time of this process (all its threads: aiosqlite's too;
not PostgreSQL's server), which a busy shared machine disturbs less:
- the next turn's context, as the turn builds it: reading the conversation newest first, as much
  as can fit; then fitting the window by the local bound, and, since 3,000 turns overflow the
  context, the larger window offered to Kimi's tokenizer, with Kimi's answer taken as instant
  (it says the window fits): the turn's own work before its request;
- the same with Kimi's real count of that window (the fake Kimi over loopback: one HTTP call
  carrying the whole window), which the turn makes only when the context is tight; the fake
  counts in this process, and its counting is most of that row;
- for contrast, reading the whole history as before issue 11;
- /cost's "last reply" (Store.last_reply_usage) with 100,000 of the user's rows in the ledger.

The same script measures an older checkout (run it from that checkout's directory): commits
before Conversations._read_history read the history with the turn's call of that time.

Run: .venv/bin/python -m bench.history
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from bench.postgres import NoPostgres, throwaway_postgres
from bench.stats import median, ms, print_header, print_table
from bot.budget import BudgetKeeper
from bot.kimi import KimiClient, KimiConfig
from bot.pricing import load_price_table
from bot.settings import Settings
from bot.turn import HISTORY_CHARS_PER_TOKEN, ConversationKey, Conversations
from storage import NewMessage, Store
from storage.tables import UsageRow
from tests.fakes.kimi import FakeKimi

PRIOR_TURNS = 3_000
LEDGER_ROWS = 100_000
USER = 42
REPEAT = 15


async def timed(action: Callable[[], Awaitable[Any]], repeat: int = REPEAT) -> str:
    """Median wall ms (median CPU ms of the process)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        await action()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return f"{ms(median(wall))} ({ms(median(cpu))})"


async def fill(store: Store) -> int:
    conversation = await store.active_conversation(USER, USER)
    batch: list[NewMessage] = []
    for turn in range(PRIOR_TURNS):
        batch.append(NewMessage(role="user", content=f"question {turn}: " + "how does this work? " * 4))
        batch.append(NewMessage(role="assistant", content=f"answer {turn}: " + "it works like so. " * 12))
        if len(batch) >= 1000:
            await store.add_messages(conversation.id, batch)
            batch = []
    if batch:
        await store.add_messages(conversation.id, batch)
    start = datetime.now(UTC) - timedelta(days=30)
    rows = [
        {
            "user_id": USER,
            "chat_id": USER,
            "model": "kimi-k2-0905-preview",
            "prompt_tokens": 100,
            "cached_tokens": 0,
            "completion_tokens": 100,
            "cost_micro": 1000,
            "purpose": "chat",
            "conversation_id": conversation.id,
            "web_search_calls": 0,
            "turn_id": f"{index:032x}",
            "created_at": start + timedelta(seconds=index * 20),
        }
        for index in range(LEDGER_ROWS)
    ]
    async with store._writing() as session:  # a benchmark may fill the table directly
        for offset in range(0, len(rows), 10_000):
            await session.execute(insert(UsageRow), rows[offset : offset + 10_000])
    return conversation.id


async def measure(database_url: str, kimi: FakeKimi) -> list[list[str]]:
    store = Store(database_url)
    await store.start()
    client = KimiClient(KimiConfig(api_key=kimi.api_key, base_url=kimi.base_url))
    try:
        conversation_id = await fill(store)
        settings = Settings(
            _env_file=None,
            telegram_bot_token="1:BENCH",
            moonshot_api_key=kimi.api_key,
            moonshot_base_url=kimi.base_url,
            default_budget=Decimal(1000),
        )
        prices = load_price_table()
        price = prices.get(settings.default_model)
        assert price is not None
        conversations = Conversations(store, client, prices, settings, BudgetKeeper(store, settings))
        allowed = price.context_length - settings.max_output_tokens - 256
        new = [{"role": "user", "content": "and one more question"}]

        async def read_needed() -> Any:
            if hasattr(conversations, "_read_context"):
                key = ConversationKey(USER, USER)
                return (await conversations._read_context(key, allowed))[1]
            if hasattr(conversations, "_read_history"):
                return await conversations._read_history(conversation_id, allowed)
            return await store.recent_messages(conversation_id, allowed * HISTORY_CHARS_PER_TOKEN)

        async def read_all() -> Any:
            return await store.conversation_messages(conversation_id)

        async def kimi_says_it_fits(model: str, window: Any) -> int:
            return allowed

        async def context() -> Any:
            return await conversations._fit(price, await read_needed(), new, allowed)

        async def context_with_kimi() -> Any:
            return await real_fit(price, await read_needed(), new, allowed)

        async def last_reply() -> Any:
            return await store.last_reply_usage(USER)

        real_fit = conversations._fit
        counted = conversations._count_tokens
        conversations._count_tokens = kimi_says_it_fits  # type: ignore[method-assign]
        read_n = len(await read_needed())
        window, _, reserved = await conversations._fit(price, await read_needed(), new, allowed)
        local = await timed(context)
        conversations._count_tokens = counted  # type: ignore[method-assign]
        sent = f"{len(window.messages)} messages, {reserved:,} tokens reserved"
        return [
            [
                f"next turn: read newest first, what can fit ({read_n} of {2 * PRIOR_TURNS} messages)",
                await timed(read_needed),
            ],
            [f"next turn's context: read + fit, Kimi's count taken as instant ({sent})", local],
            [
                "the same with Kimi's count of the window (fake Kimi, loopback; tight context only)",
                await timed(context_with_kimi, 5),
            ],
            [f"for contrast: read the whole history ({2 * PRIOR_TURNS} messages)", await timed(read_all)],
            [f"/cost last reply at {LEDGER_ROWS:,} ledger rows", await timed(last_reply)],
        ]
    finally:
        await client.close()
        await store.close()


async def main() -> None:
    print_header("bench.history: a long-lived user")
    async with FakeKimi(api_key="sk-bench") as kimi:
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = await measure(f"sqlite+aiosqlite:///{tmp}/bench.db", kimi)
        try:
            async with throwaway_postgres() as url:
                postgres = await measure(url, kimi)
        except NoPostgres as reason:
            print(f"PostgreSQL skipped: {reason}")
            postgres = [[row[0], "-"] for row in sqlite]
    rows = [[a[0], a[1], b[1]] for a, b in zip(sqlite, postgres, strict=True)]
    print_table(["median of repeats", "SQLite ms (CPU)", "PostgreSQL ms (CPU)"], rows)


if __name__ == "__main__":
    asyncio.run(main())
