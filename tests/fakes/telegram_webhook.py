"""The fake Telegram's webhook delivery: POSTs updates to the URL set with setWebhook, like the
Bot API server does.

* each update is one POST of its JSON with the `X-Telegram-Bot-Api-Secret-Token` header (when a
  secret_token was set);
* up to `max_connections` deliveries run in parallel, but the updates of one chat go one at a
  time, in order (the Bot API server queues them per chat: the next waits for the answer);
* an update stays pending until a 2xx answer; a non-2xx answer, a timeout or a refused connection
  is retried after `retry_delay` (Telegram backs off longer; tests need not wait that long).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from tests.fakes.telegram_models import JSON
from tests.fakes.telegram_world import World

log = logging.getLogger("fake_telegram.webhook")


@dataclass
class Delivery:
    """One POST of an update: the answer's status (0: no answer) and which attempt it was."""

    update_id: int
    attempt: int
    status: int


def _queue_of(update: JSON) -> object:
    for key, payload in update.items():
        if key == "update_id" or not isinstance(payload, dict):
            continue
        for holder in (payload, payload.get("message")):
            if isinstance(holder, dict) and isinstance(holder.get("chat"), dict):
                return holder["chat"].get("id")
    return ("update", update["update_id"])  # no chat: a queue of its own


class WebhookDelivery:
    def __init__(
        self,
        world: World,
        on_change: Callable[[], None],
        *,
        retry_delay: float = 0.2,
        request_timeout: float = 10.0,
    ) -> None:
        self.world = world
        self._on_change = on_change
        self.retry_delay = retry_delay
        self.request_timeout = request_timeout
        self.deliveries: list[Delivery] = []
        self._in_flight: dict[int, object] = {}  # update_id -> its chat's queue
        self._attempts: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._wakeup = asyncio.Event()

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100, force_close=False),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        )
        self._runner = asyncio.create_task(self._run())

    async def stop(self) -> None:
        for task in [self._runner, *self._tasks]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._session is not None:
            await self._session.close()

    def succeeded(self, update_id: int) -> bool:
        return any(d.update_id == update_id and 200 <= d.status < 300 for d in self.deliveries)

    async def _run(self) -> None:
        while True:
            changed = asyncio.ensure_future(self.world.updates_changed())
            wakeup = asyncio.ensure_future(self._wakeup.wait())
            try:
                self._dispatch()
                await asyncio.wait({changed, wakeup}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                wakeup.cancel()
            self._wakeup.clear()

    def _dispatch(self) -> None:
        url = self.world.webhook_url
        if not url or self.world.closing:
            return
        busy = set(self._in_flight.values())  # chats with an update on the way
        for update in self.world.deliverable():
            if len(self._in_flight) >= self.world.webhook_max_connections:
                return
            update_id, queue = update["update_id"], _queue_of(update)
            if update_id in self._in_flight or queue in busy:
                continue  # behind the chat's update on the way, in order
            busy.add(queue)
            self._in_flight[update_id] = queue
            task = asyncio.create_task(self._deliver(url, update))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, update: JSON) -> None:
        update_id = update["update_id"]
        attempt = self._attempts.get(update_id, 0) + 1
        self._attempts[update_id] = attempt
        headers = {"Content-Type": "application/json"}
        if self.world.webhook_secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.world.webhook_secret
        status = 0
        assert self._session is not None
        try:
            async with self._session.post(url, data=json.dumps(update), headers=headers) as response:
                status = response.status
                await response.read()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.info("webhook delivery of %s failed: %s", update_id, type(error).__name__)
        self.deliveries.append(Delivery(update_id, attempt, status))
        if 200 <= status < 300:
            self.world.updates = [u for u in self.world.updates if u["update_id"] != update_id]
            if update not in self.world.delivered_updates:
                self.world.delivered_updates.append(update)
        else:
            await asyncio.sleep(self.retry_delay)  # the queue stays blocked until the retry
        del self._in_flight[update_id]
        self._wakeup.set()
        self._on_change()
