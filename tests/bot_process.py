"""The bot as a real `python -m bot` subprocess against the fakes: for signals (SIGTERM, SIGKILL)
and restarts, which an in-process bot cannot show."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram
from tests.waiting import START_CEILING, WAIT_CEILING

ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    """`async with BotProcess(tmp_path, tg, kimi, DATABASE_URL=...) as bot:`; killed on exit.

    A polling bot is entered once it is ready: its first getUpdates reached the fake Telegram (its
    start-up, migrations included, is done). So a test's waits time the bot's work, not Python
    starting on a busy machine. A webhook bot's caller waits for its setWebhook instead."""

    def __init__(self, cwd: Path, tg: FakeTelegram, kimi: FakeKimi, **env: str) -> None:
        self.cwd = cwd
        self.tg = tg
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MOONSHOT_"))}
        self.env = {
            **clean,
            "TELEGRAM_BOT_TOKEN": tg.token,
            "TELEGRAM_API_URL": tg.base_url,
            "TELEGRAM_FILE_URL": tg.base_file_url,
            "MOONSHOT_API_KEY": kimi.api_key,
            "MOONSHOT_BASE_URL": kimi.base_url,
            "PYTHONPATH": str(ROOT),
            **env,
        }
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = cwd / f"bot-{id(self)}.log"  # a file, not a pipe: a full pipe would block the bot

    async def __aenter__(self) -> BotProcess:
        since = self.tg.mark()  # calls from here on are this process's (one bot at a time)
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                cwd=self.cwd,
                env=self.env,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )
        if "TELEGRAM_WEBHOOK_URL" not in self.env:
            await self._polling(since)
        return self

    async def _polling(self, since: int) -> None:
        """Wait until this process polls the fake Telegram (its readiness), or fail with its log."""
        process = self.process
        assert process is not None
        await self.tg.wait_until(
            lambda: (
                process.returncode is not None
                or any(c.method == "getUpdates" for c in self.tg.calls(include_polling=True)[since:])
            ),
            timeout=START_CEILING,
            description="the bot's first getUpdates",
        )
        assert process.returncode is None, f"the bot exited on start:\n{self.log}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.wait(WAIT_CEILING)

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, seconds: float) -> int:
        """Wait for the process to exit (at most `seconds`); returns its exit code."""
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), seconds)
