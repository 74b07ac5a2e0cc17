"""Access is checked once, before every handler (handlers.access): buttons included, and a refused
user is told so only when the message was meant for the bot."""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import ledger

BOT = "@kimi_test_bot"


async def test_a_model_button_in_a_group_that_is_not_allowed_does_nothing(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # The listing was shown before the group was taken off ALLOWED_CHAT_IDS; its buttons still show.
    first = await start_bot()
    group = tg.group()
    alice = tg.user(first_name="Alice")
    await tg.send_text(alice, "/model", chat=group)
    listing = await tg.wait_for_message(group.id)
    assert "model:kimi-k2-thinking" in listing.callback_data
    await first.__aexit__(None, None, None)

    bot = await start_bot(allowed_chat_ids="-42")
    query_id = await tg.press_button(alice, listing, "model:kimi-k2-thinking", chat=group)
    await bot.caught_up()
    assert tg.world.callback_queries[query_id]["answered"]

    assert (await bot.services.store.get_user(alice.id)).model != "kimi-k2-thinking"
    assert [m.message_id for m in tg.messages(group.id)] == [listing.message_id]
    assert fake_kimi.chat_requests == [] and ledger(bot) == []


async def test_a_user_not_allowed_is_told_only_when_the_message_was_for_the_bot(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    friend = tg.user(first_name="Friend")
    stranger = tg.user(first_name="Stranger")
    bot = await start_bot(allowed_user_ids=str(friend.id))
    group = tg.group()

    await tg.send_text(stranger, "just chatting with friends", chat=group)  # not for the bot
    # A bare command the bot does not have may be another bot's in a group (in a private chat it
    # is for the bot: an allowed user is told it is unknown, so this stranger would be refused).
    await tg.send_text(stranger, "/unknown_command", chat=group)
    await tg.send_text(stranger, f"{BOT} hello?", chat=group)
    refusal = await tg.wait_for_message(group.id)
    assert str(stranger.id) in refusal.text
    await tg.send_text(stranger, "/balance")
    private = await tg.wait_for_message(stranger.id)
    assert str(stranger.id) in private.text
    await bot.caught_up()

    assert tg.bot_texts(group.id) == [refusal.text]
    assert tg.bot_texts(stranger.id) == [private.text]
    assert fake_kimi.chat_requests == [] and ledger(bot) == []
