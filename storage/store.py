"""Store: the one public entry to storage. Every method opens and closes its own transaction
and returns plain records, so callers never hold a session or see SQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import text as sa_text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from storage import (
    access,
    budgets,
    conversations,
    deliveries,
    extractions,
    inflight,
    ledger,
    migrate,
    replicas,
    usage_reports,
    users,
)
from storage.engine import create_engine, normalise_url, write_engine
from storage.liveness import ProcessLiveness, liveness_for
from storage.records import (
    USER_ROLES,
    AccessEntry,
    BudgetState,
    ChatSpend,
    Checkpoint,
    ConversationRecord,
    DailyCost,
    ExtractionRecord,
    HistoryMessage,
    InflightTurn,
    LedgerEntry,
    MessageRecord,
    NewInflightTurn,
    NewMessage,
    NewUsage,
    PendingDelivery,
    Reservation,
    Settlement,
    UsageTotals,
    UserRecord,
    UserSpend,
)

log = logging.getLogger(__name__)

# Holds made before holds named their process (migration 0003) are released after this long: a
# turn never holds one that long. Every newer hold is released by its owner's liveness instead.
DEFAULT_STALE_AFTER_SECONDS = 600.0


# The child process of Store.start(migrate_apart=True) finds the database URL here.
MIGRATE_URL_VARIABLE = "STORAGE_MIGRATE_URL"


async def _upgrade_in_child(url: URL) -> None:
    # The URL (with its password) goes by environment, never on a command line others can read.
    env = {**os.environ, MIGRATE_URL_VARIABLE: url.render_as_string(hide_password=False)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "storage.migrations",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, errors = await child.communicate()
    if child.returncode != 0:
        lines = errors.decode("utf-8", errors="replace").strip().splitlines() or ["no output"]
        raise MigrationFailed(lines[-1])


class MigrationFailed(RuntimeError):
    """The schema could not be brought up to date (the child's last line of error says why)."""


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
        self._liveness: ProcessLiveness | None = None

    @property
    def owner(self) -> int:
        """This process's key: the holds, in-flight turns and deliveries it makes carry it."""
        if self._liveness is None:
            raise RuntimeError("Store.start() has not been awaited")
        return self._liveness.key

    @property
    def database_url(self) -> URL:
        """The normalised URL (render it with hide_password=True before logging it)."""
        return self._url

    async def start(
        self,
        *,
        release_stale_after: float | None = DEFAULT_STALE_AFTER_SECONDS,
        migrate_apart: bool = False,
    ) -> None:
        """Migrate to the newest schema (unless the database is at it already), connect, take
        this process's owner key, and take over what dead processes left: their holds are freed,
        their in-flight turns and pending deliveries become ours (see interrupted_turns and
        pending_deliveries).

        migrate_apart: run the migrations in a child process, so that Alembic (~10 MB of the
        bot's memory, needed only at start-up) is never loaded by a long-running process."""
        if self._engine is not None:
            raise RuntimeError("Store.start() was already awaited")
        engine = create_engine(self._url, echo=self._echo)
        try:
            # A restart finds the schema up to date in one read: no child process, no Alembic.
            if not await migrate.is_at_head(engine):
                if migrate_apart:
                    await _upgrade_in_child(self._url)
                else:
                    await migrate.upgrade(self._url)
                await engine.dispose()  # no connection from before the migration is kept
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine
        self._read = async_sessionmaker(self._engine, class_=AsyncSession, expire_on_commit=False)
        self._write = async_sessionmaker(
            write_engine(self._engine), class_=AsyncSession, expire_on_commit=False
        )
        self._liveness = liveness_for(self._url, self._engine)
        await self._liveness.start()
        released = await self.adopt_dead_processes()
        if release_stale_after is not None:
            released += await self.release_stale_reservations(release_stale_after)
        if released:
            log.warning("released %d budget hold(s) of stopped or crashed processes", released)

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
        if self._liveness is not None:
            await self._liveness.close()
            self._liveness = None
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
            return await users.upsert(session, telegram_id, **changes)

    async def set_user_model(self, telegram_id: int, model: str | None) -> None:
        await self._set_user_fields(telegram_id, model=model)

    async def set_user_switches(
        self, telegram_id: int, *, web_search: bool | None = None, thinking: bool | None = None
    ) -> None:
        """Turn a user's web search or thinking on or off (None: leave it as it is)."""
        values = {"web_search": web_search, "thinking": thinking}
        await self._set_user_fields(telegram_id, **{k: v for k, v in values.items() if v is not None})

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

    async def conversation_with_history(
        self,
        chat_id: int,
        user_id: int | None,
        thread_id: int | None,
        max_chars: int,
        chars_per_message: int = 0,
    ) -> tuple[ConversationRecord, list[HistoryMessage]]:
        """The scope's active conversation (opened if none) and its recent messages (as
        recent_messages), read in one transaction: what every turn starts with."""
        async with self._reading() as session:
            found = await conversations.find_active(session, chat_id, user_id, thread_id)
            if found is not None:
                history = await conversations.recent_messages(session, found.id, max_chars, chars_per_message)
                return found, history
        return await self.active_conversation(chat_id, user_id, thread_id), []

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

    async def recent_messages(
        self, conversation_id: int, max_chars: int, chars_per_message: int = 0
    ) -> list[HistoryMessage]:
        """The newest messages whose contents, counting `chars_per_message` more for each, add up
        to at least `max_chars`, oldest first."""
        async with self._reading() as session:
            return await conversations.recent_messages(session, conversation_id, max_chars, chars_per_message)

    async def add_messages(self, conversation_id: int | None, messages: Sequence[NewMessage]) -> list[int]:
        async with self._writing() as session:
            return await conversations.insert_messages(session, messages, conversation_id)

    async def set_message_telegram_ids(self, shown: Sequence[tuple[int, Sequence[int]]]) -> None:
        """Which Telegram messages show each stored message: (message id, Telegram ids) pairs,
        written in one transaction."""
        if not shown:
            return
        async with self._writing() as session:
            await conversations.set_telegram_ids(session, shown)

    # budgets

    async def reserve(
        self,
        user_id: int,
        period_key: str,
        amount_micro: int,
        limit_micro: int | None,
        purpose: str = "chat",
        inflight_turn: NewInflightTurn | None = None,
    ) -> Reservation | None:
        """Hold amount_micro of the period's budget; None if it does not fit under the limit
        (None = unlimited: the hold is still recorded, so spending stays visible).

        inflight_turn: the turn the hold is for, recorded with it so that a crash cannot lose it
        (checkpoint() keeps its text; settle or release ends it)."""
        budgets.check_period_key(period_key)
        budgets.check_amount(amount_micro)
        async with self._writing() as session:
            reservation = await budgets.reserve(
                session, user_id, period_key, amount_micro, limit_micro, purpose, self.owner
            )
            if reservation is not None and inflight_turn is not None:
                await inflight.insert(session, reservation.id, inflight_turn)
            return reservation

    async def checkpoint_many(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Keep what in-flight turns have written so far (what a crash would otherwise lose), all
        in one transaction."""
        if not checkpoints:
            return
        async with self._writing() as session:
            await inflight.checkpoint(session, checkpoints)

    async def settle(
        self,
        reservation: Reservation,
        actual_micro: int,
        usage: NewUsage | Sequence[NewUsage],
        messages: Sequence[NewMessage] = (),
        conversation_id: int | None = None,
        continued: tuple[int, str] | None = None,
    ) -> Settlement:
        """In one transaction: the actual cost replaces the hold, the calls go to the ledger, the
        messages join their conversation. Returns the new messages' ids and the budget after.

        continued: (message id, text): a continued answer, whose text grows by this (its id is
        returned).

        conversation_id is the default for messages and ledger rows that name none.
        Settling again is a no-op that returns no ids and no budget (the first settle recorded
        everything).
        """
        budgets.check_amount(actual_micro)
        calls = [usage] if isinstance(usage, NewUsage) else list(usage)
        if conversation_id is not None:
            calls = [
                replace(call, conversation_id=conversation_id) if call.conversation_id is None else call
                for call in calls
            ]
        async with self._writing() as session:
            await inflight.remove(session, reservation.id)
            budget = await budgets.settle(session, reservation.id, actual_micro)
            if budget is None:
                log.warning("reservation %s was already settled; ignored", reservation.id)
                return Settlement([], None)
            if calls:
                await ledger.insert(session, calls)
            ids = await conversations.insert_messages(session, messages, conversation_id)
            if continued is not None:
                await conversations.append_text(session, *continued)
                ids.append(continued[0])
        self._charged(actual_micro)
        return Settlement(ids, budget)

    async def release(self, reservation: Reservation) -> None:
        """Give the hold back (the call failed before costing anything). Repeatable."""
        async with self._writing() as session:
            await inflight.remove(session, reservation.id)
            await budgets.release(session, reservation.id)

    async def adopt_dead_processes(self) -> int:
        """Free the holds of processes that are no longer running, and take over their in-flight
        turns and pending deliveries. Never touches a live process's rows. Returns how many holds
        were freed."""
        async with self._reading() as session:
            owners = await budgets.owners(session) | await deliveries.owners(session)
        assert self._liveness is not None
        released = 0
        for owner in sorted(owners - {self.owner}):
            async with self._liveness.if_dead(owner) as dead:
                if not dead:
                    continue
                async with self._writing() as session:
                    await budgets.adopt_inflight(session, owner, self.owner)
                    await deliveries.adopt(session, owner, self.owner)
                    held = await budgets.held_ids(session, owner)
                for reservation_id in held:
                    # One transaction each, as in release_stale_reservations (lock order).
                    async with self._writing() as session:
                        released += await budgets.release(session, reservation_id)
                log.info("took over from stopped process %s: %d hold(s) freed", owner, len(held))
        return released

    async def interrupted_turns(self) -> list[InflightTurn]:
        """In-flight turns taken over from dead processes, to be settled and reported."""
        async with self._reading() as session:
            return await inflight.owned_by(session, self.owner)

    async def settle_interrupted(
        self,
        turn: InflightTurn,
        actual_micro: int,
        usage: Sequence[NewUsage],
        messages: Sequence[NewMessage],
    ) -> int | None:
        """Settle a turn a crash cut (by what its checkpoint shows) and store it, in one
        transaction; the row stays (settled) until forget_interrupted, i.e. until the user is
        told. Returns the stored answer's id. Repeatable."""
        budgets.check_amount(actual_micro)
        if turn.settled:
            return turn.assistant_message_id
        async with self._writing() as session:
            ids: list[int] = []
            charged = 0
            if not usage:
                await budgets.release(session, turn.reservation.id)
            elif await budgets.settle(session, turn.reservation.id, actual_micro) is not None:
                await ledger.insert(session, usage)
                ids = await conversations.insert_messages(session, messages, turn.turn.conversation_id)
                charged = actual_micro
            assistant_id = ids[-1] if ids else None
            await inflight.mark_settled(session, turn.reservation.id, assistant_id)
        if charged:
            self._charged(charged)
        return assistant_id

    async def forget_interrupted(self, turn: InflightTurn) -> None:
        async with self._writing() as session:
            await inflight.remove(session, turn.reservation.id)

    # pending deliveries

    async def add_pending_delivery(self, chat_id: int, payload: dict[str, object]) -> int:
        async with self._writing() as session:
            return await deliveries.add(session, self.owner, chat_id, payload)

    async def update_pending_delivery(self, delivery_id: int, payload: dict[str, object]) -> None:
        async with self._writing() as session:
            await deliveries.replace_payload(session, delivery_id, payload)

    async def drop_pending_delivery(self, delivery_id: int) -> None:
        async with self._writing() as session:
            await deliveries.remove(session, delivery_id)

    async def pending_deliveries(self) -> list[PendingDelivery]:
        """This process's pending deliveries (after start-up: those taken over from dead ones)."""
        async with self._reading() as session:
            return await deliveries.owned_by(session, self.owner)

    async def release_stale_reservations(self, older_than_seconds: float) -> int:
        """Release owner-less holds (from before migration 0003) older than this."""
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

    # charts, exports and admin reports (user_id None: every user; since None: all time)

    async def usage_entries(self, user_id: int | None, since: datetime | None = None) -> list[LedgerEntry]:
        """The ledger's rows, oldest first."""
        _check_aware(since)
        async with self._reading() as session:
            return await usage_reports.entries(session, user_id, since)

    async def daily_costs(self, user_id: int | None, since: datetime) -> list[DailyCost]:
        """Cost per UTC day and model, oldest day first."""
        _check_aware(since)
        async with self._reading() as session:
            return await usage_reports.daily_costs(session, user_id, since)

    async def usage_totals_of_everyone(self, since: datetime | None = None) -> list[UsageTotals]:
        """Per model, sorted by model name, across all users."""
        _check_aware(since)
        async with self._reading() as session:
            return await usage_reports.totals(session, None, since)

    async def spend_by_user(self, since: datetime | None = None, limit: int = 10) -> list[UserSpend]:
        """The `limit` users who spent most since then, most first."""
        _check_aware(since)
        async with self._reading() as session:
            return await usage_reports.spend_by_user(session, since, limit)

    async def spend_by_group_chat(self, since: datetime | None = None) -> list[ChatSpend]:
        _check_aware(since)
        async with self._reading() as session:
            return await usage_reports.spend_by_group_chat(session, since)

    # the allow-list and budget notices

    async def set_access(self, user_id: int, allowed: bool, changed_by: int | None) -> None:
        async with self._writing() as session:
            await access.decide(session, user_id, allowed, changed_by)
            await replicas.notify_access(session, user_id)

    async def access_of(self, user_id: int) -> tuple[bool | None, bool]:
        """(the database's decision for this user or None, whether it allows anyone at all)."""
        async with self._reading() as session:
            return await access.lookup(session, user_id)

    async def access_entries(self) -> list[AccessEntry]:
        async with self._reading() as session:
            return await access.entries(session)

    async def claim_budget_warning(self, user_id: int, period_key: str) -> bool:
        """True once per user and period: the caller shows the 80 % notice."""
        async with self._writing() as session:
            return await users.claim_budget_warning(session, user_id, period_key)

    async def claim_budget_renewal(self, user_id: int, period_key: str) -> bool:
        """True once after a warned period ended: the caller shows the renewal notice."""
        async with self._writing() as session:
            return await users.claim_budget_renewal(session, user_id, period_key)

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


def _check_aware(since: datetime | None) -> None:
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware (UTC midnight, a period's start, …)")
