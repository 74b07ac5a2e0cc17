"""Answers at the edges: a budget remainder too small for a useful answer is refused instead of
starting a fragment, and an answer Kimi's content filter ended says so instead of passing as whole."""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import ledger, spent_micro


async def test_a_remainder_below_min_output_tokens_is_refused_not_started(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # 1 元点 buys 175 output tokens at 175 per 元点, fewer after the question's reserved input
    # bound: once it started an answer capped at ~70 tokens, a few words long.
    bot = await start_bot(default_budget="1")
    amy = tg.user(first_name="Amy")
    fake_kimi.script(Reply(content="A fragment " * 50))
    await tg.send_text(amy, "Tell me about otters")
    reply = await tg.wait_for_message(amy.id)
    assert reply.text.startswith("Your budget for this period is used up: 1.00 of 1.00 元点 left")
    assert fake_kimi.chat_requests == []
    assert ledger(bot) == [] and spent_micro(bot, amy.id) == 0
    li = tg.user(first_name="Li", language_code="zh-hans")
    await tg.send_text(li, "水獭")
    reply = await tg.wait_for_message(li.id)
    assert reply.text.startswith("本期预算已用完：剩余 1.00 / 1.00 元点")
    assert fake_kimi.chat_requests == []


async def test_min_output_tokens_is_a_setting(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(default_budget="1", min_output_tokens=32)
    amy = tg.user(first_name="Amy")
    fake_kimi.script(Reply(content="Short but whole."))
    await tg.send_text(amy, "Tell me about otters")
    await tg.wait_for_message(amy.id, lambda m: m.text.startswith("Short but whole."), timeout=15)
    max_tokens = fake_kimi.chat_requests[0].json["max_tokens"]
    assert 32 <= max_tokens < 256  # started, capped to what 1 元点 affords
    await bot.caught_up()


async def test_an_answer_ended_by_the_content_filter_says_so(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    amy = tg.user(first_name="Amy")
    li = tg.user(first_name="Li", language_code="zh")
    fake_kimi.script(
        Reply(content="The first part of the answer", finish_reason="content_filter"),
        Reply(content="回答的前半部分", finish_reason="content_filter"),
    )
    await tg.send_text(amy, "hello")
    reply = await tg.wait_for_message(amy.id, lambda m: "content filter" in m.text, timeout=15)
    assert reply.text.startswith("The first part of the answer")
    await tg.send_text(li, "你好")
    reply = await tg.wait_for_message(li.id, lambda m: "内容安全" in m.text, timeout=15)
    assert reply.text.startswith("回答的前半部分")
    await bot.caught_up()
    assert len(ledger(bot)) == 2  # what was produced is charged, like any other cut answer
