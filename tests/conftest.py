"""Fixtures shared by the suite: databases (tests/db_fixtures.py), the fakes, and the running bot."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram
from tests.harness import BOT_TOKEN, KIMI_KEY, RunningBot, bot_settings

pytest_plugins = ["tests.db_fixtures"]

__all__ = ["KIMI_KEY", "BOT_TOKEN"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The long tests (marked slow) go first: xdist hands tests out in this order, so the other
    worker runs the short ones meanwhile, instead of one worker starting a minute-long test at
    the end while the other one idles (the suite's wall time on CI's 2 cores)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: order kept otherwise


@pytest.fixture
async def fake_kimi() -> AsyncIterator[FakeKimi]:
    async with FakeKimi(api_key=KIMI_KEY) as kimi:
        yield kimi


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def bot_database_url(request: pytest.FixtureRequest) -> str:
    """The bot's database, already migrated (a copy of a template, see tests/db_fixtures.py):
    SQLite in tmp_path, or with tests.harness.ON_BOTH_DATABASES a fresh PostgreSQL database too
    (sync on purpose: it resolves the async migrated_pg_url outside the loop)."""
    if getattr(request, "param", "sqlite") == "postgresql":
        return str(request.getfixturevalue("migrated_pg_url"))
    return str(request.getfixturevalue("migrated_sqlite_url"))  # tmp_path / "bot.db"


@pytest.fixture
async def start_bot(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi, bot_database_url: str
) -> AsyncIterator[Callable[..., Any]]:
    """`bot = await start_bot(SETTING=value, ...)`: the real bot, stopped after the test."""
    running: list[RunningBot] = []

    async def start(**overrides: Any) -> RunningBot:
        overrides.setdefault("database_url", bot_database_url)
        bot = RunningBot(bot_settings(tmp_path, tg, fake_kimi, **overrides), tg)
        await bot.__aenter__()
        running.append(bot)
        return bot

    yield start
    for bot in reversed(running):
        await bot.__aexit__(None, None, None)
