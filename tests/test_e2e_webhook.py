"""Webhook mode, one replica on SQLite: Telegram (the fake) POSTs updates through a proxy."""

from __future__ import annotations

import aiohttp
import pytest

from bot.settings import SettingsError, load_settings
from storage.single_process import DatabaseInUse
from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.round_robin_proxy import RoundRobinProxy
from tests.fakes.telegram import FakeTelegram, TelegramRules
from tests.harness import BOT_TOKEN, RunningBot, bot_settings

SECRET = "webhook-Secret_42"


@pytest.fixture
async def tg():
    async with FakeTelegram(token=BOT_TOKEN, rules=TelegramRules(webhook_requires_https=False)) as fake:
        yield fake


async def _post(url: str, body: object, headers: dict[str, str]) -> int:
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as response:
        return response.status


async def _get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


def test_a_webhook_url_needs_a_host():
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_URL"):
        load_settings(
            _env_file=None,
            telegram_bot_token="1:x",
            moonshot_api_key="k",
            telegram_webhook_url="https:///telegram/webhook",  # compose without BOT_DOMAIN
            telegram_webhook_secret="s",
        )


def test_webhook_mode_requires_its_secret():
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET"):
        load_settings(
            _env_file=None,
            telegram_bot_token="1:x",
            moonshot_api_key="k",
            telegram_webhook_url="https://bot.example.com/hook",
        )


async def test_one_replica_behind_the_webhook(tmp_path, tg: FakeTelegram, fake_kimi: FakeKimi):
    async with RoundRobinProxy() as proxy:
        settings = bot_settings(
            tmp_path,
            tg,
            fake_kimi,
            telegram_webhook_url=f"{proxy.url}/telegram/hook",
            telegram_webhook_secret=SECRET,
            webhook_listen="127.0.0.1:0",
        )
        async with RunningBot(settings) as bot:
            own = f"http://127.0.0.1:{bot.services.http_port}"
            proxy.backends.append(own)
            [set_webhook] = tg.calls("setWebhook")
            assert set_webhook.params["url"] == f"{proxy.url}/telegram/hook"
            assert set_webhook.params["secret_token"] == SECRET
            assert "callback_query" in set_webhook.params["allowed_updates"]
            assert not tg.calls("deleteWebhook") and not tg.calls("getUpdates", include_polling=True)

            alice = tg.user(first_name="Alice")
            await tg.send_text(alice, "Hi Kimi")
            await tg.wait_for_message(alice.id, lambda m: "Hi Kimi" in (m.text or ""), timeout=20)

            # A forged POST (no secret, a wrong one) is refused and does nothing.
            forged = {
                "update_id": 1,
                "message": {
                    "message_id": 99,
                    "date": 0,
                    "chat": {"id": alice.id, "type": "private"},
                    "from": {"id": alice.id, "is_bot": False, "first_name": "Mallory"},
                    "text": "FORGED question",
                },
            }
            assert await _post(f"{own}/telegram/hook", forged, {}) == 403
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
            assert await _post(f"{own}/telegram/hook", forged, wrong) == 403

            # The answer to a delivery is lost: Telegram retries, the retry is recognised.
            proxy.lose_answers = 1
            fake_kimi.script(Reply(content="Once only.", chunk_tokens=2, delay=0.01))
            sent = await tg.send_text(alice, "Second question")
            await tg.wait_for_message(alice.id, lambda m: "Once only" in (m.text or ""), timeout=20)
            update_id = next(
                u["update_id"]
                for u in tg.world.updates + tg.updates_delivered
                if u.get("message", {}).get("message_id") == sent["message_id"]
            )
            await tg.wait_until(lambda: tg.webhook.succeeded(update_id))
            assert len(proxy.backends_of(update_id)) == 2  # delivered twice
            await tg.send_text(alice, "/help")  # a sentinel: handled after the retry
            await tg.wait_for_message(alice.id, lambda m: "/model" in (m.text or ""))
            asked = [r.json["messages"][-1]["content"] for r in fake_kimi.chat_requests]
            assert asked.count("Second question") == 1 and not any("FORGED" in q for q in asked)
            assert sum("Once only" in t for t in tg.bot_texts(alice.id)) == 1

            status, body = await _get(f"{own}/healthz")
            assert status == 200, body
            status, metrics = await _get(f"{own}/metrics")
            assert status == 200 and "kimi_bot_duplicate_updates_total 1.0" in metrics
            assert 'kimi_bot_turns_total{outcome="done"} 2.0' in metrics

            # A second process on the same SQLite file is refused, naming the problem.
            with pytest.raises(DatabaseInUse, match="another bot process"):
                async with RunningBot(bot_settings(tmp_path, tg, fake_kimi)):
                    pass
        assert not tg.calls("deleteWebhook")  # a stopping replica leaves the webhook to the others
        assert tg.world.webhook_url

        # Back to polling: the webhook is deleted first, then updates are polled.
        async with RunningBot(bot_settings(tmp_path, tg, fake_kimi)):
            assert len(tg.calls("deleteWebhook")) == 1
            await tg.send_text(alice, "/help")
            await tg.wait_until(lambda: tg.calls("getUpdates", include_polling=True))
            await tg.wait_for_message(alice.id, lambda m: "/model" in (m.text or ""))
