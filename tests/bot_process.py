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

ROOT = Path(__file__).resolve().parent.parent


class BotProcess:
    """`async with BotProcess(tmp_path, tg, kimi, DATABASE_URL=...) as bot:`; killed on exit."""

    def __init__(self, cwd: Path, tg: FakeTelegram, kimi: FakeKimi, **env: str) -> None:
        self.cwd = cwd
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
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.wait(30)

    def signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, seconds: float) -> int:
        """Wait for the process to exit (at most `seconds`); returns its exit code."""
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), seconds)
