"""Webhook mode: Telegram POSTs each update to our URL; any replica behind the URL may get it.

The answer to Telegram is quick (the update is handled in the background): Telegram waits for it
before sending more over that connection, and retries an update whose delivery failed or timed
out. Each update is claimed once in the database before it is acknowledged, so a retry (or the
same update reaching another replica) is acknowledged and ignored: one answer, one charge.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.shared_turns import Arrival, current_arrival
from handlers.services import BotServices
from storage import Coordination

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# Telegram's own limit; PTB's default is 40. More parallel deliveries mean more turns in flight.
MAX_CONNECTIONS = 40


def webhook_path(url: str) -> str:
    return urlsplit(url).path or "/"


def chat_of(update: dict[str, Any]) -> int | None:
    """The chat an update is about, from the raw JSON (a message's, or a button's message's)."""
    for key, payload in update.items():
        if key == "update_id" or not isinstance(payload, dict):
            continue
        for holder in (payload, payload.get("message")):
            if isinstance(holder, dict) and isinstance(holder.get("chat"), dict):
                chat_id = holder["chat"].get("id")
                return chat_id if isinstance(chat_id, int) else None
        if isinstance(payload.get("chat_id"), int):
            return int(payload["chat_id"])
    return None


class WebhookReceiver:
    def __init__(
        self, application: Application, svc: BotServices, coordination: Coordination, secret: str
    ) -> None:
        self._application = application
        self._svc = svc
        self._coordination = coordination
        self._secret = secret.encode()
        self._tasks: set[asyncio.Task[None]] = set()
        self.accepting = True

    def add_route(self, app: web.Application, path: str) -> None:
        app.router.add_post(path, self._receive)

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            # Not Telegram (or a stale secret): refuse before reading anything.
            log.warning("refused a webhook request without the right secret token from %s", request.remote)
            return web.Response(status=403, text="forbidden")
        if not self.accepting:
            return web.Response(status=503, text="stopping")  # Telegram retries it elsewhere
        try:
            data = await request.json()
        except ValueError:
            return web.Response(status=400, text="expected a JSON update")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="expected a JSON update")
        chat_id = chat_of(data)
        try:
            seq = await self._coordination.claim_update(data["update_id"], chat_id)
        except Exception as error:  # database down: let Telegram retry later
            log.warning("could not claim update %s: %s", data["update_id"], type(error).__name__)
            return web.Response(status=503, text="database unavailable")
        if seq is None:
            self._svc.metrics.duplicate_updates.inc()
            return web.Response(text="ok")  # handled before (a retry): nothing to do
        update = Update.de_json(data, self._application.bot)
        task = asyncio.create_task(self._handle(update, Arrival(seq, chat_id)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(text="ok")

    async def _handle(self, update: Update, arrival: Arrival) -> None:
        current_arrival.set(arrival)  # this task's own context: read by the turn order
        application = self._application
        try:
            # Through PTB's update processor, like polled updates (its concurrency cap applies).
            await application.update_processor.process_update(update, application.process_update(update))
        except Exception:
            log.exception("unhandled error while handling update %s", update.update_id)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._coordination.finish_update(arrival.seq, arrival.chat_id))

    async def drain(self, grace: float) -> None:
        """Stop accepting, and give the updates being handled `grace` seconds to finish."""
        self.accepting = False
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace)
