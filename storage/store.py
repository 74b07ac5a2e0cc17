"""Store: the one public entry to storage. Every method opens and closes its own transaction
and returns plain records, so callers never hold a session or see SQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import text as sa_text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import budgets, conversations, extractions, ledger, migrate, users
from storage.engine import create_engine, normalise_url, write_engine
from storage.records import (
    USER_ROLES,
    BudgetState,
    ConversationRecord,
    ExtractionRecord,
    MessageRecord,
    NewMessage,
    NewUsage,
    Reservation,
    UsageTotals,
    UserRecord,
)

log = logging.getLogger(__name__)

# A turn never holds a reservation this long; a hold that old was left by a crash.
DEFAULT_STALE_AFTER_SECONDS = 600.0


class Store:
    def __init__(self, database_url: str | URL, *, echo: bool = False) -> None:
        self._url = normalise_url(database_url)  # a bad URL fails here, not at the first turn
        self._echo = echo
        self._engine: AsyncEngine | None = None
        self._read: async_sessionmaker[AsyncSession] | None = None
        self._write: async_sessionmaker[AsyncSession] | None = None
        # SQLite has one writer at a time and its busy handler sleeps and polls instead of queueing;
        # queueing our own writers in-process keeps the tail latency flat (other processes still
        # wait on the busy timeout). PostgreSQL needs no such thing.
        self._sqlite_writer = asyncio.Lock() if self._url.get_backend_name() == "sqlite" else None
        self._charge_listeners: list[Callable[[int], None]] = []

    @property
    def database_url(self) -> URL:
        """The normalised URL (render it with hide_password=True before logging it)."""
        return self._url

    async def start(self, *, release_stale_after: float | None = DEFAULT_STALE_AFTER_SECONDS) -> None:
        """Migrate to the newest schema, connect, and free the holds a crash left behind."""
        if self._engine is not None:
            raise RuntimeError("Store.start() was already awaited")
        await migrate.upgrade(self._url)
        self._engine = create_engine(self._url, echo=self._echo)
        self._read = async_sessionmaker(self._engine, class_=AsyncSession, expire_on_commit=False)
        self._write = async_sessionmaker(
            write_engine(self._engine), class_=AsyncSession, expire_on_commit=False
        )
        if release_stale_after is not None:
            released = await self.release_stale_reservations(release_stale_after)
            if released:
                log.warning("released %d stale budget reservation(s)", released)

    def on_charge(self, listener: Callable[[int], None]) -> None:
        """Call `listener(micro)` after every committed charge (settle or charge): for metrics."""
        self._charge_listeners.append(listener)

    def _charged(self, amount_micro: int) -> None:
        for listener in self._charge_listeners:
            listener(amount_micro)

    async def ping(self) -> None:
        """Raise if the database cannot be reached (for /healthz)."""
        async with self._reading() as session:
            await session.exec(sa_text("SELECT 1"))  # type: ignore[call-overload]

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = self._read = self._write = None

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[AsyncSession]:
        if self._read is None:
            raise RuntimeError("Store.start() has not been awaited")
        async with self._read() as session:
            yield session

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        """One transaction, committed on success, rolled back on any exception."""
        if self._write is None:
            raise RuntimeError("Store.start() has not been awaited")
        async with self._sqlite_writer or contextlib.nullcontext(), self._write.begin() as session:
            yield session

    # users

    async def get_user(self, telegram_id: int) -> UserRecord | None:
        async with self._reading() as session:
            return await users.get(session, telegram_id)

    async def get_or_create_user(
        self, telegram_id: int, language: str | None = None, username: str | None = None
    ) -> UserRecord:
        """The user, created on first sight; language and username follow Telegram's latest."""
        changes = {"language": language, "username": username}
        changes = {key: value for key, value in changes.items() if value is not None}
        # Called on every update: the common case (known, unchanged) must not take the write lock.
        known = await self.get_user(telegram_id)
        if known is not None and all(getattr(known, k) == v for k, v in changes.items()):
            return known
        async with self._writing() as session:
            await users.ensure(session, telegram_id)
            if changes:
                await users.update_fields(session, telegram_id, **changes)
            record = await users.get(session, telegram_id)
        assert record is not None
        return record

    async def set_user_model(self, telegram_id: int, model: str | None) -> None:
        await self._set_user_fields(telegram_id, model=model)

    async def set_user_role(self, telegram_id: int, role: str) -> None:
        if role not in USER_ROLES:
            raise ValueError(f"unknown role {role!r}")
        await self._set_user_fields(telegram_id, role=role)

    async def set_budget_override(self, telegram_id: int, limit_micro: int | None) -> None:
        await self._set_user_fields(telegram_id, budget_override_micro=limit_micro)

    async def _set_user_fields(self, telegram_id: int, **values: object) -> None:
        # Creates the user if needed: an admin may configure someone who has not written yet.
        async with self._writing() as session:
            await users.ensure(session, telegram_id)
            await users.update_fields(session, telegram_id, **values)

    # conversations

    async def active_conversation(
        self, chat_id: int, user_id: int | None, thread_id: int | None = None
    ) -> ConversationRecord:
        async with self._reading() as session:
            found = await conversations.find_active(session, chat_id, user_id, thread_id)
        if found is not None:
            return found
        async with self._writing() as session:
            await conversations.open_if_none(session, chat_id, user_id, thread_id)
            found = await conversations.find_active(session, chat_id, user_id, thread_id)
        assert found is not None
        return found

    async def start_new_conversation(
        self, chat_id: int, user_id: int | None, thread_id: int | None = None
    ) -> ConversationRecord:
        """Deactivate the scope's conversation (its history stays) and open a fresh one."""
        async with self._writing() as session:
            await conversations.deactivate(session, chat_id, user_id, thread_id)
            # If a concurrent reset opened one first, that fresh conversation is ours too.
            await conversations.open_if_none(session, chat_id, user_id, thread_id)
            found = await conversations.find_active(session, chat_id, user_id, thread_id)
        assert found is not None
        return found

    async def conversation_messages(
        self, conversation_id: int, limit: int | None = None
    ) -> list[MessageRecord]:
        """The conversation's messages, oldest first; with a limit, the newest `limit` of them."""
        async with self._reading() as session:
            return await conversations.list_messages(session, conversation_id, limit)

    async def recent_messages(self, conversation_id: int, max_chars: int) -> list[MessageRecord]:
        """The newest messages whose contents add up to at least `max_chars`, oldest first."""
        async with self._reading() as session:
            return await conversations.recent_messages(session, conversation_id, max_chars)

    async def add_messages(self, conversation_id: int | None, messages: Sequence[NewMessage]) -> list[int]:
        async with self._writing() as session:
            return await conversations.insert_messages(session, messages, conversation_id)

    async def set_message_telegram_ids(self, message_id: int, telegram_ids: Sequence[int]) -> None:
        async with self._writing() as session:
            await conversations.set_telegram_ids(session, message_id, telegram_ids)

    # budgets

    async def reserve(
        self,
        user_id: int,
        period_key: str,
        amount_micro: int,
        limit_micro: int | None,
        purpose: str = "chat",
    ) -> Reservation | None:
        """Hold amount_micro of the period's budget; None if it does not fit under the limit
        (None = unlimited: the hold is still recorded, so spending stays visible)."""
        budgets.check_period_key(period_key)
        budgets.check_amount(amount_micro)
        async with self._writing() as session:
            return await budgets.reserve(session, user_id, period_key, amount_micro, limit_micro, purpose)

    async def settle(
        self,
        reservation: Reservation,
        actual_micro: int,
        usage: NewUsage | Sequence[NewUsage],
        messages: Sequence[NewMessage] = (),
        conversation_id: int | None = None,
    ) -> list[int]:
        """In one transaction: the actual cost replaces the hold, the calls go to the ledger, the
        messages join their conversation. Returns the new messages' ids.

        conversation_id is the default for messages and ledger rows that name none.
        Settling again is a no-op that returns [] (the first settle recorded everything).
        """
        budgets.check_amount(actual_micro)
        calls = [usage] if isinstance(usage, NewUsage) else list(usage)
        if conversation_id is not None:
            calls = [
                replace(call, conversation_id=conversation_id) if call.conversation_id is None else call
                for call in calls
            ]
        async with self._writing() as session:
            if not await budgets.settle(session, reservation.id, actual_micro):
                log.warning("reservation %s was already settled; ignored", reservation.id)
                return []
            if calls:
                await ledger.insert(session, calls)
            ids = await conversations.insert_messages(session, messages, conversation_id)
        self._charged(actual_micro)
        return ids

    async def release(self, reservation: Reservation) -> None:
        """Give the hold back (the call failed before costing anything). Repeatable."""
        async with self._writing() as session:
            await budgets.release(session, reservation.id)

    async def release_stale_reservations(self, older_than_seconds: float) -> int:
        """Release holds older than this (left by a crash). Returns how many were released."""
        async with self._reading() as session:
            stale = await budgets.stale_ids(session, timedelta(seconds=older_than_seconds))
        released = 0
        for reservation_id in stale:
            # One transaction each: holding several reservation rows while waiting for a budget
            # row could deadlock (on PostgreSQL) with a settle that locks them the other way.
            async with self._writing() as session:
                released += await budgets.release(session, reservation_id)
        return released

    async def budget_state(self, user_id: int, period_key: str) -> BudgetState:
        async with self._reading() as session:
            return await budgets.state(session, user_id, period_key)

    async def charge(
        self,
        user_id: int,
        period_key: str,
        actual_micro: int,
        usage: NewUsage | Sequence[NewUsage],
    ) -> None:
        """Charge without a prior hold (a cost already incurred), with its ledger rows."""
        budgets.check_period_key(period_key)
        budgets.check_amount(actual_micro)
        calls = [usage] if isinstance(usage, NewUsage) else list(usage)
        async with self._writing() as session:
            await budgets.ensure_row(session, user_id, period_key)
            await budgets.adjust(session, user_id, period_key, spent_delta=actual_micro)
            if calls:
                await ledger.insert(session, calls)
        self._charged(actual_micro)

    # usage, for /cost

    async def usage_totals(
        self,
        user_id: int,
        since: datetime | None = None,
        conversation_id: int | None = None,
    ) -> list[UsageTotals]:
        """Per model, sorted by model name: all-time, since a moment, and/or one conversation."""
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be timezone-aware (UTC midnight, a period's start, …)")
        async with self._reading() as session:
            return await ledger.totals(session, user_id, since, conversation_id)

    async def last_reply_usage(self, user_id: int) -> list[UsageTotals]:
        """Per model, the calls of the user's most recent settled turn (or charge)."""
        async with self._reading() as session:
            return await ledger.last_turn(session, user_id)

    # document extraction cache

    async def cached_extraction(self, file_unique_id: str) -> str | None:
        found = await self.get_extraction(file_unique_id)
        return None if found is None else found.content

    async def get_extraction(self, file_unique_id: str) -> ExtractionRecord | None:
        async with self._reading() as session:
            return await extractions.get(session, file_unique_id)

    async def save_extraction(
        self, file_unique_id: str, filename: str, content: str, tokens: int | None
    ) -> None:
        async with self._writing() as session:
            await extractions.save(session, file_unique_id, filename, content, tokens)
