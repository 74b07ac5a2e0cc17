"""Runs the real bot (composition_root.serve) against the fake Telegram and fake Kimi over loopback."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bot.settings import Settings
from composition_root import serve
from handlers.services import BotServices
from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram

KIMI_KEY = "sk-test-secret-key-0123456789"
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
    """`async with RunningBot(settings) as bot:` — the bot polls the fake until the block ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.services: BotServices

    async def __aenter__(self) -> RunningBot:
        ready: asyncio.Future[BotServices] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(serve(self.settings, self._stop, ready=ready))
        done, _ = await asyncio.wait({self._task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            self._task.result()  # raises what start-up raised
        if ready not in done:
            raise AssertionError("the bot did not start within 30 s")
        self.services = ready.result()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)
