"""Who may use the bot: admins, ALLOWED_USER_IDS, and the allow-list admins keep with /allow and /deny.

The check runs before every handler and must not await (handlers see updates in arrival order), so
it reads an in-memory copy of the database's list. /allow and /deny write the database and the copy
together: in force for the next message, without a restart. Other replicas sharing a PostgreSQL
database are told by a notification and re-read it at once; each also re-reads it every
REFRESH_SECONDS (`keep_fresh`). The rules:
- admins (ADMIN_USER_IDS) are always allowed;
- an admin's latest /allow or /deny of a user decides for that user, over ALLOWED_USER_IDS;
- otherwise a user is allowed if ALLOWED_USER_IDS names them, or if nobody is listed anywhere
  (neither ALLOWED_USER_IDS nor an /allow): an unlisted bot is open to everyone, as before.
So the first /allow on an open bot closes it to everyone not allowed; /allow says so.
New messages are checked on arrival, and a turn again when it starts (`Conversations` is given
`allows`): a message that waited behind its asker's own answer is refused if they were denied
meanwhile. An answer already being written when its asker is denied ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from bot.settings import Settings
from storage import AccessEntry, Store

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0


@dataclass(frozen=True)
class AccessChange:
    user_id: int
    allowed: bool
    closed_the_bot: bool  # this /allow ended "open to everyone": only the listed may use it now
    is_admin: bool  # an admin stays allowed whatever the list says


@dataclass(frozen=True)
class AccessListing:
    from_settings: frozenset[int]  # ALLOWED_USER_IDS
    admins: frozenset[int]
    entries: list[AccessEntry]  # the admins' decisions, by user id

    @property
    def allowed_by_admins(self) -> list[int]:
        return [entry.user_id for entry in self.entries if entry.allowed]

    @property
    def denied(self) -> list[int]:
        return [entry.user_id for entry in self.entries if not entry.allowed]

    @property
    def open_to_everyone(self) -> bool:
        return not self.from_settings and not self.allowed_by_admins


class AccessPolicy:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._decisions: dict[int, bool] = {}  # the database's list, as last read or written
        self._changes = 0  # bumped by each local change, so a refresh never undoes a newer one
        self._changed_elsewhere = asyncio.Event()

    def is_admin(self, user_id: int) -> bool:
        return user_id in self._settings.admin_user_ids

    def allows(self, user_id: int) -> bool:
        if self.is_admin(user_id):
            return True
        decision = self._decisions.get(user_id)
        if decision is not None:
            return decision
        from_settings = self._settings.allowed_user_ids
        if not from_settings and not any(self._decisions.values()):
            return True
        return user_id in from_settings

    async def load(self) -> None:
        """Read the database's list (at start-up, then every REFRESH_SECONDS)."""
        changes = self._changes
        entries = await self._store.access_entries()
        if changes == self._changes:
            self._decisions = {entry.user_id: entry.allowed for entry in entries}

    def changed_elsewhere(self) -> None:
        """Another replica changed the list (a database notification): re-read it now."""
        self._changed_elsewhere.set()

    async def keep_fresh(self, interval: float = REFRESH_SECONDS) -> None:
        """Re-read the list forever (cancel to stop): at once when told of a change elsewhere, and
        every `interval` anyway (a notification can be missed while reconnecting)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed_elsewhere.wait(), interval)
            self._changed_elsewhere.clear()
            try:
                await self.load()
            except Exception as error:  # a database hiccup: keep the last list, try again later
                log.warning("could not refresh the allow-list: %s", error)

    async def allow(self, user_id: int, by: int) -> AccessChange:
        return await self._decide(user_id, True, by)

    async def deny(self, user_id: int, by: int) -> AccessChange:
        return await self._decide(user_id, False, by)

    async def listing(self) -> AccessListing:
        return AccessListing(
            from_settings=self._settings.allowed_user_ids,
            admins=self._settings.admin_user_ids,
            entries=await self._store.access_entries(),
        )

    async def _decide(self, user_id: int, allowed: bool, by: int) -> AccessChange:
        was_open = not self._settings.allowed_user_ids and not any(self._decisions.values())
        await self._store.set_access(user_id, allowed, by)
        self._changes += 1
        self._decisions[user_id] = allowed
        return AccessChange(user_id, allowed, was_open and allowed, self.is_admin(user_id))
