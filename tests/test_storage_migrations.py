"""Migrations: an empty database reaches head; an existing one is upgraded with its data kept."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from storage import NewMessage, Store, migrate
from storage import store as store_module
from storage import tables as _tables  # noqa: F401  (the metadata to compare)
from storage.engine import create_engine, normalise_url
from storage.migrate import HEAD_REVISION, current_revision, head_revision, upgrade
from storage.store import MIGRATE_URL_VARIABLE

pytest_plugins = ["tests.db_fixtures"]

TABLES = {
    "users",
    "conversations",
    "messages",
    "usage_ledger",
    "budgets",
    "reservations",
    "document_extractions",
    "access_list",
    "processed_updates",
    "active_answers",
    "pending_summaries",
    "flood_slots",
}
BACKENDS = ["sqlite", "postgresql"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(params=BACKENDS)
def empty_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


async def table_names(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_start_migrates_an_empty_database_to_head(empty_url: str) -> None:
    assert await current_revision(empty_url) is None
    store = Store(empty_url)
    await store.start()
    await store.close()

    assert await current_revision(empty_url) == head_revision()
    assert TABLES <= await table_names(empty_url)

    again = Store(empty_url)  # a restart finds nothing to do
    await again.start()
    await again.close()
    assert await current_revision(empty_url) == head_revision()


def test_the_head_revision_constant_is_alembics_head() -> None:
    # Store.start skips Alembic when the database is at HEAD_REVISION: a new migration must bump it.
    assert HEAD_REVISION == head_revision()


async def test_a_start_at_head_runs_no_migration(empty_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    await upgrade(empty_url)

    async def refuse(*_: object) -> None:
        raise AssertionError("a database at head was migrated again")

    monkeypatch.setattr(migrate, "upgrade", refuse)
    monkeypatch.setattr(store_module, "_upgrade_in_child", refuse)
    for apart in (False, True):
        store = Store(empty_url)
        await store.start(migrate_apart=apart)
        await store.close()


async def test_the_child_process_upgrades_an_older_database(empty_url: str) -> None:
    await upgrade(empty_url, "0005")
    store = Store(empty_url)
    await store.start(migrate_apart=True)  # as the bot starts
    try:
        assert await current_revision(empty_url) == head_revision()
        user = await store.get_or_create_user(42)  # a 0006 table in use
        assert user.telegram_id == 42
    finally:
        await store.close()


def test_the_migration_child_says_nothing_when_all_is_well(sqlite_url: str) -> None:
    # It once warned (RuntimeWarning) on every start: stderr is what a failed start reports.
    env = {**os.environ, MIGRATE_URL_VARIABLE: sqlite_url}
    done = subprocess.run(
        [sys.executable, "-m", "storage.migrations"], env=env, cwd=REPO, capture_output=True, check=False
    )
    assert (done.returncode, done.stderr.decode()) == (0, "")
    assert asyncio.run(current_revision(sqlite_url)) == head_revision()


# SQLite cannot reflect the expression index on conversations, so it is compared on PostgreSQL
# only; the conversation tests show it at work on both.
@pytest.mark.filterwarnings("ignore:.*expression-based index")
async def test_tables_match_what_the_migrations_build(empty_url: str) -> None:
    # tables.py and migrations/ describe the schema twice; they must not drift apart.
    await upgrade(empty_url)
    engine = create_engine(empty_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}),
                    SQLModel.metadata,
                )
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_upgrade_from_0001_keeps_the_data(empty_url: str) -> None:
    await upgrade(empty_url, "0001")
    assert await current_revision(empty_url) == "0001"
    assert "document_extractions" not in await table_names(empty_url)
    await _fill_at_0001(empty_url)

    store = Store(empty_url)
    await store.start()  # upgrades to head
    try:
        assert await current_revision(empty_url) == head_revision()
        user = await store.get_user(42)
        assert user is not None
        assert (user.language, user.model, user.role) == ("zh", "kimi-k2-thinking", "admin")
        assert user.budget_override_micro == 5_000_000
        assert user.created_at == datetime(2026, 11, 1, 8, 0, tzinfo=UTC)

        conversation = await store.active_conversation(42, 42)
        assert conversation.id == 1
        messages = await store.conversation_messages(conversation.id)
        assert [(m.role, m.content, m.telegram_message_ids) for m in messages] == [
            ("user", "你好", ()),
            ("assistant", "Hello!", (7, 8)),
        ]

        state = await store.budget_state(42, "2026-11")
        assert (state.spent_micro, state.reserved_micro) == (6_000_000, 0)
        totals = await store.usage_totals(42)
        assert [(t.model, t.calls, t.cost_micro) for t in totals] == [("kimi-k2-thinking", 1, 6_000_000)]

        # …and what 0002 added works on the upgraded database.
        await store.save_extraction("AgAD", "a.pdf", "text", 1)
        assert await store.cached_extraction("AgAD") == "text"
    finally:
        await store.close()


async def _fill_at_0001(url: str) -> None:
    """Rows as the 0001 schema knows them, written without today's table classes."""
    at = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    when = sa.DateTime(timezone=True)
    users = sa.table(
        "users",
        sa.column("telegram_id"),
        sa.column("language"),
        sa.column("model"),
        sa.column("role"),
        sa.column("budget_override_micro"),
        sa.column("created_at", when),
    )
    conversations = sa.table(
        "conversations",
        sa.column("id"),
        sa.column("chat_id"),
        sa.column("user_id"),
        sa.column("active", sa.Boolean),
        sa.column("created_at", when),
    )
    messages = sa.table(
        "messages",
        sa.column("conversation_id"),
        sa.column("role"),
        sa.column("content"),
        sa.column("telegram_message_ids", sa.JSON),
        sa.column("created_at", when),
    )
    ledger = sa.table(
        "usage_ledger",
        *(sa.column(name) for name in ("turn_id", "user_id", "chat_id", "conversation_id")),
        *(sa.column(name) for name in ("model", "purpose", "prompt_tokens", "cached_tokens")),
        *(sa.column(name) for name in ("completion_tokens", "cost_micro")),
        sa.column("created_at", when),
    )
    budgets = sa.table("budgets", sa.column("user_id"), sa.column("period_key"), sa.column("spent_micro"))
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                users.insert().values(
                    telegram_id=42,
                    language="zh",
                    model="kimi-k2-thinking",
                    role="admin",
                    budget_override_micro=5_000_000,
                    created_at=at,
                )
            )
            await connection.execute(
                conversations.insert().values(id=1, chat_id=42, user_id=42, active=True, created_at=at)
            )
            for role, content, shown in (("user", "你好", []), ("assistant", "Hello!", [7, 8])):
                await connection.execute(
                    messages.insert().values(
                        conversation_id=1,
                        role=role,
                        content=content,
                        telegram_message_ids=shown,
                        created_at=at,
                    )
                )
            await connection.execute(
                ledger.insert().values(
                    turn_id="t1",
                    user_id=42,
                    chat_id=42,
                    conversation_id=1,
                    model="kimi-k2-thinking",
                    purpose="chat",
                    prompt_tokens=200,
                    cached_tokens=0,
                    completion_tokens=1000,
                    cost_micro=6_000_000,
                    created_at=at,
                )
            )
            await connection.execute(
                budgets.insert().values(user_id=42, period_key="2026-11", spent_micro=6_000_000)
            )
        if url.startswith("postgresql"):
            async with engine.begin() as connection:
                # Rows inserted with explicit ids leave the sequence behind; a real 0001 database
                # never does that, so put it where a real one would be.
                await connection.execute(
                    sa.text("SELECT setval('conversations_id_seq', (SELECT max(id) FROM conversations))")
                )
    finally:
        await engine.dispose()


async def test_sqlite_settings_are_in_force(store: Store, sqlite_url: str) -> None:
    path = Path(normalise_url(sqlite_url).database or "")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    # foreign keys are on for the store: a message for no conversation is refused
    with pytest.raises(sa.exc.IntegrityError):
        await store.add_messages(999, [NewMessage(role="user", content="orphan")])


async def test_migrations_run_with_foreign_keys_off(sqlite_url: str) -> None:
    # Otherwise a batch migration's DROP TABLE would cascade-delete the child tables' rows.
    engine = create_engine(sqlite_url, for_migrations=True)
    try:
        async with engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 0
    finally:
        await engine.dispose()


async def test_the_database_folder_is_created(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = Store("sqlite:///data/nested/bot.db")  # bare sqlite:// gets the async driver
    await store.start()
    await store.close()
    assert (tmp_path / "data" / "nested" / "bot.db").is_file()


def test_urls_are_normalised_and_memory_is_refused() -> None:
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+asyncpg"
    assert normalise_url("sqlite:///x.db").drivername == "sqlite+aiosqlite"
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"):
        with pytest.raises(ValueError, match="in-memory"):
            Store(url)


def test_storage_knows_nothing_of_the_bot() -> None:
    # The direction of imports is handlers -> bot -> storage; storage must stand alone.
    check = (
        "import sys, storage\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('bot', 'handlers', 'telegram'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
