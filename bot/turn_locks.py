"""One turn at a time per conversation, in the order the messages arrived.

A place in the queue is taken synchronously, at the moment a message is received, before the
handler awaits anything (a database read, say): awaiting first would let a later message overtake
an earlier one whose read happened to be slower.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable


class Place:
    """A message's place in its conversation's queue; `async with place:` waits for its turn."""

    def __init__(self, queue: TurnQueue, key: Hashable) -> None:
        self._queue = queue
        self._key = key
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._left = False

    async def __aenter__(self) -> Place:
        try:
            await asyncio.shield(self._ready)
        except BaseException:
            self.leave()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.leave()

    def leave(self) -> None:
        """Give the place up (done, or never used); the next message's turn starts."""
        if not self._left:
            self._left = True
            self._queue._remove(self._key, self)

    def _admit(self) -> None:
        if not self._ready.done():
            self._ready.set_result(None)


class TurnQueue:
    def __init__(self) -> None:
        self._places: dict[Hashable, deque[Place]] = {}

    def take_place(self, key: Hashable) -> Place:
        place = Place(self, key)
        line = self._places.setdefault(key, deque())
        line.append(place)
        if len(line) == 1:
            place._admit()
        return place

    def _remove(self, key: Hashable, place: Place) -> None:
        line = self._places.get(key)
        if line is None:
            return
        line.remove(place)
        if line:
            line[0]._admit()
        else:
            del self._places[key]
