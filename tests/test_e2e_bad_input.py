"""Bad input end to end: every odd argument, message kind and button gets a short clear reply in the
user's language, never the generic error, and nothing is stored or charged for it."""

from __future__ import annotations

import logging

import pytest

from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import ledger

ADMIN = 4242
BOT = "@kimi_test_bot"
GENERIC = ("went wrong", "出了点问题")


def assert_no_unhandled_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]


async def test_admin_budget_refuses_bad_amounts_and_ids_before_storing_anything(
    start_bot, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
):
    bot = await start_bot(admin_user_ids=str(ADMIN))
    admin = tg.user(id=ADMIN, first_name="Admin")
    cases = [
        ("/budget 2 nan", "not an amount"),
        ("/budget 2 inf", "not an amount"),
        ("/budget 2 -Infinity", "not an amount"),
        ("/budget 2 1e309", "not an amount"),
        ("/budget 2 " + "9" * 300, "too large"),
        ("/budget 2 -5", "can't be negative"),
        ("/budget 2 0.0000001", "decimal places"),
        ("/budget 2 five", "not an amount"),
        ("/budget 12345678901234567890 5", "outside the range of Telegram user ids"),
        ("/budget 12345678901234567890", "outside the range of Telegram user ids"),
        ("/budget ² 5", "not a Telegram id"),
        ("/budget -7 5", "outside the range"),
    ]
    for command, expected in cases:
        await tg.send_text(admin, command)
        reply = await tg.wait_for_message(admin.id)
        assert expected in reply.text, (command, reply.text)
        assert "Usage: /budget" in reply.text
        assert not any(generic in reply.text for generic in GENERIC)
        assert "9" * 41 not in reply.text  # only an excerpt of the 300 digits is echoed
    for user_id in (2, 7):
        assert await bot.services.store.get_user(user_id) is None
    # Looking at a user who never wrote shows the default and does not create them either.
    await tg.send_text(admin, "/budget 3")
    shown = await tg.wait_for_message(admin.id)
    assert "User 3: 1000.00 元点 (default)" in shown.text
    assert await bot.services.store.get_user(3) is None
    # A good amount typed on a Chinese keyboard is read exactly.
    await tg.send_text(admin, "/budget 2 １２．５")
    await tg.wait_for_message(admin.id, lambda m: "12.50" in m.text)
    assert (await bot.services.store.get_user(2)).budget_override_micro == 12_500_000
    assert_no_unhandled_errors(caplog)


async def test_bad_arguments_in_chinese(start_bot, tg: FakeTelegram):
    bot = await start_bot(admin_user_ids=str(ADMIN))
    admin = tg.user(id=ADMIN, first_name="管理员", language_code="zh-hans")
    await tg.send_text(admin, "/budget 2 nan")
    reply = await tg.wait_for_message(admin.id)
    assert "不是有效金额" in reply.text and "用法" in reply.text
    await tg.send_text(admin, "/budget 99999999999999999999 1")
    reply = await tg.wait_for_message(admin.id)
    assert "超出了 Telegram 用户 ID 的范围" in reply.text
    await tg.send_text(admin, "/model " + "模" * 3000)
    reply = await tg.wait_for_message(admin.id)
    assert "未知或未定价的模型" in reply.text and "模" * 41 not in reply.text
    assert await bot.services.store.get_user(2) is None


async def test_an_overlong_model_name_is_excerpted_not_echoed(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, caplog: pytest.LogCaptureFixture
):
    bot = await start_bot()
    amy = tg.user(first_name="Amy")
    await tg.send_text(amy, "/model " + "x" * 4000)
    reply = await tg.wait_for_message(amy.id)
    assert reply.text.startswith("Unknown or unpriced model: " + "x" * 39 + "…")
    assert "kimi-k2-0905-preview" in reply.text  # the choices are still listed
    assert (await bot.services.store.get_user(amy.id)).model is None
    assert_no_unhandled_errors(caplog)


# --- message kinds the bot can't read ------------------------------------------------------------

KINDS_EN = {
    "video": "videos",
    "voice": "voice messages",
    "audio": "audio files",
    "video_note": "video messages",
    "sticker": "stickers",
    "animation": "GIFs",
    "location": "locations",
    "venue": "venues",
    "contact": "contacts",
    "poll": "polls",
    "dice": "dice",
    "game": "games",
}


async def test_every_other_kind_of_message_gets_a_short_reply_in_a_private_chat(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, caplog: pytest.LogCaptureFixture
):
    bot = await start_bot()
    amy = tg.user(first_name="Amy")
    for kind, name in KINDS_EN.items():
        await tg.send_media(amy, kind)
        reply = await tg.wait_for_message(amy.id)
        assert reply.text.startswith(f"I can't read {name}. I answer text messages"), (kind, reply.text)
    li = tg.user(first_name="Li", language_code="zh-hans")
    await tg.send_media(li, "voice")
    reply = await tg.wait_for_message(li.id)
    assert reply.text.startswith("我读不了语音消息。我可以回答文字消息")
    assert fake_kimi.requests == [] and ledger(bot) == []
    assert_no_unhandled_errors(caplog)


async def test_other_kinds_addressed_to_the_bot_in_a_group_get_a_reply_and_the_rest_none(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    # As an admin the bot receives every message, so its own rules must pick what is for it.
    group = tg.group(bot_status="administrator")
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob", language_code="zh")
    video = await tg.send_media(alice, "video", caption=f"{BOT} what happens here?", chat=group)
    reply = await tg.wait_for_message(group.id)
    assert reply.text.startswith("I can't read videos.")
    assert reply.reply_to_message_id == video["message_id"]
    # A sticker in reply to the bot's message is addressed to it too (in Bob's language).
    sticker = await tg.send_media(bob, "sticker", chat=group, reply_to=reply)
    answer = await tg.wait_for_message(group.id)
    assert answer.text.startswith("我读不了贴纸。") and answer.reply_to_message_id == sticker["message_id"]
    # Other members' media, polls and stickers are none of the bot's business.
    await tg.send_media(alice, "video", caption="holiday clip", chat=group)
    await tg.send_media(alice, "poll", chat=group)
    await tg.send_media(bob, "sticker", chat=group, reply_to=video)
    await bot.caught_up()
    assert len(tg.messages(group.id)) == 2
    assert fake_kimi.requests == []


async def test_unknown_commands_are_answered_where_they_are_meant_for_the_bot(start_bot, tg: FakeTelegram):
    bot = await start_bot()
    amy = tg.user(first_name="Amy")
    await tg.send_text(amy, "/frobnicate now")
    reply = await tg.wait_for_message(amy.id)
    assert reply.text == "I don't know the command /frobnicate. /help lists the ones I have."
    group = tg.group()
    li = tg.user(first_name="Li", language_code="zh")
    await tg.send_text(li, "/frobnicate", chat=group)  # may be another bot's command: no reply
    await tg.send_text(li, f"/frobnicate{BOT}", chat=group)
    reply = await tg.wait_for_message(group.id)
    assert reply.text == "我不认识命令 /frobnicate。/help 查看可用的命令。"
    await bot.caught_up()
    assert len(tg.messages(group.id)) == 1


# --- buttons -------------------------------------------------------------------------------------

EXPIRED = ("This button has expired.", "This request has expired. Please send the document again.")


async def test_every_button_press_is_answered_and_unknown_ones_have_expired(
    start_bot, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
):
    await start_bot()
    amy = tg.user(first_name="Amy")
    await tg.send_text(amy, "/model")
    listing = await tg.wait_for_message(amy.id)
    presses = {
        data: await tg.press_stale_button(amy, listing, data)
        for data in ("stop:no-such-answer", "model:gpt-4o", "doc:yes:long-gone", "v0:something", "x" * 64)
    }
    for data, query_id in presses.items():
        answered = await tg.wait_until(lambda q=query_id: tg.callback_answer(q), description=data)
        assert answered["text"] in EXPIRED, (data, answered)
    li = tg.user(first_name="Li", language_code="zh-hans")
    query_id = await tg.press_stale_button(li, listing, "unknown")
    answered = await tg.wait_until(lambda: tg.callback_answer(query_id))
    assert answered["text"] == "这个按钮已失效。"
    assert_no_unhandled_errors(caplog)


async def test_a_button_whose_handler_fails_is_still_answered(start_bot, tg: FakeTelegram, monkeypatch):
    bot = await start_bot()
    amy = tg.user(first_name="Amy")
    await tg.send_text(amy, "/model")
    listing = await tg.wait_for_message(amy.id)

    async def broken(model: str) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.services.catalog, "find", broken)
    query_id = await tg.press_button(amy, listing, "model:kimi-k2-thinking")
    answered = await tg.wait_until(lambda: tg.callback_answer(query_id))
    assert answered["text"] == "Sorry, something went wrong on my side. Please try again."


async def test_telegram_refusing_a_reply_is_logged_without_a_traceback(
    start_bot, tg: FakeTelegram, caplog: pytest.LogCaptureFixture
):
    await start_bot()
    amy = tg.user(first_name="Amy")
    tg.fail_next("sendMessage", "Forbidden: bot was blocked by the user", status=403, times=1)
    await tg.send_text(amy, "/help")
    await tg.wait_for(lambda c: c.method == "sendMessage" and c.status == 403)
    await tg.wait_until(lambda: any("Forbidden" in r.getMessage() for r in caplog.records))
    assert_no_unhandled_errors(caplog)
    assert tg.messages(amy.id) == []  # no generic error sent after a 403 either


# --- every command with junk arguments ------------------------------------------------------------

COMMANDS = (
    "start help model balance cost reset stop budget export report allow deny users summary think search"
).split()
JUNK = "nan 1e309 -Infinity " + "9" * 300 + " 12345678901234567890 " + "x" * 3000


async def test_every_command_with_junk_arguments_gets_a_short_specific_reply(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, caplog: pytest.LogCaptureFixture
):
    bot = await start_bot(admin_user_ids=str(ADMIN))
    admin = tg.user(id=ADMIN, first_name="Admin")
    for command in COMMANDS:
        sent = await tg.send_text(admin, f"/{command} {JUNK}")
        await bot.caught_up()
        replies = [m for m in tg.messages(admin.id) if m.message_id > sent["message_id"]]
        assert replies, command  # every command answers
        for reply in replies:
            assert not any(generic in reply.visible_text for generic in GENERIC), (
                command,
                reply.visible_text,
            )
            assert "x" * 41 not in reply.visible_text and "9" * 41 not in reply.visible_text, command
    assert fake_kimi.chat_requests == []
    assert_no_unhandled_errors(caplog)


async def test_a_long_file_name_is_shown_as_an_excerpt(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot(default_budget="0.01")
    alice = tg.user()
    name = "quarterly-report-" + "x" * 230 + ".txt"
    await tg.send_document(alice, b"Otters live in rivers. " * 40, name)
    told = await tg.wait_for_message(alice.id, lambda m: "元点" in m.visible_text)
    assert "would cost about" in told.visible_text
    assert "«quarterly-report-xxx" in told.visible_text and "x" * 60 not in told.visible_text
