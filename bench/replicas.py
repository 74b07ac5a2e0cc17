"""Replies per second for 1 and 2 replicas in webhook mode on one PostgreSQL, at Telegram's limits.

Each replica is a real `python -m bot` process; the fake Telegram delivers webhooks through a
round-robin proxy (as in tests/test_e2e_replicas.py) with its flood control on (30 messages a
second overall, ~1 a second per chat, 429s counted). USERS users each ask one question at once, in
their private chats; Kimi (the fake) streams a short answer in about a second. Measured: from the
first question to the last final answer, replies per second, and the 429s (must be 0).

The bot's own ceiling is 25 messages a second overall (FloodGuard keeps 5 under Telegram's 30), so
at Telegram's limits both should approach that; one event loop doing everything (webhook, turns,
drafts, database) is the other ceiling. The fakes and this script run in one more process.

Run (from the repository root, with the local PostgreSQL): .venv/bin/python -m bench.replicas
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import tempfile
import time
from pathlib import Path

from bench.postgres import NoPostgres, throwaway_postgres
from bench.stats import print_header, print_table
from tests.bot_process import BotProcess
from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.round_robin_proxy import RoundRobinProxy
from tests.fakes.telegram import FakeTelegram, TelegramRules
from tests.harness import BOT_TOKEN, KIMI_KEY

USERS = 100
ANSWER = "A short answer, streamed in about a second. " * 6
REPLICA_COUNTS = (1, 2)
RUN_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def run(replicas: int, database_url: str, folder: Path, prefix: str = "") -> list[object]:
    async with (
        FakeTelegram(token=BOT_TOKEN, rules=TelegramRules(webhook_requires_https=False)) as tg,
        FakeKimi(api_key=KIMI_KEY) as kimi,
        RoundRobinProxy() as proxy,
        contextlib.AsyncExitStack() as stack,
    ):
        for number in range(replicas):
            port = free_port()
            cwd = folder / f"{prefix}r{replicas}-{number}"
            cwd.mkdir()
            bot = BotProcess(
                cwd,
                tg,
                kimi,
                DATABASE_URL=database_url,
                TELEGRAM_WEBHOOK_URL=f"{proxy.url}/hook",
                TELEGRAM_WEBHOOK_SECRET="bench-secret",
                WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                LOG_LEVEL="WARNING",
                KIMI_MAX_RPM="100000",  # Telegram's limits are measured here, not the Kimi account's
            )
            await stack.enter_async_context(bot)
            proxy.backends.append(f"http://127.0.0.1:{port}")
        await tg.wait_until(lambda: tg.world.webhook_sets >= replicas, timeout=60)
        kimi.script(*[Reply(content=ANSWER, chunk_tokens=4, delay=0.02) for _ in range(USERS)])
        users = [tg.user(first_name=f"User{i}") for i in range(USERS)]
        started = time.monotonic()
        for user in users:
            await tg.send_text(user, "A question, please")

        def answered() -> int:
            return sum(
                1 for user in users if any(m.visible_text.startswith("A short") for m in tg.messages(user.id))
            )

        await tg.wait_until(lambda: answered() == USERS, timeout=RUN_TIMEOUT, description="every answer")
        elapsed = time.monotonic() - started
        sends = len([c for c in tg.calls() if c.method == "sendMessage" and c.time >= started])
        return [
            replicas,
            USERS,
            f"{elapsed:.1f} s",
            f"{USERS / elapsed:.1f}",
            f"{sends / elapsed:.1f}",
            len(tg.flood_errors),
        ]


async def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    print_header("Replicas in webhook mode on one PostgreSQL: replies per second")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # For reference: one process on SQLite (webhook mode, nothing shared through a database).
        row = await run(1, f"sqlite+aiosqlite:///{tmp}/bot.db", Path(tmp), "sqlite-")
        rows.append(["1 (SQLite)", *row[1:]])
        for replicas in REPLICA_COUNTS:
            try:
                async with throwaway_postgres() as database_url:
                    rows.append(await run(replicas, database_url, Path(tmp)))
            except NoPostgres as reason:
                print(f"skipped: {reason}")
                return 1
    print_table(
        ["replicas", "users asking at once", "all answered in", "replies/s", "messages/s", "429s"], rows
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
