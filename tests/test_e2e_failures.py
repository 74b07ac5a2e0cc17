"""What users see when things go wrong: upstream errors, cut streams, flood control, rejected
formatting, small budgets under a burst of messages, and start-up without settings."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.kimi import FakeError, FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.harness import BOT_TOKEN, KIMI_KEY, ON_BOTH_DATABASES

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (FakeError.content_filter(), "risk"),
        (FakeError.context_overflow(262144), "too long"),
        (FakeError.quota_exhausted(), "credit"),
        (FakeError.authentication(), "admin"),
        (FakeError.model_not_found("kimi-k2-0905-preview"), "model"),
    ],
    ids=["content_filter", "context_overflow", "quota", "auth", "not_found"],
)
@ON_BOTH_DATABASES
async def test_upstream_errors_get_a_short_clear_reply_and_cost_nothing(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, error: FakeError, expected: str
):
    bot = await start_bot()
    user = tg.user()
    # Context overflow is retried once with a shorter history, so it must fail twice.
    fake_kimi.script(Reply(error=error), Reply(error=error))
    await tg.send_text(user, "hello")
    reply = await tg.wait_for_message(user.id, timeout=20)
    assert expected in reply.text.lower()
    assert "Traceback" not in reply.text and KIMI_KEY not in reply.text
    await bot.caught_up()
    assert await bot.services.store.usage_totals(user.id) == []
    assert await bot.budget(user.id) == (0, 0)  # nothing spent, and the hold was released


async def test_rate_limits_are_retried_before_the_first_token(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()
    user = tg.user()
    fake_kimi.script(Reply(error=FakeError.rate_limited(after=1)), Reply(content="made it"))
    await tg.send_text(user, "hello")
    reply = await tg.wait_for_message(user.id, timeout=30)
    assert reply.text == "made it"
    assert len(fake_kimi.chat_requests) == 2


async def test_exhausted_account_alerts_the_admins(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    admin = tg.user(first_name="Admin")
    tg.private_chat(admin)
    await start_bot(admin_user_ids=str(admin.id))
    user = tg.user()
    fake_kimi.script(Reply(error=FakeError.quota_exhausted()))
    await tg.send_text(user, "hello")
    await tg.wait_for_message(user.id, timeout=20)
    alert = await tg.wait_until(lambda: tg.messages(admin.id), timeout=10)
    assert "top up" in alert[0].text


async def test_a_cut_stream_keeps_the_partial_answer_and_says_so(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()
    user = tg.user()
    fake_kimi.script(Reply(content="The first half of the answer arrived", drop_before_done=True))
    await tg.send_text(user, "hello")
    reply = await tg.wait_for_message(user.id, lambda m: "cut off" in (m.text or ""), timeout=20)
    assert reply.text.startswith("The first half of the answer arrived")


async def test_flood_control_while_streaming_is_waited_out_and_coalesced(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(stream_mode="edit")
    user = tg.user()
    tg.flood_next("editMessageText", retry_after=2, times=1)
    answer = "Streaming through flood control. " * 40
    fake_kimi.script(Reply(content=answer, chunk_tokens=4, delay=0.02))
    await tg.send_text(user, "hello")
    await tg.wait_until(lambda: tg.messages(user.id) and not tg.messages(user.id)[0].reply_markup, timeout=30)
    assert tg.messages(user.id)[0].text == answer.strip()
    edits = tg.calls("editMessageText")
    flooded = [c for c in edits if c.status == 429]
    assert len(flooded) == 1
    after = [c for c in edits if c.time > flooded[0].time and c.status == 200]
    assert after and after[0].time - flooded[0].time >= 1.9  # waited as told before the next edit


async def test_rejected_formatting_falls_back_to_plain_text(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(stream_mode="edit")
    user = tg.user()
    tg.fail_next("sendMessage", "Bad Request: can't parse entities: unsupported entity", status=400, times=1)
    tg.fail_next(
        "editMessageText", "Bad Request: can't parse entities: unsupported entity", status=400, times=5
    )
    fake_kimi.script(Reply(content="**Bold** text that Telegram refuses to format."))
    await tg.send_text(user, "hello")
    await tg.wait_until(
        lambda: tg.messages(user.id) and "refuses to format" in tg.messages(user.id)[-1].text, timeout=20
    )
    await bot.caught_up()
    final = tg.messages(user.id)[-1]
    assert final.text == "Bold text that Telegram refuses to format."  # rendered text, no raw **


@ON_BOTH_DATABASES
async def test_burst_of_messages_against_a_small_budget(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(default_budget="2", max_output_tokens=100)
    user = tg.user()
    for index in range(6):
        fake_kimi.script(Reply(content=f"answer {index} " + "z" * 300, chunk_tokens=10, delay=0.01))
    for index in range(6):
        await tg.send_text(user, f"question {index}")
    await tg.wait_until(lambda: len(tg.messages(user.id)) >= 6, timeout=60)
    await bot.caught_up()
    texts = tg.bot_texts(user.id)
    answered = [t for t in texts if t.startswith("answer")]
    refused = [t for t in texts if not t.startswith("answer") and "budget" in t.lower()]
    assert answered and refused and len(answered) + len(refused) == 6
    assert [int(t.split()[1]) for t in answered] == sorted(int(t.split()[1]) for t in answered)
    services = bot.services
    view = await services.budgets.view(await services.store.get_user(user.id))
    assert view.spent_micro <= 2_000_000 and view.reserved_micro == 0
    assert "resets" in refused[0]


async def test_secrets_never_reach_the_log(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, caplog):
    caplog.set_level(logging.DEBUG)
    await start_bot(log_level="DEBUG")
    user = tg.user()
    fake_kimi.script(Reply(error=FakeError.authentication()))
    await tg.send_text(user, "hello")
    await tg.wait_for_message(user.id, timeout=20)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # something was logged, including the upstream error
    assert KIMI_KEY not in logged and BOT_TOKEN not in logged and BOT_TOKEN.split(":")[1] not in logged


def run_bot_process(env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MOONSHOT_"))}
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=cwd,
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_missing_settings_exit_with_one_clear_line(tmp_path: Path):
    result = run_bot_process({}, tmp_path)
    assert result.returncode == 2, result.stderr  # README: a bad setting exits with status 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TELEGRAM_BOT_TOKEN" in lines[0] and "MOONSHOT_API_KEY" in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_setting_names_the_variable_and_choices(tmp_path: Path):
    result = run_bot_process(
        {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "MOONSHOT_API_KEY": KIMI_KEY, "BUDGET_PERIOD": "yearly"}, tmp_path
    )
    assert result.returncode == 2, result.stderr  # README: a bad setting exits with status 2
    assert "BUDGET_PERIOD" in result.stderr and "monthly" in result.stderr
    assert KIMI_KEY not in result.stderr and "Traceback" not in result.stderr


async def test_the_real_process_answers_and_stops_on_sigterm(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi
):
    env = {
        "TELEGRAM_BOT_TOKEN": tg.token,
        "TELEGRAM_API_URL": tg.base_url,
        "TELEGRAM_FILE_URL": tg.base_file_url,
        "MOONSHOT_API_KEY": KIMI_KEY,
        "MOONSHOT_BASE_URL": fake_kimi.base_url,
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "MOONSHOT_"))}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=tmp_path,
        env={**clean, **env, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        user = tg.user()
        fake_kimi.script(Reply(content="from a real process"))
        await tg.send_text(user, "hello")
        reply = await tg.wait_for_message(user.id, timeout=60)
        assert reply.text == "from a real process"
        assert (tmp_path / "data" / "bot.db").exists()  # the default database folder was created
    finally:
        process.terminate()
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert KIMI_KEY not in stderr.decode() and tg.token not in stderr.decode()


def test_malformed_pricing_file_fails_start_up_with_line_and_reason(tmp_path: Path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."kimi-k2-0905-preview"]\ninput_ratio = \n', encoding="utf-8")
    result = run_bot_process(
        {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "MOONSHOT_API_KEY": KIMI_KEY, "PRICING_FILE": str(prices)}, tmp_path
    )
    assert result.returncode == 2, result.stderr  # README: a bad setting exits with status 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "prices.toml" in lines[0] and "line 2" in lines[0]


def test_an_unpriced_default_model_fails_start_up(tmp_path: Path):
    result = run_bot_process(
        {"TELEGRAM_BOT_TOKEN": BOT_TOKEN, "MOONSHOT_API_KEY": KIMI_KEY, "DEFAULT_MODEL": "gpt-4o"}, tmp_path
    )
    assert result.returncode == 2, result.stderr  # README: a bad setting exits with status 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "DEFAULT_MODEL" in lines[0] and "PRICING_FILE" in lines[0]


async def test_a_service_that_stays_down_gets_a_clear_reply(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()
    user = tg.user()
    fake_kimi.script(*[Reply(error=FakeError.server_error()) for _ in range(8)])
    await tg.send_text(user, "hello")
    reply = await tg.wait_for_message(user.id, timeout=60)
    assert "try again" in reply.text.lower() and "Traceback" not in reply.text
    assert 2 <= len(fake_kimi.chat_requests) <= 6  # retried with backoff, within a bounded number
    assert await bot.services.store.usage_totals(user.id) == []


def test_blank_required_settings_from_the_example_file_are_named(tmp_path: Path):
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text(encoding="utf-8"), encoding="utf-8")
    result = run_bot_process({}, tmp_path)
    assert result.returncode == 2, result.stderr  # README: a bad setting exits with status 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "TELEGRAM_BOT_TOKEN" in lines[0] and "empty" in lines[0]
