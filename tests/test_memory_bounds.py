"""What the bot keeps per user or per chat is dropped once it is idle, so memory does not grow with
every user ever served (issue 11: RSS after 2,000 users within 5 MB of after 200; bench.memory).
The flood guard's per-chat state has its own test (tests/test_flood_guard.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from sqlalchemy.schema import CreateIndex
from telegram import Update

from bot.turn_locks import TurnQueue
from handlers.app import build_application
from handlers.progress import HandledUpdates
from handlers.telegram_http import AiohttpRequest
from storage.engine import create_engine
from storage.tables import ACTIVE_SCOPE_INDEX
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent


async def test_the_turn_queue_forgets_a_conversation_once_its_turns_are_done():
    queue = TurnQueue()
    for conversation in range(1_000):
        async with queue.take_place(("chat", conversation)):
            pass
    assert queue._places == {}


async def test_handled_updates_keep_a_bounded_number_of_ids_and_still_know_older_ones():
    handled = HandledUpdates(keep=100)
    handled.started(1)  # a long answer: still being handled while later updates finish
    for update_id in range(2, 2_002):
        handled.started(update_id)
        handled.mark(update_id)
    assert handled.kept <= 101
    assert len(handled) == 2_000
    assert 2 in handled and 2_001 in handled  # forgotten one by one, known by the floor
    assert 1 not in handled and 2_002 not in handled
    await asyncio.wait_for(handled.wait(range(2, 2_002)), 1.0)
    waiting = asyncio.create_task(handled.wait([1, 2]))
    await asyncio.sleep(0)
    assert not waiting.done()
    handled.mark(1)
    await asyncio.wait_for(waiting, 1.0)


async def test_the_application_keeps_nothing_per_user_and_polls_without_httpx(start_bot, tg: FakeTelegram):
    bot = await start_bot()
    application = build_application(bot.services)  # built as the running bot's was, not polling
    await application.initialize()
    # PTB 22 without persistence noted every update's chat and user "for persistence" forever.
    for index in range(50):
        person = tg.user()
        data = {
            "update_id": 10_000 + index,
            "edited_message": {
                "message_id": 1,
                "date": 0,
                "edit_date": 1,
                "chat": {"id": person.id, "type": "private"},
                "from": {"id": person.id, "is_bot": False, "first_name": "U"},
                "text": "an edit is no question",
            },
        }
        await application.process_update(Update.de_json(data, application.bot))
    await application.shutdown()
    assert not application._user_ids_to_be_updated_in_persistence
    assert not application._chat_ids_to_be_updated_in_persistence
    assert not application.user_data and not application.chat_data
    # getUpdates goes through aiohttp too: PTB's default httpx client for it cost ~3 MB idle.
    assert all(isinstance(request, AiohttpRequest) for request in application.bot._request)


def test_a_bot_on_sqlite_loads_neither_pillow_nor_the_postgresql_dialect():
    """Pillow (~3 MB) is loaded with the first picture (bot/images.py), SQLAlchemy's PostgreSQL
    dialect (~2 MB) when a PostgreSQL engine is made (storage/tables.describe_for_postgresql)."""
    unused = "{'PIL', 'sqlalchemy.dialects.postgresql'}"
    check = f"import sys, composition_root; print({unused} & sys.modules.keys())"
    loaded = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "set()"


async def test_a_postgresql_engine_still_describes_the_partial_index():
    engine = create_engine("postgresql+asyncpg://bot:secret@127.0.0.1:1/none")  # never connects
    try:
        ddl = str(CreateIndex(ACTIVE_SCOPE_INDEX).compile(dialect=engine.dialect))
    finally:
        await engine.dispose()
    assert ddl.endswith("WHERE active")
