"""Bad input end to end: every odd argument, message kind and button gets a short clear reply in the
user's language, never the generic error, and nothing is stored or charged for it."""

from __future__ import annotations

import logging

import pytest

from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram

ADMIN = 4242
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
