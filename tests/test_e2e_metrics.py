"""Polling mode with METRICS_LISTEN: /healthz follows the database and Telegram, /metrics counts."""

import aiohttp

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, await response.text()


def _sample(metrics: str, name: str) -> float:
    """The value of one sample line (`name{labels} value`), 0 when absent."""
    for line in metrics.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{") and line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_healthz_and_metrics_in_polling_mode(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(metrics_listen="127.0.0.1:0")
    port = bot.services.http_port
    assert port

    status, body = await _get(port, "/healthz")
    assert status == 200, body

    alice = tg.user(first_name="Alice")
    fake_kimi.script(Reply(content="A counted answer.", chunk_tokens=2, delay=0.01))
    await tg.send_text(alice, "Hi Kimi")
    await tg.wait_for_message(alice.id, lambda m: "counted answer" in (m.text or ""), timeout=20)
    await tg.wait_until(lambda: "kimi_bot_active_streams 0.0" in bot.services.metrics.exposition().decode())

    status, metrics = await _get(port, "/metrics")
    assert status == 200
    assert _sample(metrics, 'kimi_bot_turns_total{outcome="done"}') == 1
    assert _sample(metrics, 'kimi_bot_updates_handled_total{kind="message"}') == 1
    assert _sample(metrics, 'kimi_bot_telegram_calls_total{method="sendMessage"}') >= 1
    assert _sample(metrics, "kimi_bot_upstream_first_token_seconds_count") == 1
    assert _sample(metrics, "kimi_bot_upstream_total_seconds_count") == 1
    assert _sample(metrics, "kimi_bot_queue_wait_seconds_count") == 1
    assert _sample(metrics, "kimi_bot_charged_yuandian_total") > 0
    assert _sample(metrics, "kimi_bot_active_streams") == 0

    # Telegram answers 502 (its front end is down): not ready until Telegram answers again.
    tg.fail_next("sendMessage", "Bad Gateway", status=502)
    await tg.send_text(alice, "/help")
    await tg.wait_for(lambda c: c.method == "sendMessage" and c.status == 502)
    await tg.wait_until(lambda: not bot.services.health.telegram_reachable)
    status, body = await _get(port, "/healthz")
    assert status == 503 and '"telegram": false' in body

    await tg.send_text(alice, "/help")
    await tg.wait_for(lambda c: c.method == "sendMessage" and c.status == 200 and "/model" in str(c.params))
    await tg.wait_until(lambda: bot.services.health.telegram_reachable)
    assert (await _get(port, "/healthz"))[0] == 200

    # The database goes away: not ready.
    await bot.services.store.close()
    status, body = await _get(port, "/healthz")
    assert status == 503 and '"database": false' in body
