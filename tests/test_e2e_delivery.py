"""Final messages reach the chat although Telegram fails: 5xx and dropped connections are retried
with backoff, a restart resends what was pending, and a user who blocks the bot mid-answer ends
the upstream stream at once (charged for the part written, no traceback)."""

from __future__ import annotations

import logging

import pytest

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import DROPPED, FakeTelegram

ANSWER = "An answer that must arrive whatever Telegram does."


def fail_final(tg: FakeTelegram, method: str, how: str) -> None:
    if how == "5xx":
        tg.fail_next(method, "Bad Gateway", status=502, times=2)
    else:
        tg.drop_next(method, times=2)


def failed_calls(tg: FakeTelegram, method: str) -> list:
    return [c for c in tg.calls(method) if c.status in (502, DROPPED)]


@pytest.mark.parametrize("how", ["5xx", "network"])
async def test_final_private_message_is_retried_until_delivered(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, how: str
):
    bot = await start_bot()
    user = tg.user()
    fail_final(tg, "sendMessage", how)  # drafts stream; the final message is the only sendMessage
    fake_kimi.script(Reply(content=ANSWER))
    await tg.send_text(user, "hello")
    reply = await tg.wait_for_message(user.id, timeout=30)
    assert reply.text == ANSWER
    assert len(failed_calls(tg, "sendMessage")) == 2 and tg.bot_texts(user.id) == [ANSWER]
    await bot.caught_up()
    await tg.wait_until(lambda: not bot.services.deliveries.retrying, timeout=10)
    assert await bot.services.store.pending_deliveries() == []  # delivered, so no longer kept


@pytest.mark.parametrize("how", ["5xx", "network"])
async def test_final_group_edit_is_retried_until_delivered(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, how: str
):
    await start_bot()
    user = tg.user()
    group = tg.group()
    # Shown at once as a message with the stop button, done before the next edit (3 s): the only
    # edit is the final one, which removes the button.
    fake_kimi.script(Reply(content=ANSWER, chunk_tokens=2, delay=0.05))
    fail_final(tg, "editMessageText", how)
    await tg.send_text(user, f"@{tg.bot.username} hello", chat=group)
    final = await tg.wait_for_message(group.id, lambda m: m.text == ANSWER and not m.reply_markup, timeout=30)
    assert len(failed_calls(tg, "editMessageText")) == 2
    assert [m.message_id for m in tg.messages(group.id) if m.from_bot] == [final.message_id]


async def test_a_restart_resends_what_was_pending(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    first = await start_bot()
    user = tg.user()
    tg.fail_next("sendMessage", "Internal Server Error", status=500, times=1000)
    fake_kimi.script(Reply(content=ANSWER))
    await tg.send_text(user, "hello")
    await tg.wait_for(lambda c: c.method == "sendMessage" and c.status == 500, timeout=30)
    await first.caught_up()
    await first.__aexit__(None, None, None)  # stopped while the answer waits for Telegram
    tg.stop_failing()

    await start_bot()
    reply = await tg.wait_for_message(user.id, timeout=30)
    assert reply.text == ANSWER and tg.bot_texts(user.id) == [ANSWER]


async def test_blocking_the_bot_mid_answer_ends_the_stream_and_charges_the_part(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    bot = await start_bot()
    user = tg.user()
    long = "Words keep coming, one after another. " * 300
    fake_kimi.script(Reply(content=long, chunk_tokens=2, delay=0.05))
    await tg.send_text(user, "talk")
    await tg.wait_until(lambda: (d := tg.current_draft(user.id)) is not None and len(d.text) > 40, timeout=30)
    tg.block_bot(user)
    await bot.caught_up(timeout=30)
    request = fake_kimi.chat_requests[-1]
    assert not request.completed  # the bot hung up on Kimi instead of reading the answer to the end
    spent, reserved = await bot.budget(user.id)
    assert reserved == 0 and spent > 0
    totals = await bot.services.store.usage_totals(user.id)
    assert totals and totals[0].completion_tokens < len(long.split())  # the part, not the whole
    assert not any(record.exc_info for record in caplog.records), "an expected 403 logged a traceback"
    assert any("blocked" in record.getMessage() for record in caplog.records)


async def test_removing_the_bot_from_a_group_mid_answer_ends_the_stream(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)
    bot = await start_bot()
    user = tg.user()
    group = tg.group()
    fake_kimi.script(
        Reply(content="Words keep coming, one after another. " * 300, chunk_tokens=2, delay=0.05)
    )
    await tg.send_text(user, f"@{tg.bot.username} talk", chat=group)
    await tg.wait_for_message(group.id, lambda m: len(m.text or "") > 20, timeout=30)
    await tg.bot_removed_from_group(group, user)
    await bot.caught_up(timeout=30)
    assert not fake_kimi.chat_requests[-1].completed
    spent, reserved = await bot.budget(user.id)
    assert reserved == 0 and spent > 0
    assert not any(record.exc_info for record in caplog.records), "an expected 403 logged a traceback"
