"""Restarts and crashes with answers in flight, on the real `python -m bot` process: SIGTERM ends
running answers cleanly within Docker's stop timeout; SIGKILL leaves nothing reserved or lost."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from sqlalchemy import text

from storage import MessageRecord, Store
from storage.engine import create_engine
from tests.bot_process import BotProcess
from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram, User
from tests.harness import RunningBot
from tests.waiting import WAIT_CEILING

pytestmark = pytest.mark.slow  # subprocess bots: 10-20 s a test (tests/conftest.py runs them first)

LONG_ANSWER = "Counting sheep, one more each line. " * 400  # ~75 s at this pace: never finishes here


def long_reply() -> Reply:
    return Reply(content=LONG_ANSWER, chunk_tokens=2, delay=0.05)


async def wait_until_streaming(tg: FakeTelegram, user: User) -> str:
    """Wait until the user sees part of the answer (a draft), and return what they see."""
    draft = await tg.wait_until(
        lambda: (d := tg.current_draft(user.id)) is not None and len(d.text) > 60 and d, timeout=WAIT_CEILING
    )
    return draft.text


async def books(database_url: str, user_id: int) -> tuple[int, int, int, list[str]]:
    """(spent, reserved, ledger total, stored assistant texts) for the user, read after the bot exits."""
    store = Store(database_url)
    await store.start()
    try:
        state = await store.budget_state(user_id, "total")
        ledger = sum(t.cost_micro for t in await store.usage_totals(user_id))
        conversation = await store.active_conversation(user_id, user_id)
        messages = await store.conversation_messages(conversation.id)
    finally:
        await store.close()
    answers = [m.content for m in messages if m.role == "assistant"]
    return state.spent_micro, state.reserved_micro, ledger, answers


async def test_sigterm_mid_answer_keeps_the_partial_text_and_exits_0_in_time(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi
):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    user = tg.user(language_code="en")
    async with BotProcess(tmp_path, tg, fake_kimi, DATABASE_URL=database_url, BUDGET_PERIOD="total") as bot:
        fake_kimi.script(long_reply())
        await tg.send_text(user, "count sheep")
        seen = await wait_until_streaming(tg, user)
        bot.signal(signal.SIGTERM)
        # Docker's default stop timeout is 10 s; the bot must be out well before the SIGKILL.
        assert await bot.wait(8) == 0, bot.log
    final = tg.messages(user.id)[-1]
    assert final.text.startswith(seen.rstrip()[:60])
    assert "restarted" in final.text and len(final.text) < len(LONG_ANSWER)
    buttons = final.callback_data
    assert buttons and all(data.startswith("cont:") for data in buttons)  # Continue, no stop button
    assert "Traceback" not in bot.log
    spent, reserved, ledger, answers = await books(database_url, user.id)
    assert reserved == 0
    assert 0 < spent == ledger
    assert answers and final.text.startswith(answers[-1].strip()[:60])  # the turn is stored
    assert len(answers[-1]) < len(LONG_ANSWER)  # charged for the part produced, not the whole


async def checkpointed_text(database_url: str) -> str:
    """What the database holds of the answer in flight (the bot saves it every couple of seconds)."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT content FROM inflight_turns"))).all()
    finally:
        await engine.dispose()
    return rows[0][0] if rows else ""


async def wait_for_checkpoint(database_url: str, longer_than: int) -> str:
    deadline = asyncio.get_running_loop().time() + WAIT_CEILING
    while asyncio.get_running_loop().time() < deadline:
        if len(saved := await checkpointed_text(database_url)) > longer_than:
            return saved
        await asyncio.sleep(0.2)  # polling the database for the bot's next checkpoint
    raise AssertionError("the answer in flight was never checkpointed")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    return request.getfixturevalue("pg_url")


async def test_sigkill_mid_answer_then_restart_frees_the_budget_and_reports_the_cut_answer(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi, database_url: str
):
    # The budget pays for one answer: while the killed answer's hold stood, the next would be refused.
    env = {
        "DATABASE_URL": database_url,
        "BUDGET_PERIOD": "total",
        "DEFAULT_BUDGET": "6",
        "MAX_OUTPUT_TOKENS": "1000",
    }
    user = tg.user(language_code="en")
    async with BotProcess(tmp_path, tg, fake_kimi, **env) as crashed:
        fake_kimi.script(long_reply())
        await tg.send_text(user, "count sheep")
        await wait_until_streaming(tg, user)
        saved = await wait_for_checkpoint(database_url, longer_than=40)
        crashed.signal(signal.SIGKILL)
        await crashed.wait(WAIT_CEILING)

    async with BotProcess(tmp_path, tg, fake_kimi, **env) as restarted:
        told = await tg.wait_for_message(
            user.id, lambda m: "stopped unexpectedly" in (m.text or ""), timeout=30
        )
        assert told.text.startswith(saved.strip()[:40])
        assert any(data.startswith("cont:") for data in told.callback_data)  # it can be continued
        fake_kimi.script(Reply(content="A fresh answer."))
        await tg.send_text(user, "one more")
        reply = await tg.wait_for_message(user.id, timeout=30)
        assert reply.text == "A fresh answer."
        restarted.signal(signal.SIGTERM)
        assert await restarted.wait(8) == 0
    assert "Traceback" not in restarted.log
    spent, reserved, ledger, answers = await books(database_url, user.id)
    assert reserved == 0
    assert 0 < spent == ledger <= 6_000_000
    assert answers[0].startswith(saved.strip()[:40]) and answers[-1] == "A fresh answer."


async def test_continue_after_a_restart_finishes_the_cut_answer_with_partial_mode(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    first = await start_bot(shutdown_grace_seconds=0, budget_period="total")
    user = tg.user(language_code="en")
    fake_kimi.script(long_reply())
    await tg.send_text(user, "count sheep")
    await wait_until_streaming(tg, user)
    await first.__aexit__(None, None, None)  # a restart, mid-answer
    cut = await tg.wait_for_message(user.id, lambda m: "restarted" in (m.text or ""))
    button = next(data for data in cut.callback_data if data.startswith("cont:"))
    stored = [m for m in await conversation(first, user.id) if m.role == "assistant"]
    assert len(stored) == 1

    second = await start_bot(shutdown_grace_seconds=0, budget_period="total")
    fake_kimi.script(Reply(content=" And that was the last sheep."))
    await tg.press_button(user, cut, button)
    final = await tg.wait_for_message(
        user.id, lambda m: (m.text or "").endswith("the last sheep.") and not m.reply_markup, timeout=30
    )
    sent = fake_kimi.chat_requests[-1].json["messages"]
    assert sent[-1] == {"role": "assistant", "content": stored[0].content, "partial": True}
    assert sent[-2] == {"role": "user", "content": "count sheep"}
    assert final.text.startswith(stored[0].content.strip()[:60])
    answers = [m for m in await conversation(second, user.id) if m.role == "assistant"]
    assert [a.content for a in answers] == [stored[0].content + " And that was the last sheep."]
    assert "cont:" not in "".join(tg.message(user.id, cut.message_id).callback_data)  # pressed once
    await second.caught_up()
    spent, reserved = await second.budget(user.id)
    ledger = sum(t.cost_micro for t in await second.services.store.usage_totals(user.id))
    assert reserved == 0 and spent == ledger > 0
    assert sum(t.calls for t in await second.services.store.usage_totals(user.id)) == 2


async def conversation(bot: RunningBot, user_id: int) -> list[MessageRecord]:
    """The user's stored conversation (read with a store of its own: the bot may be stopped)."""
    store = Store(bot.settings.database_url)
    await store.start()
    try:
        found = await store.active_conversation(user_id, user_id)
        return await store.conversation_messages(found.id)
    finally:
        await store.close()


async def test_sigkill_while_a_document_is_read_in_parts_then_restart_tells_the_user(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi
):
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    env = {
        "DATABASE_URL": database_url,
        "BUDGET_PERIOD": "total",
        "DEFAULT_MODEL": "moonshot-v1-8k",  # 8K of context: the document is read in parts
        "DOCUMENT_CONFIRM_THRESHOLD": "1000",  # no confirmation asked
    }
    text_of_document = "".join(f"Line {n}: otters of river {n} eat fish and sleep.\n" for n in range(3_000))
    user = tg.user(language_code="en")
    async with BotProcess(tmp_path, tg, fake_kimi, **env) as crashed:
        # The first part is summarised; the second call hangs until the process is killed.
        fake_kimi.script(Reply(content="Part one: otters."), Reply(content="never", header_delay=300))
        await tg.send_document(user, text_of_document.encode(), "otters.txt", caption="What do otters eat?")
        await tg.wait_until(lambda: len(fake_kimi.chat_requests) == 2, timeout=WAIT_CEILING)
        crashed.signal(signal.SIGKILL)
        await crashed.wait(WAIT_CEILING)

    async with BotProcess(tmp_path, tg, fake_kimi, **env) as restarted:
        told = await tg.wait_for_message(
            user.id,
            lambda m: "stopped unexpectedly while reading your document" in (m.text or ""),
            timeout=30,
        )
        assert "What do otters eat?" in told.text
        restarted.signal(signal.SIGTERM)
        assert await restarted.wait(8) == 0
    assert "Traceback" not in restarted.log
    spent, reserved, ledger, _ = await books(database_url, user.id)
    assert reserved == 0
    assert 0 < spent == ledger
    assert await calls_charged(database_url, user.id) == 1  # the first part; the cut call cost nothing


async def calls_charged(database_url: str, user_id: int) -> int:
    store = Store(database_url)
    await store.start()
    try:
        return sum(t.calls for t in await store.usage_totals(user_id))
    finally:
        await store.close()
