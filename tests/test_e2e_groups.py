"""Group chats end to end: what wakes the bot (and what never does, nor costs anything), whose
conversation a question joins, and which groups the bot stays in."""

from __future__ import annotations

import pytest

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.harness import ON_BOTH_DATABASES
from tests.test_e2e_documents_helpers import (
    chat_messages,
    every_uploaded_file_is_deleted,  # noqa: F401 (autouse)
    finished,
    ledger,
    nothing_charged,
)

BOT = "@kimi_test_bot"


@ON_BOTH_DATABASES
async def test_a_mention_is_answered_in_the_group_quoting_the_question(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    group = tg.group()
    alice = tg.user(first_name="Alice")
    fake_kimi.script(Reply(content="Otters sleep holding hands.", chunk_tokens=2))

    asked = await tg.send_text(alice, f"{BOT} how do otters sleep?", chat=group)
    answer = await tg.wait_for_message(group.id, finished(tg, group.id, "Otters sleep"))

    assert answer.visible_text == "Otters sleep holding hands."
    assert answer.reply_to_message_id == asked["message_id"]
    assert chat_messages(fake_kimi)[-1] == {"role": "user", "content": "how do otters sleep?"}
    assert [row["user_id"] for row in ledger(bot)] == [alice.id]
    assert tg.drafts(group.id) == []  # no drafts in groups: a message that is edited
    tg.assert_no_flood()


async def test_a_reply_to_the_bots_message_is_answered(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot()
    group = tg.group()
    alice = tg.user(first_name="Alice")
    fake_kimi.script(Reply(content="Rivers."), Reply(content="Fish, mostly."))
    await tg.send_text(alice, f"Where do otters live, {BOT}?", chat=group)
    first = await tg.wait_for_message(group.id, finished(tg, group.id, "Rivers."))

    follow_up = await tg.send_text(alice, "And what do they eat?", chat=group, reply_to=first)
    second = await tg.wait_for_message(group.id, finished(tg, group.id, "Fish, mostly."))

    assert second.reply_to_message_id == follow_up["message_id"]
    assert chat_messages(fake_kimi)[-1] == {"role": "user", "content": "And what do they eat?"}
    # The same member's conversation goes on.
    assert {"role": "assistant", "content": "Rivers."} in chat_messages(fake_kimi)


@pytest.mark.parametrize("command", ["/help@kimi_test_bot", "/help"])
async def test_commands_meant_for_the_bot_are_answered(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, command
):
    await start_bot()
    group = tg.group()
    alice = tg.user()
    await tg.send_text(alice, command, chat=group)
    reply = await tg.wait_for_message(group.id)
    assert "/balance" in reply.visible_text and "mention me (@kimi_test_bot)" in reply.visible_text
    assert fake_kimi.chat_requests == []


NOT_FOR_THE_BOT = [
    pytest.param(lambda bob_message: {"text": "otters are great"}, id="plain message"),
    pytest.param(lambda bob_message: {"text": "so true", "reply_to": bob_message}, id="reply to a member"),
    pytest.param(lambda bob_message: {"text": "@bob what do you think?"}, id="mention of someone else"),
    pytest.param(lambda bob_message: {"text": "/help@other_bot"}, id="command for another bot"),
    pytest.param(lambda bob_message: {"text": "kimi_test_bot is a bot"}, id="the name without @"),
]


@pytest.mark.parametrize("privacy", ["privacy mode", "bot is admin"])
@pytest.mark.parametrize("make", NOT_FOR_THE_BOT)
async def test_other_traffic_is_never_answered_nor_charged(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, privacy, make
):
    # As an admin (or with privacy mode off) the bot receives every message: its own rules must
    # then keep it quiet, not Telegram's filter.
    bot = await start_bot()
    group = tg.group(bot_status="administrator" if privacy == "bot is admin" else "member")
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob", username="bob")
    bob_message = await tg.send_text(bob, "I saw an otter today", chat=group)

    params = make(bob_message)
    sent = await tg.send_text(alice, params.pop("text"), chat=group, **params)
    await bot.caught_up()

    assert tg.messages(group.id) == []
    assert fake_kimi.requests == []
    assert nothing_charged(bot)
    seen = {
        (u["message"]["chat"]["id"], u["message"]["message_id"])
        for u in tg.updates_delivered
        if "message" in u
    }
    # As an admin the bot did receive the message (and kept quiet); with privacy mode, Telegram
    # already kept it away.
    assert ((group.id, sent["message_id"]) in seen) == (privacy == "bot is admin")


@ON_BOTH_DATABASES
async def test_a_member_replying_to_another_members_question_does_not_wake_the_bot(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # Alice's question mentions the bot; Bob's reply to Alice's question does not.
    bot = await start_bot()
    group = tg.group(bot_status="administrator")
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob")
    fake_kimi.script(Reply(content="Otters are mustelids."))
    question = await tg.send_text(alice, f"{BOT} what are otters?", chat=group)
    await tg.wait_for_message(group.id, finished(tg, group.id, "mustelids"))

    await tg.send_text(bob, "good question", chat=group, reply_to=question)
    await bot.caught_up()

    assert len(fake_kimi.chat_requests) == 1
    assert len(tg.messages(group.id)) == 1


# --- whose conversation --------------------------------------------------------------------------


async def _ask(
    tg: FakeTelegram, fake_kimi: FakeKimi, user, chat, text: str, answer: str, **where
) -> list[dict]:
    fake_kimi.script(Reply(content=answer))
    await tg.send_text(user, f"{BOT} {text}", chat=chat, **where)
    await tg.wait_for_message(chat, finished(tg, chat.id if hasattr(chat, "id") else chat, answer))
    return chat_messages(fake_kimi)


@ON_BOTH_DATABASES
async def test_each_member_has_their_own_context_by_default(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot()
    group = tg.group()
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob")

    await _ask(tg, fake_kimi, alice, group, "my secret is 4711", "Noted, Alice.")
    bob_sees = await _ask(tg, fake_kimi, bob, group, "what is the secret?", "I don't know, Bob.")
    alice_sees = await _ask(tg, fake_kimi, alice, group, "what is my secret?", "It is 4711.")

    assert not any("4711" in m["content"] for m in bob_sees)
    assert {"role": "user", "content": "my secret is 4711"} in alice_sees
    assert not any("Bob" in m["content"] for m in alice_sees)


async def test_shared_context_lets_members_build_on_each_other(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(group_context="shared")
    group, other_group = tg.group(), tg.group()
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob")

    await _ask(tg, fake_kimi, alice, group, "the meeting is at 3pm", "Noted.")
    bob_sees = await _ask(tg, fake_kimi, bob, group, "when is the meeting?", "At 3pm.")
    elsewhere = await _ask(tg, fake_kimi, bob, other_group, "when is the meeting?", "Which meeting?")

    assert {"role": "user", "content": "the meeting is at 3pm"} in bob_sees
    assert not any("3pm" in m["content"] for m in elsewhere)


async def test_per_topic_context_follows_forum_topics(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot(group_context="per_topic")
    forum = tg.group(forum=True)
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob")
    otters = await tg.create_topic(forum, "Otters")
    beavers = await tg.create_topic(forum, "Beavers")

    await _ask(tg, fake_kimi, alice, forum, "otters eat fish", "Noted.", thread_id=otters)
    same_topic = await _ask(tg, fake_kimi, bob, forum, "what do they eat?", "Fish.", thread_id=otters)
    other_topic = await _ask(tg, fake_kimi, bob, forum, "what do they eat?", "Wood.", thread_id=beavers)

    assert {"role": "user", "content": "otters eat fish"} in same_topic
    assert not any("fish" in m["content"] for m in other_topic)
    # Every answer went to the topic of its question.
    answers = {m.visible_text: m.thread_id for m in tg.messages(forum.id)}
    assert answers == {"Noted.": otters, "Fish.": otters, "Wood.": beavers}
    sends = [c for c in tg.calls("sendMessage") if c.chat_id == forum.id]
    assert [c.params.get("message_thread_id") for c in sends] == [otters, otters, beavers]


# --- which groups --------------------------------------------------------------------------------


async def test_added_to_a_group_it_is_not_allowed_in_it_says_so_once_and_leaves(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    allowed = tg.group(bot_status="left")
    stranger = tg.group(bot_status="left")
    bot = await start_bot(allowed_chat_ids=str(allowed.id))
    admin = tg.user(first_name="Admin")

    await tg.bot_added_to_group(stranger, admin)
    await tg.wait_for(lambda c: c.method == "leaveChat" and c.ok)
    await bot.caught_up()

    assert tg.bot_texts(stranger.id) == [
        "I'm not allowed in this group, so I'm leaving. An admin can allow it."
    ]
    assert stranger.bot_status == "left"
    assert len(tg.calls("leaveChat")) == 1

    await tg.bot_added_to_group(allowed, admin)
    await bot.caught_up()
    assert tg.messages(allowed.id) == [] and len(tg.calls("leaveChat")) == 1
    answer = await _ask(tg, fake_kimi, admin, allowed, "hello", "Hello, group.")
    assert answer[-1]["content"] == "hello"
    assert fake_kimi.live_files == 0


async def test_in_a_group_that_is_not_allowed_nothing_is_answered(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # The bot was there before the setting: it stays silent there (and costs nothing).
    stranger = tg.group()
    bot = await start_bot(allowed_chat_ids="-42")
    alice = tg.user()

    await tg.send_text(alice, f"{BOT} hello?", chat=stranger)
    await tg.send_text(alice, "/help@kimi_test_bot", chat=stranger)
    await tg.send_document(alice, b"Otters.\n", "plain.txt", chat=stranger, caption=f"{BOT} summary please")
    await bot.caught_up()

    assert tg.messages(stranger.id) == []
    assert fake_kimi.requests == [] and nothing_charged(bot)
    assert tg.calls("getFile") == []


async def test_a_bare_mention_in_reply_to_a_members_message_asks_that_message(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()
    group = tg.group()
    alice = tg.user(first_name="Alice")
    bob = tg.user(first_name="Bob")
    fake_kimi.script(Reply(content="Paris is the capital of France.", chunk_tokens=2))
    question = await tg.send_text(alice, "what is the capital of France?", chat=group)
    await tg.send_text(bob, BOT, chat=group, reply_to=question)
    answer = await tg.wait_for_message(group.id, finished(tg, group.id, "Paris"))
    assert answer.visible_text == "Paris is the capital of France."
    assert chat_messages(fake_kimi)[-1] == {"role": "user", "content": "what is the capital of France?"}
