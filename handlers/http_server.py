"""The bot's HTTP server: GET /healthz, GET /metrics and, in webhook mode, Telegram's POSTs.

In polling mode it runs only when METRICS_LISTEN is set; in webhook mode on WEBHOOK_LISTEN, where
the webhook URL's path receives the updates (see handlers/webhook.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from telegram.error import TelegramError
from telegram.ext import Application

from bot.health import Health
from bot.metrics import CONTENT_TYPE, Metrics
from bot.settings import split_listen
from handlers.services import BotServices

log = logging.getLogger(__name__)

# Without traffic, ask Telegram (getMe) this often whether it still answers.
TELEGRAM_PROBE_SECONDS = 30.0


def health_app(svc: BotServices) -> web.Application:
    """The app of polling mode: only /healthz and /metrics."""
    app = web.Application()
    health_routes(app, svc.health, svc.metrics)
    return app


def health_routes(app: web.Application, health: Health, metrics: Metrics) -> None:
    async def healthz(_request: web.Request) -> web.Response:
        report = await health.report()
        body = {
            "status": "ok" if report.ready else "unavailable",
            "database": report.database,
            "telegram": report.telegram,
        }
        return web.json_response(body, status=200 if report.ready else 503)

    async def metrics_page(_request: web.Request) -> web.Response:
        response = web.Response(body=metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)


class HttpServer:
    """An aiohttp site on `host:port` plus the Telegram probe that keeps /healthz honest."""

    def __init__(self, app: web.Application, listen: str, application: Application, health: Health) -> None:
        self._app = app
        self._host, self._port = split_listen(listen)
        self._application = application
        self._health = health
        self._runner: web.AppRunner | None = None
        self._probe: asyncio.Task[None] | None = None
        self.port = 0  # the bound port (listen on port 0 picks a free one)

    async def start(self) -> None:
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self._probe = asyncio.create_task(self._probe_telegram())
        log.info("serving /healthz and /metrics on %s:%s", self._host, self.port)

    async def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _probe_telegram(self) -> None:
        while True:
            quiet = self._health.telegram_quiet_for()
            if quiet < TELEGRAM_PROBE_SECONDS:
                await asyncio.sleep(TELEGRAM_PROBE_SECONDS - quiet)
                continue
            try:
                await self._application.bot.get_me()  # the call meter records the result
            except TelegramError:
                pass
            except Exception as error:  # a probe must never end the server
                log.warning("Telegram probe failed: %s", type(error).__name__)
                self._health.note_telegram(False)
