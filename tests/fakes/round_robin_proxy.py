"""A tiny round-robin reverse proxy, standing in for the load balancer in front of the replicas.

Each request goes to the next backend in turn. It records which backend got which update, and can
lose answers on purpose (the backend handled the request, the client sees a 502), which is how a
retried webhook delivery reaches a second replica in real life.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass

import aiohttp
from aiohttp import web


@dataclass
class Forwarded:
    backend: int  # index in `backends` at the time
    path: str
    update_id: int | None
    status: int  # what the backend answered (0: unreachable)


class RoundRobinProxy:
    def __init__(self) -> None:
        self.backends: list[str] = []  # base URLs, e.g. http://127.0.0.1:8081
        self.forwarded: list[Forwarded] = []
        self.lose_answers = 0  # this many next answers reach the client as 502
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> RoundRobinProxy:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    def backends_of(self, update_id: int) -> list[int]:
        """Which backends (by index) were sent this update, in order."""
        return [f.backend for f in self.forwarded if f.update_id == update_id]

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        if not self.backends:
            return web.Response(status=502, text="no backend")
        index = self._next % len(self.backends)
        self._next += 1
        body = await request.read()
        update_id = None
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            update_id = json.loads(body).get("update_id")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        assert self._session is not None
        status, payload = 0, b""
        try:
            async with self._session.request(
                request.method, self.backends[index] + request.path_qs, data=body, headers=headers
            ) as response:
                status, payload = response.status, await response.read()
                content_type = response.headers.get("Content-Type", "text/plain")
        except aiohttp.ClientError:
            content_type = "text/plain"
        self.forwarded.append(Forwarded(index, request.path, update_id, status))
        if status == 0:
            return web.Response(status=502, text="backend unreachable")
        if self.lose_answers > 0:
            self.lose_answers -= 1
            return web.Response(status=502, text="answer lost")
        return web.Response(status=status, body=payload, headers={"Content-Type": content_type})
