"""Documents and costs in a group: summarised only when asked (caption mention, a reply mentioning
the bot, /summary), the answer quotes the document, and the member who asked pays and is told."""

from __future__ import annotations

import re

import pytest

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import (
    chat_messages,
    every_uploaded_file_is_deleted,  # noqa: F401 (autouse)
    file_requests,
    finished,
    ledger,
    make_pdf,
    nothing_charged,
)

BOT = "@kimi_test_bot"


async def test_a_document_whose_caption_mentions_the_bot_is_answered_quoting_it(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    group = tg.group()
    alice = tg.user(first_name="Alice")
    fake_kimi.script(Reply(content="It says otters hold hands.", chunk_tokens=2))

    document = await tg.send_document(
        alice, make_pdf("Otters hold hands"), "report.pdf", chat=group, caption=f"{BOT} what does it say?"
    )
    answer = await tg.wait_for_message(group.id, finished(tg, group.id, "otters hold hands"), timeout=15)

    assert answer.reply_to_message_id == document["message_id"]
    messages = chat_messages(fake_kimi)
    assert messages[-1] == {"role": "user", "content": "what does it say?"}
    assert any(m["role"] == "system" and "Otters hold hands" in m["content"] for m in messages)
    assert [(row["user_id"], row["purpose"]) for row in ledger(bot)] == [(alice.id, "document")]
    assert fake_kimi.live_files == 0
    tg.assert_no_flood()


async def test_a_document_sent_in_reply_to_the_bot_is_summarised(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()
    group = tg.group()
    alice = tg.user(first_name="Alice")
    fake_kimi.script(
        Reply(content="Send me a file."), Reply(content="The file is about otters.", chunk_tokens=2)
    )
    await tg.send_text(alice, f"{BOT} can you read files?", chat=group)
    invitation = await tg.wait_for_message(group.id, finished(tg, group.id, "Send me a file."))

    document = await tg.send_document(alice, b"Otters.\n", "plain.txt", chat=group, reply_to=invitation)
    answer = await tg.wait_for_message(group.id, finished(tg, group.id, "about otters"), timeout=15)

    assert answer.reply_to_message_id == document["message_id"]
    assert chat_messages(fake_kimi)[-1]["content"].startswith("Summarise this document")
    assert fake_kimi.live_files == 0


async def test_a_document_in_a_forum_topic_is_answered_in_that_topic(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(group_context="per_topic")
    forum = tg.group(forum=True)
    alice = tg.user(first_name="Alice")
    topic = await tg.create_topic(forum, "Reports")
    fake_kimi.script(Reply(content="A report on otters.", chunk_tokens=2))

    document = await tg.send_document(
        alice, make_pdf("Otters hold hands"), "report.pdf", chat=forum, caption=BOT, thread_id=topic
    )
    answer = await tg.wait_for_message(forum.id, finished(tg, forum.id, "A report on otters."), timeout=15)

    assert answer.thread_id == topic and answer.reply_to_message_id == document["message_id"]
    assert {action.thread_id for action in tg.chat_actions(forum.id)} == {topic}
    assert fake_kimi.live_files == 0


@pytest.mark.parametrize("bot_status", ["member", "administrator"])
async def test_a_document_not_meant_for_the_bot_is_not_even_downloaded(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, bot_status
):
    bot = await start_bot()
    group = tg.group(bot_status=bot_status)
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob", username="bob")
    document = await tg.send_document(alice, b"Otters.\n", "plain.txt", chat=group)
    await tg.send_document(alice, b"Beavers.\n", "other.txt", chat=group, caption="for @bob")
    await tg.send_text(bob, "thanks for the file", chat=group, reply_to=document)
    await bot.caught_up()

    assert tg.messages(group.id) == []
    assert tg.calls("getFile") == [] and fake_kimi.requests == [] and nothing_charged(bot)


@pytest.mark.parametrize(
    ("ask", "question"),
    [
        (f"{BOT} does it mention fish?", "does it mention fish?"),
        ("/summary", "Summarise this document"),
        ("/summary@kimi_test_bot in one line", "in one line"),
    ],
)
async def test_a_member_replying_to_a_document_gets_it_summarised_and_pays(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, ask, question
):
    bot = await start_bot()
    group = tg.group()
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob")
    document = await tg.send_document(alice, b"Otters eat fish.\n", "plain.txt", chat=group)
    fake_kimi.script(Reply(content="Yes: otters eat fish.", chunk_tokens=2))

    await tg.send_text(bob, ask, chat=group, reply_to=document)
    answer = await tg.wait_for_message(group.id, finished(tg, group.id, "otters eat fish"), timeout=15)

    assert answer.reply_to_message_id == document["message_id"]  # quotes the document
    messages = chat_messages(fake_kimi)
    assert messages[-1]["role"] == "user" and messages[-1]["content"].startswith(question)
    assert any(m["role"] == "system" and "Otters eat fish." in m["content"] for m in messages)
    assert [(row["user_id"], row["purpose"]) for row in ledger(bot)] == [(bob.id, "document")]
    assert file_requests(fake_kimi) == {"upload": 1, "content": 1, "delete": 1}
    assert fake_kimi.live_files == 0


@pytest.mark.parametrize(
    ("caption", "question"),
    [("/summary", "Summarise this document"), ("/summary@kimi_test_bot in one line", "in one line")],
)
async def test_a_document_sent_with_summary_as_its_caption_is_summarised(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, caption, question
):
    # Telegram runs no command on a caption: the document itself must see its /summary.
    await start_bot()
    group = tg.group()
    alice = tg.user()
    fake_kimi.script(Reply(content="Otters, in short.", chunk_tokens=2))

    document = await tg.send_document(alice, b"Otters eat fish.\n", "plain.txt", chat=group, caption=caption)
    answer = await tg.wait_for_message(group.id, finished(tg, group.id, "Otters, in short."), timeout=15)

    assert answer.reply_to_message_id == document["message_id"]
    assert chat_messages(fake_kimi)[-1]["content"].startswith(question)


async def test_summary_without_a_document_explains_itself(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot()
    group = tg.group()
    alice = tg.user()
    await tg.send_text(alice, "/summary@kimi_test_bot", chat=group)
    reply = await tg.wait_for_message(group.id)
    assert reply.visible_text == "Reply to a document with /summary to summarise it."
    assert fake_kimi.requests == []


# --- who pays ------------------------------------------------------------------------------------


def _points(pattern: str, text: str) -> float:
    found = re.search(pattern, text)
    assert found, text
    return float(found.group(1))


async def test_costs_go_to_the_member_who_asked_and_cost_and_balance_answer_about_them(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    group = tg.group()
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob")
    fake_kimi.script(Reply(content="A long answer about otters. " * 20, chunk_tokens=8))
    await tg.send_text(alice, f"{BOT} tell me about otters", chat=group)
    await tg.wait_for_message(group.id, finished(tg, group.id, "about otters"), timeout=15)

    rows = ledger(bot)
    assert [row["user_id"] for row in rows] == [alice.id]
    alice_cost = rows[0]["cost_micro"] / 1_000_000

    asked = await tg.send_text(alice, "/balance@kimi_test_bot", chat=group)
    alice_balance = await tg.wait_for_message(
        group.id, lambda m: m.reply_to_message_id == asked["message_id"]
    )
    asked = await tg.send_text(bob, "/balance@kimi_test_bot", chat=group)
    bob_balance = await tg.wait_for_message(group.id, lambda m: m.reply_to_message_id == asked["message_id"])
    assert _points(r"([\d.]+) 元点 left", bob_balance.visible_text) == 1000.0
    assert _points(r"([\d.]+) 元点 left", alice_balance.visible_text) == pytest.approx(
        1000 - alice_cost, abs=0.01
    )

    asked = await tg.send_text(alice, "/cost@kimi_test_bot", chat=group)
    alice_usage = await tg.wait_for_message(group.id, lambda m: m.reply_to_message_id == asked["message_id"])
    asked = await tg.send_text(bob, "/cost@kimi_test_bot", chat=group)
    bob_usage = await tg.wait_for_message(group.id, lambda m: m.reply_to_message_id == asked["message_id"])
    assert "kimi-k2-0905-preview" in alice_usage.visible_text
    assert _points(r"All time: ([\d.]+) 元点", alice_usage.visible_text) == pytest.approx(
        alice_cost, abs=0.01
    )
    assert "kimi-k2-0905-preview" not in bob_usage.visible_text
    assert "All time: nothing yet" in bob_usage.visible_text
    assert len(fake_kimi.chat_requests) == 1  # commands cost nothing
    tg.assert_no_flood()
