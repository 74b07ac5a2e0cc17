"""What a document costs, before it is spent: confirmation above a threshold or beyond the budget,
and a document longer than the model's context summarised in charged parts (map, then reduce)."""

from __future__ import annotations

import re

from tests.fakes.kimi import FakeKimi, Reply, count_prompt_tokens
from tests.fakes.telegram import FakeTelegram
from tests.harness import ON_BOTH_DATABASES
from tests.test_e2e_documents_helpers import (
    _query,
    chat_messages,
    every_uploaded_file_is_deleted,  # noqa: F401 (autouse)
    file_requests,
    finished,
    ledger,
    make_pdf,
    nothing_charged,
    spent_micro,
)


def _confirmation(tg: FakeTelegram, chat_id: int):
    return tg.wait_for_message(chat_id, lambda m: any(d.startswith("doc:yes:") for d in m.callback_data))


@ON_BOTH_DATABASES
async def test_an_expensive_summary_waits_for_confirmation(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(document_confirm_threshold="0.5")
    # The summary takes a second; the press must be answered before it, not after: Telegram fails
    # a late answerCallbackQuery ("query is too old", ~15 s; scaled down here).
    tg.rules.callback_answer_timeout = 0.5
    fake_kimi.script(Reply(content="Otters are playful.", chunk_tokens=2, header_delay=1.0))
    alice = tg.user()

    await tg.send_document(alice, make_pdf("Otters hold hands"), "report.pdf")
    ask = await _confirmation(tg, alice.id)

    cost = re.search(r"cost up to about (\d+\.\d\d) 元点", ask.visible_text)
    assert cost and float(cost.group(1)) > 0.5, ask.visible_text
    assert "report.pdf" in ask.visible_text and "1000.00 元点 left" in ask.visible_text
    assert [b["text"] for row in ask.buttons for b in row] == ["✅ Summarise", "✖ Cancel"]
    # The tokens were counted by Kimi's tokenizer, on the document as it will be sent.
    counted = [r for r in fake_kimi.requests if r.path == "/v1/tokenizers/estimate-token-count"]
    assert counted and "Otters hold hands" in counted[0].json["messages"][0]["content"]
    expected = count_prompt_tokens(counted[0].json["messages"])
    assert f"({expected} tokens)" in ask.visible_text
    await bot.caught_up()
    assert fake_kimi.chat_requests == []  # nothing is spent before the user agrees
    assert fake_kimi.live_files == 0  # the text was read already; the remote file is gone

    yes = next(d for d in ask.callback_data if d.startswith("doc:yes:"))
    await tg.press_button(alice, ask, yes)
    summary = await tg.wait_for_message(alice.id, finished(tg, alice.id, "Otters are playful"), timeout=15)
    assert summary.visible_text == "Otters are playful."
    assert tg.message(alice.id, ask.message_id).buttons == []  # the choice is made: buttons gone
    await bot.caught_up()
    assert [c.status for c in tg.calls("answerCallbackQuery")] == [200]  # answered in time
    rows = ledger(bot, alice.id)
    assert [row["purpose"] for row in rows] == ["document"]
    assert 0 < spent_micro(bot, alice.id) <= float(cost.group(1)) * 1_000_000
    assert any("Otters hold hands" in m["content"] for m in chat_messages(fake_kimi) if m["role"] == "system")


async def test_an_old_confirmation_has_expired(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, monkeypatch):
    import handlers.documents

    monkeypatch.setattr(handlers.documents, "PENDING_TTL", 0.0)  # an hour has passed, instantly
    bot = await start_bot(document_confirm_threshold="0.5")
    alice = tg.user()
    await tg.send_document(alice, b"Otters live in rivers.\n", "plain.txt")
    ask = await _confirmation(tg, alice.id)

    query = await tg.press_button(alice, ask, next(d for d in ask.callback_data if d.startswith("doc:yes:")))
    await tg.wait_until(lambda: tg.callback_answer(query))

    assert tg.callback_answer(query)["text"] == "This request has expired. Please send the document again."
    await bot.caught_up()
    assert fake_kimi.chat_requests == [] and nothing_charged(bot)


async def test_cancel_charges_nothing(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(document_confirm_threshold="0.5")
    alice = tg.user()
    await tg.send_document(alice, b"Otters live in rivers.\n", "plain.txt")
    ask = await _confirmation(tg, alice.id)

    no = next(d for d in ask.callback_data if d.startswith("doc:no:"))
    await tg.press_button(alice, ask, no)
    cancelled = await tg.wait_for_message(alice.id, lambda m: "Cancelled" in m.visible_text)

    assert cancelled.visible_text == "Cancelled; nothing was charged."
    await bot.caught_up()
    assert fake_kimi.chat_requests == []
    assert nothing_charged(bot, alice.id)
    assert tg.message(alice.id, ask.message_id).buttons == []


async def test_only_the_sender_can_confirm_and_a_second_press_is_expired(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot(document_confirm_threshold="0.5")
    alice, mallory = tg.user(first_name="Alice"), tg.user(first_name="Mallory")
    group = tg.group()
    await tg.send_document(alice, b"Otters.\n", "plain.txt", chat=group, caption="@kimi_test_bot summary")
    ask = await _confirmation(tg, group.id)
    yes = next(d for d in ask.callback_data if d.startswith("doc:yes:"))

    query = await tg.press_button(mallory, ask, yes)
    await tg.wait_until(lambda: tg.callback_answer(query))
    assert "Only the person who sent the document" in tg.callback_answer(query)["text"]
    await bot.caught_up()
    assert fake_kimi.chat_requests == []

    fake_kimi.script(Reply(content="Otters, briefly.", chunk_tokens=2))
    # A double tap: both presses reach the bot before the buttons are gone.
    first = await tg.press_button(alice, ask, yes)
    second = await tg.press_button(alice, ask, yes)
    await tg.wait_for_message(group.id, finished(tg, group.id, "Otters, briefly"), timeout=15)
    await bot.caught_up()
    assert len(fake_kimi.chat_requests) == 1
    answers = [tg.callback_answer(first), tg.callback_answer(second)]
    assert sum(1 for a in answers if "expired" in (a.get("text") or "")) == 1
    tg.assert_no_flood()


async def test_a_summary_beyond_the_budget_is_explained_and_not_called(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # 0.01 元点 cannot pay even for the document's input: the bot says so, with no button.
    bot = await start_bot(default_budget="0.01")
    alice = tg.user()
    await tg.send_document(alice, b"Otters live in rivers. " * 40, "plain.txt")
    told = await tg.wait_for_message(alice.id, lambda m: "元点" in m.visible_text)

    assert "would cost about" in told.visible_text and "only 0.01 元点 left" in told.visible_text
    assert told.callback_data == []
    await bot.caught_up()
    assert fake_kimi.chat_requests == [] and nothing_charged(bot)
    assert fake_kimi.live_files == 0


async def test_a_summary_partly_beyond_the_budget_asks_first(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # 5 元点 is below the default threshold (20) but below the ~12 元点 a full summary may cost.
    bot = await start_bot(default_budget="5")
    alice = tg.user()
    await tg.send_document(alice, b"Otters live in rivers.\n", "plain.txt")
    ask = await _confirmation(tg, alice.id)

    assert "5.00 元点 left. That is more than you have left" in ask.visible_text
    await bot.caught_up()
    assert fake_kimi.chat_requests == []

    fake_kimi.script(Reply(content="Otters live in rivers, in short.", chunk_tokens=2))
    yes = next(d for d in ask.callback_data if d.startswith("doc:yes:"))
    await tg.press_button(alice, ask, yes)
    await tg.wait_for_message(alice.id, finished(tg, alice.id, "in short"), timeout=15)
    # The answer was capped to what the budget pays for: never more than 5 元点 spent.
    assert chat_messages(fake_kimi) and fake_kimi.chat_requests[0].json["max_tokens"] < 2048
    assert 0 < spent_micro(bot, alice.id) <= 5_000_000


def _long_text(paragraphs: int) -> str:
    return "".join(
        f"Paragraph {n}: otters of river {n} eat {n} fish a day and sleep holding hands.\n"
        for n in range(paragraphs)
    )


async def test_a_document_longer_than_the_context_is_summarised_in_charged_parts(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # moonshot-v1-8k: 8192 tokens of context; the text is several times that.
    bot = await start_bot(default_model="moonshot-v1-8k")
    text = _long_text(600)  # a few parts, whose summaries the final answer takes at once
    alice = tg.user()

    await tg.send_document(alice, text.encode(), "rivers.txt")
    ask = await _confirmation(tg, alice.id)  # several parts cost more than the 20 元点 threshold
    announced = re.search(r"in (\d+) parts\) will cost up to about (\d+\.\d\d) 元点", ask.visible_text)
    assert announced, ask.visible_text
    parts = int(announced.group(1))
    assert parts >= 3
    assert fake_kimi.chat_requests == []
    # Each part takes a moment, as a real call does, so that progress has time to show.
    fake_kimi.script(
        *(Reply(content=f"Rivers {n}: otters eat fish.", header_delay=0.6) for n in range(1, parts + 1)),
        Reply(content="All rivers: otters eat fish and sleep holding hands.", chunk_tokens=2),
    )
    await tg.press_button(alice, ask, next(d for d in ask.callback_data if d.startswith("doc:yes:")))
    summary = await tg.wait_for_message(alice.id, finished(tg, alice.id, "All rivers"), timeout=30)

    *maps, reduce = [r.json["messages"] for r in fake_kimi.chat_requests]
    assert len(maps) == parts
    for index, messages in enumerate(maps, start=1):
        assert f"This is part {index} of {parts}" in messages[-1]["content"]
    assert all(r.json["model"] == "moonshot-v1-8k" for r in fake_kimi.chat_requests)
    # Every paragraph went into exactly one part, in order.
    sent = "".join(
        m["content"].split("Its extracted text follows.\n\n", 1)[1]
        for messages in maps
        for m in messages
        if m["role"] == "system" and "Its extracted text follows" in m["content"]
    )
    assert sent == text
    # The reduce works from the parts' summaries, not from the whole text.
    reduce_context = "\n".join(m["content"] for m in reduce if m["role"] == "system")
    assert all(
        f"[Part {n}/{parts}]\nRivers {n}: otters eat fish." in reduce_context for n in range(1, parts + 1)
    )
    assert "Paragraph 899" not in reduce_context
    assert reduce[-1]["content"].startswith("Summarise this document")
    assert summary.visible_text == "All rivers: otters eat fish and sleep holding hands."

    # Progress was shown while the parts were read, and says when they are done.
    status = next(
        m
        for m in tg.messages(alice.id)
        if "Summarising «rivers.txt» in parts: step 1" in (m.versions[0].text or "")
    )
    shown = [v.text for v in status.versions]
    assert any(f"step {n} of {parts}" in v for v in shown for n in range(2, parts + 1))
    assert status.visible_text == f"📄 Read «rivers.txt» in {parts} parts; the summary follows."
    # Each part, and the reduce, was charged as a document call, within the announced cost.
    rows = ledger(bot, alice.id)
    assert [row["purpose"] for row in rows] == ["document"] * (parts + 1)
    assert all(row["cost_micro"] > 0 for row in rows)
    # The parts belong to the conversation too, so /cost "this conversation" counts them.
    assert len({row["conversation_id"] for row in rows}) == 1 and rows[0]["conversation_id"] is not None
    assert spent_micro(bot, alice.id) == sum(row["cost_micro"] for row in rows)
    assert spent_micro(bot, alice.id) <= float(announced.group(2)) * 1_000_000
    assert file_requests(fake_kimi) == {"upload": 1, "content": 1, "delete": 1}
    assert fake_kimi.live_files == 0
    tg.assert_no_flood()


async def test_each_part_is_held_for_the_most_kimi_can_bill_for_it(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # Text a real tokenizer counts densely (numbers): Kimi bills the parts well above the bot's
    # own estimate, though never above a token per byte. Each part's hold must still cover its
    # bill, or a tight budget could be overspent.
    bot = await start_bot(default_model="moonshot-v1-8k", document_confirm_threshold="1000")
    fake_kimi.bill_ratio = 3.0
    text = "".join(f"{n:08d},{n * 7919 % 100_000:05d},{n * 104_729 % 1_000_000:06d}\n" for n in range(1_500))
    alice = tg.user()
    fake_kimi.script(*(Reply(content=f"Part {n}: numbers.") for n in range(1, 20)))

    await tg.send_document(alice, text.encode(), "numbers.csv")
    await tg.wait_for_message(alice.id, finished(tg, alice.id, "Part"), timeout=30)
    await bot.caught_up()

    holds = [row["amount_micro"] for row in _query(bot, "SELECT amount_micro FROM reservations ORDER BY id")]
    costs = [row["cost_micro"] for row in ledger(bot, alice.id)]
    assert len(costs) >= 3 and len(holds) == len(costs)  # one hold per call: the parts, then the answer
    billed_more = [r for r in fake_kimi.chat_requests if r.json["messages"]]
    assert billed_more
    for hold, cost in zip(holds, costs, strict=True):
        assert cost <= hold, (cost, hold)


async def test_a_huge_document_on_a_small_model_combines_summaries_before_the_final_answer(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # So many parts that their summaries, at up to 1,024 tokens each, would not fit moonshot-v1-8k
    # at once: groups of summaries are summarised again first. The fake echoes every question.
    bot = await start_bot(default_model="moonshot-v1-8k", document_confirm_threshold=10_000)
    text = _long_text(2500)
    alice = tg.user()

    await tg.send_document(alice, text.encode(), "rivers.txt")
    summary = await tg.wait_for_message(alice.id, finished(tg, alice.id, "echo: Summarise this"), timeout=30)

    requests = [r.json for r in fake_kimi.chat_requests]
    maps = [r for r in requests if r["messages"][-1]["content"].startswith("This is part ")]
    combines = [r for r in requests if r["messages"][-1]["content"].startswith("Combine these summaries")]
    reduce = requests[-1]["messages"]
    assert len(maps) >= 10 and 2 <= len(combines) < len(maps)
    assert len(requests) == len(maps) + len(combines) + 1
    assert requests.index(combines[0]) == len(maps)  # every part first, then the combining
    # Each combining call takes consecutive summaries, and every summary is taken once.
    taken = [m["content"].count("[Part ") for r in combines for m in r["messages"] if m["role"] == "system"]
    assert sum(taken) == len(maps)
    # The final answer sees the combined summaries only, and every call stayed within the context.
    final_context = "\n".join(m["content"] for m in reduce if m["role"] == "system")
    assert final_context.count("[Part ") == len(combines)
    assert "echo: Combine these summaries" in final_context and "This is part 1 of" not in final_context
    assert all(r.status == 200 for r in fake_kimi.chat_requests)
    assert summary.visible_text.startswith("echo: Summarise this document")
    rows = ledger(bot, alice.id)
    assert len(rows) == len(requests) and {row["purpose"] for row in rows} == {"document"}
    assert fake_kimi.live_files == 0
