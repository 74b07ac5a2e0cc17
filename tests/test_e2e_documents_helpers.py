"""Shared by the document and group end-to-end tests: real small files, looks into the bot's
database and into what it asked Kimi, and the check that no remote file outlives a test.
(No tests here; a test module imports `every_uploaded_file_is_deleted` to apply it.)"""

from __future__ import annotations

import asyncio
import io
import itertools
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fpdf import FPDF
from sqlalchemy.engine import URL

from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram, StoredMessage
from tests.harness import RunningBot


@pytest.fixture(autouse=True)
async def every_uploaded_file_is_deleted(fake_kimi: FakeKimi):
    """After each test, with the bot stopped: Kimi holds none of the files the bot uploaded."""
    yield
    assert fake_kimi.live_files == 0, f"files left on Kimi: {list(fake_kimi.files.values())}"


def make_pdf(*lines: str) -> bytes:
    """A real PDF (fpdf2, standard font) showing `lines`."""
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.cell(0, 10, line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def make_docx(*paragraphs: str) -> bytes:
    """A real Word document (python-docx) with `paragraphs`."""
    import docx

    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def ledger(bot: RunningBot, user_id: int | None = None) -> list[dict[str, Any]]:
    """The usage ledger rows (one per Kimi call charged), oldest first."""
    rows = _query(bot, "SELECT * FROM usage_ledger ORDER BY id")
    return [row for row in rows if user_id is None or row["user_id"] == user_id]


def spent_micro(bot: RunningBot, user_id: int) -> int:
    rows = _query(bot, "SELECT spent_micro, reserved_micro FROM budgets WHERE user_id = ?", (user_id,))
    assert all(row["reserved_micro"] == 0 for row in rows), "a reservation was left held"
    return sum(row["spent_micro"] for row in rows)


def nothing_charged(bot: RunningBot, user_id: int | None = None) -> bool:
    """No ledger row, nothing spent, and no hold left on any budget (of the user, or of anyone)."""
    rows = _query(bot, "SELECT user_id, spent_micro, reserved_micro FROM budgets")
    budgets = [row for row in rows if user_id is None or row["user_id"] == user_id]
    assert all(row["reserved_micro"] == 0 for row in budgets), f"a reservation was left held: {budgets}"
    assert all(row["spent_micro"] == 0 for row in budgets), f"something was spent: {budgets}"
    assert ledger(bot, user_id) == []
    return True


def stored_messages(bot: RunningBot) -> list[dict[str, Any]]:
    return _query(
        bot,
        "SELECT m.role, m.kind, m.content, c.chat_id, c.user_id, c.thread_id FROM messages m "
        "JOIN conversations c ON c.id = m.conversation_id ORDER BY m.id",
    )


def _query(bot: RunningBot, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Run ``sql`` (with ``?`` placeholders) on the bot's database, SQLite or PostgreSQL."""
    url = bot.services.store.database_url
    if url.get_backend_name() == "postgresql":
        return _pg_query(url, sql, args)
    path = url.database
    assert path
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(sql, args)]


def file_requests(kimi: FakeKimi) -> dict[str, int]:
    """How many uploads, content reads and deletes the bot made on Kimi's files API."""
    counts = {"upload": 0, "content": 0, "delete": 0}
    for request in kimi.requests:
        if request.method == "POST" and request.path == "/v1/files":
            counts["upload"] += 1
        elif request.method == "GET" and request.path.endswith("/content"):
            counts["content"] += 1
        elif request.method == "DELETE" and request.path.startswith("/v1/files/"):
            counts["delete"] += 1
    return counts


def uploads(kimi: FakeKimi) -> list[dict[str, str]]:
    """The form fields (purpose) of each upload."""
    return [r.form for r in kimi.requests if r.method == "POST" and r.path == "/v1/files"]


def chat_messages(kimi: FakeKimi, index: int = -1) -> list[dict[str, Any]]:
    return kimi.chat_requests[index].json["messages"]


def final_text(message: StoredMessage) -> str:
    return message.visible_text


def finished(tg: FakeTelegram, chat_id: int, marker: str):
    """A predicate for wait_for_message: the bot message containing `marker`, stop button gone."""

    def check(message: StoredMessage) -> bool:
        return marker in message.visible_text and not message.callback_data

    return check


def _pg_query(url: URL, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The same on PostgreSQL, kept synchronous for the callers: asyncpg on a loop of its own, in a
    thread (the test's loop is busy running the test)."""
    import asyncpg

    numbers = itertools.count(1)
    sql = re.sub(r"\?", lambda _: f"${next(numbers)}", sql)

    async def fetch() -> list[dict[str, Any]]:
        connection = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password, database=url.database
        )
        try:
            return [dict(row) for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, fetch()).result()
