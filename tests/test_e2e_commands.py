"""Commands end to end: /start, /help, /model, /balance, /cost, /reset, /budget, and access control."""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.harness import ON_BOTH_DATABASES

ADMIN = 4242


async def test_commands_are_registered_in_english_and_chinese(start_bot, tg: FakeTelegram):
    await start_bot()
    english = {c["command"]: c["description"] for c in tg.commands()}
    chinese = {c["command"]: c["description"] for c in tg.commands(language_code="zh")}
    assert {"start", "help", "model", "balance", "cost", "reset"} <= set(english)
    assert english.keys() == chinese.keys()
    assert english["reset"] != chinese["reset"]


async def test_start_speaks_the_users_language(start_bot, tg: FakeTelegram):
    await start_bot(default_budget="250")
    li = tg.user(first_name="Li", language_code="zh-hans")
    await tg.send_text(li, "/start")
    reply = await tg.wait_for_message(li.id)
    assert "你好" in reply.text and "250.00" in reply.text and "/model" in reply.text


async def test_model_lists_priced_models_and_switches(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()
    amy = tg.user(first_name="Amy")
    await tg.send_text(amy, "/model")
    listing = await tg.wait_for_message(amy.id)
    assert "kimi-k2-0905-preview" in listing.text and "kimi-k2-thinking" in listing.text
    assert "1429 / 5714" in listing.text  # 元点 per 1M tokens at 700 / 175 tokens per 元点
    assert "256K" in listing.text
    # A model Kimi lists but the price table does not know is never offered.
    assert "model:kimi-k2-thinking" in listing.callback_data
    await tg.press_button(amy, listing, "model:kimi-k2-thinking")
    await tg.wait_until(lambda: "kimi-k2-thinking" in tg.visible_text(amy.id).split("\n")[-1], timeout=10)
    user = await bot.services.store.get_user(amy.id)
    assert user.model == "kimi-k2-thinking"

    await tg.send_text(amy, "/model moonshot-v1-8k")
    await tg.wait_for_message(amy.id, lambda m: "moonshot-v1-8k" in m.text)
    await tg.send_text(amy, "/model gpt-4o")
    refused = await tg.wait_for_message(amy.id)
    assert "gpt-4o" in refused.text and "kimi-k2-0905-preview" in refused.text
    assert (await bot.services.store.get_user(amy.id)).model == "moonshot-v1-8k"
    fake_kimi.script(Reply(content="ok"))
    await tg.send_text(amy, "hi")
    await tg.wait_for_message(amy.id, lambda m: m.text == "ok", timeout=15)
    assert fake_kimi.chat_requests[-1].json["model"] == "moonshot-v1-8k"


@ON_BOTH_DATABASES
async def test_balance_and_cost_report_exact_points(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(default_budget="100")
    ben = tg.user(first_name="Ben")
    fake_kimi.script(
        Reply(
            content="x" * 4000, usage={"prompt_tokens": 200, "completion_tokens": 1000, "total_tokens": 1200}
        )
    )
    await tg.send_text(ben, "hello")
    await tg.wait_for_message(ben.id, timeout=15)
    await bot.caught_up()
    await tg.send_text(ben, "/cost")
    cost = await tg.wait_for_message(ben.id)
    # The seed's example: 200 input + 1000 output tokens on kimi-k2-0905-preview = 6 元点.
    assert "Last reply: 6.00 元点" in cost.text
    assert "kimi-k2-0905-preview: 200 / 0 / 1000 – 6.00 元点" in cost.text
    assert "All time: 6.00 元点" in cost.text
    await tg.send_text(ben, "/balance")
    balance = await tg.wait_for_message(ben.id)
    assert "94.00 元点 left" in balance.text and "Spent: 6.00" in balance.text
    assert "Kimi account balance" not in balance.text  # only admins see the upstream account


async def test_reset_starts_a_new_conversation(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot()
    cal = tg.user(first_name="Cal")
    fake_kimi.script(Reply(content="first answer"), Reply(content="second answer"))
    await tg.send_text(cal, "remember 7")
    await tg.wait_for_message(cal.id, lambda m: m.text == "first answer", timeout=15)
    await tg.send_text(cal, "/reset")
    await tg.wait_for_message(cal.id, lambda m: "New conversation" in m.text)
    await tg.send_text(cal, "what number?")
    await tg.wait_for_message(cal.id, lambda m: m.text == "second answer", timeout=15)
    sent = [m["content"] for m in fake_kimi.chat_requests[-1].json["messages"] if m["role"] != "system"]
    assert sent == ["what number?"]


async def test_admin_budget_command_and_upstream_balance(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(admin_user_ids=str(ADMIN), default_budget="10")
    admin = tg.user(id=ADMIN, first_name="Admin")
    member = tg.user(first_name="Member")
    await tg.send_text(member, "/budget 1 5")
    assert "admins" in (await tg.wait_for_message(member.id)).text
    await tg.send_text(admin, f"/budget {member.id} 2.5")
    await tg.wait_for_message(admin.id, lambda m: "2.50" in m.text)
    user = await bot.services.store.get_user(member.id)
    assert user.budget_override_micro == 2_500_000
    await tg.send_text(admin, f"/budget {member.id}")
    shown = await tg.wait_for_message(admin.id)
    assert "2.50" in shown.text and "admin" in shown.text
    await tg.send_text(admin, "/balance")
    balance = await tg.wait_for_message(admin.id)
    assert "Kimi account balance: 50" in balance.text


async def test_allowed_users_only(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    friend = tg.user(first_name="Friend")
    stranger = tg.user(first_name="Stranger")
    await start_bot(allowed_user_ids=str(friend.id))
    await tg.send_text(stranger, "hello?")
    refusal = await tg.wait_for_message(stranger.id)
    assert "private" in refusal.text and str(stranger.id) in refusal.text
    assert fake_kimi.chat_requests == []
    fake_kimi.script(Reply(content="welcome"))
    await tg.send_text(friend, "hello")
    await tg.wait_for_message(friend.id, lambda m: m.text == "welcome", timeout=15)
