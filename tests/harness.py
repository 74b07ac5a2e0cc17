"""Runs the real bot (composition_root.serve) against the fake Telegram and fake Kimi over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from composition_root import serve
from handlers.services import BotServices
from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram
from tests.waiting import START_CEILING, WAIT_CEILING

KIMI_KEY = "sk-test-secret-key-0123456789"

# On an end-to-end test that uses start_bot: run it on SQLite and on PostgreSQL (a fresh database;
# it fails in CI and skips elsewhere without a server, like every PostgreSQL test).
ON_BOTH_DATABASES = pytest.mark.parametrize("bot_database_url", ["sqlite", "postgresql"], indirect=True)
BOT_TOKEN = "123456:TEST-secret-bot-token"


def bot_settings(tmp_path: Path, tg: FakeTelegram, kimi: FakeKimi, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "telegram_bot_token": tg.token,
        "telegram_api_url": tg.base_url,
        "telegram_file_url": tg.base_file_url,
        "moonshot_api_key": kimi.api_key,
        "moonshot_base_url": kimi.base_url,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


class RunningBot:
    """`async with RunningBot(settings, tg) as bot:` — the bot polls the fake until the block ends.

    ``await bot.caught_up()`` returns once the bot has *handled* every update queued for it so far
    (each update's whole handler pipeline returned): the event to wait for before asserting that
    something did NOT happen. It is exact with concurrent updates, unlike a reply to a later
    message or a quiet spell, which prove nothing about an earlier update still in flight.
    """

    def __init__(self, settings: Settings, telegram: FakeTelegram | None = None) -> None:
        self.settings = settings
        self.telegram = telegram
        self._confirmed_before_start = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.services: BotServices

    async def __aenter__(self) -> RunningBot:
        if self.telegram is not None:
            # Updates an earlier bot confirmed are not ours to handle; every later one is.
            self._confirmed_before_start = self.telegram.confirmed_update_id
        ready: asyncio.Future[BotServices] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(serve(self.settings, self._stop, ready=ready))
        done, _ = await asyncio.wait(
            {self._task, ready}, timeout=START_CEILING, return_when=asyncio.FIRST_COMPLETED
        )
        if self._task in done:
            self._task.result()  # raises what start-up raised
        if ready not in done:
            raise AssertionError(f"the bot did not start within {START_CEILING} s")
        self.services = ready.result()
        return self

    async def caught_up(self, timeout: float = WAIT_CEILING) -> None:  # noqa: ASYNC109 (test-facing API)
        """Wait until the bot has handled every update queued for it so far (see the class doc)."""
        if self.telegram is None:
            raise TypeError("RunningBot(settings, telegram) is needed to know which updates to wait for")
        wanted = self.telegram.update_ids(after=self._confirmed_before_start)
        try:
            await asyncio.wait_for(self.services.handled.wait(wanted), timeout)
        except TimeoutError:
            missing = [u for u in wanted if u not in self.services.handled]
            raise AssertionError(f"the bot had not handled updates {missing} after {timeout}s") from None

    async def budget(self, user_id: int) -> tuple[int, int]:
        """(spent, reserved) micro-元点 of the user's current budget period, on any database."""
        state = await self.services.store.budget_state(user_id, self.services.budgets.period().key)
        return state.spent_micro, state.reserved_micro

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, WAIT_CEILING)
