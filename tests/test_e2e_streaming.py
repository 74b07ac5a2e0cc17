"""Streaming into Telegram, end to end: drafts, edits, 4096 splits, Markdown, thinking, stop."""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi, Reply, count_tokens, split_tokens
from tests.fakes.telegram import FakeTelegram
from tests.harness import ON_BOTH_DATABASES, RunningBot


async def assert_cut_charged_and_freed(
    bot: RunningBot, fake_kimi: FakeKimi, user_id: int, shown: str, scripted: str
) -> None:
    """A stopped answer: cut (shorter than what Kimi would have streamed within the request's
    max_tokens), the part charged (at least one token, fewer than the whole), that charge is all
    that was spent, and no hold is left."""
    await bot.caught_up()
    whole = "".join(split_tokens(scripted)[: fake_kimi.chat_requests[-1].json["max_tokens"]])
    assert len(shown) < len(whole.strip()), "the answer was not cut"
    rows = await bot.services.store.usage_totals(user_id)
    assert len(rows) == 1, rows
    assert 0 < rows[0].completion_tokens < count_tokens(whole), rows[0]
    assert rows[0].cost_micro > 0
    assert await bot.budget(user_id) == (rows[0].cost_micro, 0), "charged for the part only, hold freed"


def no_rejected_calls(tg: FakeTelegram) -> list:
    """Every call Telegram refused (a 400 'not modified', 'can't parse entities', too long…)."""
    return [call for call in tg.calls() if call.status != 200]


async def test_private_chat_streams_in_drafts_then_sends_the_message(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()
    alice = tg.user()
    text = "Here is *emphasis* and `code`. " + "More words arrive one by one. " * 15
    fake_kimi.script(Reply(content=text, chunk_tokens=2, delay=0.03))
    await tg.send_text(alice, "Tell me something")
    final = await tg.wait_for_message(alice.id, lambda m: "one by one" in (m.text or ""), timeout=20)
    drafts = tg.drafts(alice.id)
    assert drafts[0].text == ""  # Telegram's "Thinking…" placeholder before the first token
    growing = [d.text for d in drafts if d.text]
    assert len(growing) >= 2 and all(b.startswith(a[:20]) for a, b in zip(growing, growing[1:], strict=False))
    assert len(growing[0]) < len(final.text)  # the user saw the answer before it was complete
    # The drafts are formatted like the answer: the same entities over the same text.
    last = [d for d in drafts if d.text][-1]
    assert [(e["type"], e["offset"], e["length"]) for e in last.entities] == [
        (e["type"], e["offset"], e["length"]) for e in final.entities if e["offset"] < len(last.text)
    ][: len(last.entities)]
    assert {"italic", "code"} <= {e["type"] for e in last.entities}
    assert final.text.startswith("Here is emphasis and code.")
    types = {e["type"] for e in final.entities}
    assert {"italic", "code"} <= types
    assert len(tg.messages(alice.id)) == 1  # one final message, the draft is not duplicated
    assert no_rejected_calls(tg) == []
    tg.assert_no_flood()


async def test_edit_mode_edits_one_message_and_removes_the_stop_button(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(stream_mode="edit")
    bob = tg.user(first_name="Bob")
    fake_kimi.script(Reply(content="Line of streamed text. " * 30, chunk_tokens=3, delay=0.03))
    await tg.send_text(bob, "stream please")
    await tg.wait_for(lambda c: c.method == "editMessageText", timeout=20)
    message = tg.messages(bob.id)[0]
    assert message.callback_data and message.callback_data[0].startswith("stop:")
    await tg.wait_until(lambda: not tg.messages(bob.id)[0].reply_markup, timeout=20)
    final = tg.messages(bob.id)[0]
    assert final.text == ("Line of streamed text. " * 30).strip()
    assert len(final.versions) >= 3  # sent, edited while streaming, final
    assert tg.drafts(bob.id) == []
    assert no_rejected_calls(tg) == []  # no "message is not modified", no parse errors
    tg.assert_no_flood()


async def test_a_10000_character_answer_is_split_without_loss(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot(max_output_tokens=8000)
    carol = tg.user(first_name="Carol")
    paragraphs = [f"Paragraph {i}: " + ("lorem ipsum dolor sit amet " * 14).strip() for i in range(26)]
    answer = "\n\n".join(paragraphs)
    assert len(answer) > 10_000
    fake_kimi.script(Reply(content=answer, chunk_tokens=60, delay=0.01))
    await tg.send_text(carol, "write a lot")
    await tg.wait_until(
        lambda: len(tg.messages(carol.id)) >= 3 and "Paragraph 25" in tg.visible_text(carol.id), timeout=30
    )
    await bot.caught_up()
    texts = tg.bot_texts(carol.id)
    assert len(texts) == 3
    assert all(len(t.encode("utf-16-le")) // 2 <= 4096 for t in texts)
    assert "\n\n".join(texts) == answer.strip()  # cut at paragraph boundaries, nothing lost or doubled
    assert no_rejected_calls(tg) == []


async def test_code_block_split_across_messages_is_reopened(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(stream_mode="edit", max_output_tokens=8000)
    dave = tg.user(first_name="Dave")
    code = "\n".join(f"print('line {i}')  # a comment to make it longer" for i in range(120))
    fake_kimi.script(Reply(content=f"Code:\n\n```python\n{code}\n```\n\nDone.", chunk_tokens=80))
    await tg.send_text(dave, "code please")
    await tg.wait_until(lambda: "Done." in tg.visible_text(dave.id), timeout=30)
    await bot.caught_up()
    messages = tg.messages(dave.id)
    assert len(messages) == 2
    for message in messages:
        pre = [e for e in message.entities if e["type"] == "pre"]
        assert pre and pre[0].get("language") == "python"
    assert no_rejected_calls(tg) == []


async def test_unclosed_markdown_mid_stream_never_breaks_telegram(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(stream_mode="edit")
    erin = tg.user(first_name="Erin")
    tricky = (
        "**Bold that stays open for a while and _italic inside_ and a [link](https://example.com/a_b) "
        "then the bold closes** here.\n\n```js\nconst a = 1 < 2 && 3 > 2;\n```\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |"
    )
    fake_kimi.script(Reply(content=tricky, chunk_tokens=1, delay=0.02))
    await tg.send_text(erin, "markdown please")
    await tg.wait_until(lambda: tg.messages(erin.id) and not tg.messages(erin.id)[0].reply_markup, timeout=30)
    assert len(tg.messages(erin.id)[0].versions) >= 3  # edited while the Markdown was half-written
    assert no_rejected_calls(tg) == []
    final = tg.messages(erin.id)[0]
    assert "**" not in final.text and final.text.startswith("Bold that stays open")
    assert {"bold", "italic", "text_link", "pre"} <= {e["type"] for e in final.entities}


async def test_thinking_model_shows_reasoning_while_streaming_but_not_in_the_answer(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(default_model="kimi-k2-thinking")
    frank = tg.user(first_name="Frank")
    reasoning = "First I consider the question carefully. " * 8
    fake_kimi.script(Reply(reasoning=reasoning, content="The answer is 42.", chunk_tokens=2, delay=0.03))
    await tg.send_text(frank, "What is the answer?")
    final = await tg.wait_for_message(frank.id, lambda m: "42" in (m.text or ""), timeout=30)
    thinking_drafts = [d for d in tg.drafts(frank.id) if "consider the question" in d.text]
    assert thinking_drafts, "the reasoning was shown while it streamed"
    assert any(e["type"] == "expandable_blockquote" for e in thinking_drafts[-1].entities)
    assert final.text == "The answer is 42."
    assert no_rejected_calls(tg) == []


@ON_BOTH_DATABASES
async def test_stop_button_keeps_the_partial_answer_and_charges_it(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot(stream_mode="edit")
    gina = tg.user(first_name="Gina")
    fake_kimi.script(Reply(content="word " * 2000, chunk_tokens=2, delay=0.02))
    await tg.send_text(gina, "never stop")
    streaming = await tg.wait_for_message(gina.id, lambda m: bool(m.callback_data), timeout=20)
    await tg.press_button(gina, streaming, streaming.callback_data[0])
    await tg.wait_until(lambda: "Stopped" in tg.visible_text(gina.id), timeout=20)
    final = tg.messages(gina.id)[0]
    assert not final.reply_markup
    assert final.text.startswith("word")
    await assert_cut_charged_and_freed(bot, fake_kimi, gina.id, final.text, "word " * 2000)


@ON_BOTH_DATABASES
async def test_stop_command_in_draft_mode(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()
    hank = tg.user(first_name="Hank")
    fake_kimi.script(Reply(content="slow " * 2000, chunk_tokens=2, delay=0.02))
    await tg.send_text(hank, "go on forever")
    await tg.wait_until(lambda: any(d.text for d in tg.drafts(hank.id)), timeout=20)
    await tg.send_text(hank, "/stop")
    final = await tg.wait_for_message(hank.id, lambda m: "Stopped" in (m.text or ""), timeout=20)
    assert final.text.startswith("slow")
    await assert_cut_charged_and_freed(bot, fake_kimi, hank.id, final.text, "slow " * 2000)


async def test_telegrams_own_draft_stop_ends_the_answer(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()
    ivy = tg.user(first_name="Ivy")
    fake_kimi.script(Reply(content="more " * 2000, chunk_tokens=2, delay=0.02))
    await tg.send_text(ivy, "keep going")
    await tg.wait_until(lambda: any(d.text for d in tg.drafts(ivy.id)), timeout=20)
    assert tg.calls("sendMessageDraft")[-1].params.get("can_stop") in (True, "true")
    # Bot API 10.3: the user pressed the draft's stop control.
    tg.world.push_update(
        "stopped_message_generation", {"chat": {"id": ivy.id, "type": "private"}, "from": ivy.to_dict()}
    )
    final = await tg.wait_for_message(ivy.id, lambda m: "Stopped" in (m.text or ""), timeout=20)
    assert final.text.startswith("more")
    await assert_cut_charged_and_freed(bot, fake_kimi, ivy.id, final.text, "more " * 2000)


async def test_a_telegram_without_drafts_gets_edits_instead(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot()
    jo = tg.user(first_name="Jo")
    tg.fail_next("sendMessageDraft", "Not Found", status=404, times=100)
    fake_kimi.script(Reply(content="Still streamed, by edits. " * 30, chunk_tokens=3, delay=0.03))
    await tg.send_text(jo, "hello")
    await tg.wait_until(lambda: tg.messages(jo.id) and not tg.messages(jo.id)[0].reply_markup, timeout=30)
    assert tg.messages(jo.id)[0].text == ("Still streamed, by edits. " * 30).strip()
    assert len(tg.calls("sendMessageDraft")) <= 2  # gave drafts up at once
    assert tg.calls("editMessageText")
