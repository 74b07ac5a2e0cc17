"""Turn order across replicas: one conversation's turns run one at a time, in arrival order,
whichever replica received them.

Arrival order is the order in which the replicas claimed the updates in the database (their
`seq`). A turn may start when no earlier update of its chat is still open and either belongs to
the same conversation or has not yet said which conversation it belongs to (it may be an earlier
question of this one, still reading its user from the database). Updates become "done" when
their handling ends, and every replica hears of it through LISTEN/NOTIFY; a periodic re-check
covers a notification lost with a dropped connection. Updates of a replica that died do not count.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextvars import ContextVar
from dataclasses import dataclass

from storage import Coordination

# Even without a notification (a replica died mid-turn) a waiting turn looks again this often.
RECHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Arrival:
    """An update as claimed in the database: its arrival number and its chat."""

    seq: int
    chat_id: int | None


# Set by the webhook receiver around the handling of each update.
current_arrival: ContextVar[Arrival | None] = ContextVar("current_arrival", default=None)


class SharedPlace:
    """Like turn_locks.Place, for a turn whose order is kept in the database."""

    def __init__(self, coordination: Coordination, arrival: Arrival, chat_id: int, turn_key: str) -> None:
        self._coordination = coordination
        self._arrival = arrival
        self._chat_id = chat_id
        self._turn_key = turn_key
        self._left = False
        self._finishing: asyncio.Task[None] | None = None
        # Said at once, not when the turn is entered: a document is read before its turn, and
        # until its conversation is known, the chat's other conversations would wait for it.
        self._waiter = coordination.turn_waiter(chat_id)  # before looking: no wake-up is missed
        self._first_look = asyncio.ensure_future(
            coordination.key_turn_and_check(arrival.seq, chat_id, turn_key)
        )

    async def __aenter__(self) -> SharedPlace:
        coordination, seq = self._coordination, self._arrival.seq
        waiter = self._waiter
        try:
            blocked = await self._first_look
            while blocked:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), RECHECK_SECONDS)
                coordination.drop_turn_waiter(self._chat_id, waiter)
                waiter = coordination.turn_waiter(self._chat_id)
                blocked = await coordination.turn_is_blocked(seq, self._chat_id, self._turn_key)
            return self
        except BaseException:
            self.leave()
            raise
        finally:
            coordination.drop_turn_waiter(self._chat_id, waiter)

    async def __aexit__(self, *exc_info: object) -> None:
        # Kept until the caller leaves (after the answer's last message was delivered) or the
        # update's handling ends: the next turn may run on another replica, and its first
        # message must not overtake this turn's last one in the chat.
        return None

    def leave(self) -> None:
        """Done (or never used): the next turn of the conversation may start, on any replica."""
        if not self._left:
            self._left = True
            self._finishing = asyncio.ensure_future(
                self._coordination.finish_update(self._arrival.seq, self._arrival.chat_id)
            )


def turn_key_text(chat_id: int, user_id: int | None, thread_id: int | None) -> str:
    return f"{chat_id}:{user_id or 0}:{thread_id or 0}"
