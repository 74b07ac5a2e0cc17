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


@pytest.fixture
async def fake_kimi() -> AsyncIterator[FakeKimi]:
    async with FakeKimi(api_key=KIMI_KEY) as kimi:
        yield kimi


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
async def start_bot(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi
) -> AsyncIterator[Callable[..., Any]]:
    """`bot = await start_bot(SETTING=value, ...)`: the real bot, stopped after the test."""
    running: list[RunningBot] = []

    async def start(**overrides: Any) -> RunningBot:
        bot = RunningBot(bot_settings(tmp_path, tg, fake_kimi, **overrides), tg)
        await bot.__aenter__()
        running.append(bot)
        return bot

    yield start
    for bot in reversed(running):
        await bot.__aexit__(None, None, None)
