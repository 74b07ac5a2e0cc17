"""The harness's event sync: `RunningBot.caught_up` returns only once every update is handled.

Other tests rely on it before asserting that something did NOT happen, so it must hold while a
handler is still busy without calling Telegram, and with updates handled concurrently."""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram


async def test_caught_up_waits_for_a_slow_handler_not_for_a_later_reply(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob")
    # Alice's answer takes a second to start; Bob's /help, sent after it, is answered at once:
    # that reply proves nothing about Alice's update, caught_up does.
    fake_kimi.script(Reply(content="A slow answer.", header_delay=1.0))
    await tg.send_text(alice, "hello")
    await tg.send_text(bob, "/help")
    await tg.wait_for_message(bob.id)

    await bot.caught_up()

    assert tg.bot_texts(alice.id) == ["A slow answer."]
    assert len(bot.services.handled) == 2
    await tg.wait_confirmed()  # and the bot told Telegram it has both (next getUpdates offset)
    assert tg.confirmed_update_id == tg.update_ids()[-1]


async def test_caught_up_fails_loudly_when_an_update_is_still_in_flight(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    alice = tg.user()
    fake_kimi.script(Reply(content="Late.", header_delay=3.0))
    await tg.send_text(alice, "hello")
    try:
        await bot.caught_up(timeout=0.5)
    except AssertionError as error:
        assert "had not handled updates" in str(error)
    else:
        raise AssertionError("caught_up returned while the answer was still being fetched")
    await bot.caught_up()
    assert tg.bot_texts(alice.id) == ["Late."]
