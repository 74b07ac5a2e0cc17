"""/think and /search end to end: the switches are kept per user, the requests carry them the way
Moonshot wants (the fake Kimi refuses anything else), web searches are charged and listed in /cost,
and a budget too small for a search gets an answer without one."""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import finished, ledger


async def _command(tg: FakeTelegram, user, command: str, marker: str = ""):  # noqa: ANN001
    await tg.send_text(user, command)
    return await tg.wait_for_message(user.id, lambda m: marker in m.text, timeout=10)


async def _last_reasoning(bot, user_id: int) -> str | None:  # noqa: ANN001
    store = bot.services.store
    conversation = await store.active_conversation(user_id, user_id)
    return (await store.conversation_messages(conversation.id))[-1].reasoning


async def test_thinking_off_and_on_on_kimi_k2_6(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(default_model="kimi-k2.6")
    amy = tg.user(first_name="Amy")
    reply = await _command(tg, amy, "/think off", "off")
    assert "Thinking is now off" in reply.text
    assert (await bot.services.store.get_user(amy.id)).thinking is False

    fake_kimi.script(Reply(content="Four.", reasoning="2+2 is 4"))
    await tg.send_text(amy, "2+2?")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "Four."), timeout=15)
    body = fake_kimi.chat_requests[-1].json
    assert body["thinking"] == {"type": "disabled"}
    assert "temperature" not in body  # k2.6 fixes it per mode; any other value is a 400
    assert await _last_reasoning(bot, amy.id) is None  # Kimi did not think

    await _command(tg, amy, "/think on", "on")
    fake_kimi.script(Reply(content="Five.", reasoning="counting carefully"))
    await tg.send_text(amy, "2+3?")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "Five."), timeout=15)
    assert fake_kimi.chat_requests[-1].json["thinking"] == {"type": "enabled"}
    assert await _last_reasoning(bot, amy.id) == "counting carefully"


async def test_think_in_chinese_and_where_it_does_not_apply(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()  # kimi-k2-0905-preview: no thinking switch
    li = tg.user(first_name="Li", language_code="zh-hans")
    reply = await _command(tg, li, "/think off", "思考")
    assert "不能切换思考模式" in reply.text and "kimi-k2-0905-preview" in reply.text
    assert (await bot.services.store.get_user(li.id)).thinking is True
    fake_kimi.script(Reply(content="好的"))
    await tg.send_text(li, "你好")
    await tg.wait_for_message(li.id, finished(tg, li.id, "好的"), timeout=15)
    assert "thinking" not in fake_kimi.chat_requests[-1].json  # the model would refuse the field

    await _command(tg, li, "/model kimi-k2.5", "kimi-k2.5")
    reply = await _command(tg, li, "/think 也许", "/think on")
    assert "你的思考模式：开启" in reply.text
    reply = await _command(tg, li, "/think off", "已关闭")
    fake_kimi.script(Reply(content="直接回答", reasoning="想一想"))
    await tg.send_text(li, "问题")
    await tg.wait_for_message(li.id, finished(tg, li.id, "直接回答"), timeout=15)
    assert fake_kimi.chat_requests[-1].json["thinking"] == {"type": "disabled"}


async def test_search_round_trip_is_shown_and_charged(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()
    amy = tg.user(first_name="Amy")
    reply = await _command(tg, amy, "/search on", "Web search")
    assert "Web search is now on" in reply.text and "10.71" in reply.text

    fake_kimi.script(
        Reply(web_search="weather in Beijing today", search_tokens=700),
        # The search takes a while: the fake holds the answer until the bot has shown it searches.
        Reply(content="Sunny, 21 °C in Beijing.", header_delay=3),
    )
    await tg.send_text(amy, "What's the weather in Beijing?")
    await tg.wait_until(lambda: any("🔎" in d.text for d in tg.drafts(amy.id)), timeout=5)
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "Sunny"), timeout=15)
    first, second = (r.json for r in fake_kimi.chat_requests[-2:])
    assert {"type": "builtin_function", "function": {"name": "$web_search"}} in first["tools"]
    call = second["messages"][-2]["tool_calls"][0]
    tool = second["messages"][-1]
    assert tool["role"] == "tool" and tool["tool_call_id"] == call["id"]
    assert tool["content"] == call["function"]["arguments"]  # echoed back unchanged

    rows = ledger(bot, amy.id)
    search_rows = [row for row in rows if row["purpose"] == "search"]
    assert [(r["web_search_calls"], r["cost_micro"]) for r in search_rows] == [(1, 10_714_286)]
    # The results are billed as input of the second call, as Kimi counted them.
    chat_rows = [row for row in rows if row["purpose"] == "chat"]
    assert chat_rows[-1]["prompt_tokens"] >= 700

    cost = await _command(tg, amy, "/cost", "Last reply")
    assert "🔎 web searches: 1 – 10.71 元点" in cost.text

    await _command(tg, amy, "/search off", "off")
    fake_kimi.script(Reply(content="No search."))
    await tg.send_text(amy, "And tomorrow?")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "No search."), timeout=15)
    assert "tools" not in fake_kimi.chat_requests[-1].json


async def test_search_button_and_chinese_cost(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(default_model="kimi-k2.6")
    li = tg.user(first_name="Li", language_code="zh")
    listing = await _command(tg, li, "/model", "kimi-k2.6")
    await tg.press_button(li, listing, "search:toggle")
    await tg.wait_until(lambda: "联网搜索已开启" in tg.visible_text(li.id), timeout=10)
    assert (await bot.services.store.get_user(li.id)).web_search is True

    fake_kimi.script(Reply(web_search="北京天气", search_tokens=300), Reply(content="北京今天晴。"))
    await tg.send_text(li, "北京天气怎么样？")
    await tg.wait_for_message(li.id, finished(tg, li.id, "北京今天晴"), timeout=15)
    # Thinking is on for Li, but Moonshot refuses $web_search with thinking on k2.5/k2.6.
    assert all(r.json["thinking"] == {"type": "disabled"} for r in fake_kimi.chat_requests[-2:])
    cost = await _command(tg, li, "/cost", "上一条")
    assert "🔎 联网搜索：1 次 – 10.71 元点" in cost.text


async def test_a_budget_too_small_for_a_search_answers_without_one(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot(default_budget="60")
    amy = tg.user(first_name="Amy")
    await _command(tg, amy, "/search on", "on")
    fake_kimi.script(Reply(content="From what I know: it depends."))
    await tg.send_text(amy, "Latest news?")
    reply = await tg.wait_for_message(amy.id, finished(tg, amy.id, "From what I know"), timeout=15)
    assert "can't cover a web search" in reply.visible_text
    assert "tools" not in fake_kimi.chat_requests[-1].json
    assert not [row for row in ledger(bot, amy.id) if row["purpose"] == "search"]


async def test_searches_beyond_a_turns_allowance_are_not_run_and_the_hold_covered_them(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    amy = tg.user(first_name="Amy")
    await _command(tg, amy, "/search on", "on")
    # Two searches are allowed; the model asks for a third: it is billed (Moonshot charges the
    # tool-call response) but not run, and the answer says why it stopped.
    fake_kimi.script(
        Reply(web_search="first", search_tokens=200),
        Reply(web_search="second", search_tokens=200),
        Reply(content="Partial: ", web_search="third", search_tokens=200),
    )
    await tg.send_text(amy, "Dig deep.")
    reply = await tg.wait_for_message(amy.id, finished(tg, amy.id, "more web searches"), timeout=15)
    assert "Partial:" in reply.visible_text
    assert len(fake_kimi.chat_requests) == 3  # no fourth request carried the third search
    assert fake_kimi.pending_replies == 0
    rows = ledger(bot, amy.id)
    [fees] = [row for row in rows if row["purpose"] == "search"]
    assert fees["web_search_calls"] == 3
    charged = sum(row["cost_micro"] for row in rows)
    held = _query_one(bot, "SELECT amount_micro FROM reservations ORDER BY id DESC LIMIT 1")
    assert charged <= held  # the reservation was a true upper bound

    # Results larger than the allowance's tokens are not fetched either.
    fake_kimi.script(Reply(content="Without it.", web_search="huge", search_tokens=50_000))
    await tg.send_text(amy, "Everything about everything?")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "Without it."), timeout=15)
    assert len(fake_kimi.chat_requests) == 4


def _query_one(bot, sql: str) -> int:  # noqa: ANN001
    import sqlite3

    with sqlite3.connect(bot.services.store.database_url.database) as connection:
        return int(connection.execute(sql).fetchone()[0])


async def test_many_searches_at_once_never_overspend_the_budget_or_the_hold(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # A budget of 200 元点 affords the search reservation (allowance 2 searches + 4 fees for the
    # response past it, small answers) but not the 30 fees Moonshot bills for 30 calls at once.
    bot = await start_bot(default_budget=200, max_output_tokens=1000, web_search_max_calls_per_response=4)
    amy = tg.user(first_name="Amy")
    await _command(tg, amy, "/search on", "on")
    fake_kimi.script(
        Reply(web_search="first", search_tokens=200),
        Reply(content="So far: ", web_searches=[f"query {n}" for n in range(30)], search_tokens=200),
    )
    await tg.send_text(amy, "Search everything.")
    reply = await tg.wait_for_message(amy.id, finished(tg, amy.id, "more web searches"), timeout=15)
    assert "So far:" in reply.visible_text
    assert len(fake_kimi.chat_requests) == 2  # the 30 calls were not run
    assert fake_kimi.web_search_calls_billed == 31  # what Moonshot bills
    rows = ledger(bot, amy.id)
    [fees] = [row for row in rows if row["purpose"] == "search"]
    assert fees["web_search_calls"] == 2 + 4  # the allowance, plus the reserved response past it
    charged = sum(row["cost_micro"] for row in rows)
    held = _query_one(bot, "SELECT amount_micro FROM reservations ORDER BY id DESC LIMIT 1")
    assert charged <= held  # the reservation was a true upper bound on the charge
    assert charged <= 200 * 1_000_000  # the budget was not overspent
    cost = await _command(tg, amy, "/cost", "Last reply")
    assert "🔎 web searches: 6" in cost.text
