"""Two `python -m bot` replicas in webhook mode on one PostgreSQL, behind a round-robin proxy, with
the fake Telegram delivering webhooks like Telegram (secret header, parallel connections, retries).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.bot_process import BotProcess
from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.round_robin_proxy import RoundRobinProxy
from tests.fakes.telegram import FakeTelegram, TelegramRules
from tests.harness import BOT_TOKEN
from tests.waiting import START_CEILING, WAIT_CEILING

pytestmark = pytest.mark.slow  # subprocess bots: 10-20 s a test (tests/conftest.py runs them first)

SECRET = "replicas-Secret_7"
BOT = "@kimi_test_bot"


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=BOT_TOKEN, rules=TelegramRules(webhook_requires_https=False)) as fake:
        yield fake


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, await response.text()


@contextlib.asynccontextmanager
async def replicas(
    tmp_path: Path, tg: FakeTelegram, kimi: FakeKimi, database_url: str, count: int = 2, **env: str
) -> AsyncIterator[tuple[RoundRobinProxy, list[BotProcess]]]:
    async with RoundRobinProxy() as proxy, contextlib.AsyncExitStack() as stack:
        bots = []
        for number in range(count):
            port = free_port()
            folder = tmp_path / f"replica{number}"
            folder.mkdir()
            bot = BotProcess(
                folder,
                tg,
                kimi,
                DATABASE_URL=database_url,
                TELEGRAM_WEBHOOK_URL=f"{proxy.url}/tg/webhook",
                TELEGRAM_WEBHOOK_SECRET=SECRET,
                WEBHOOK_LISTEN=f"127.0.0.1:{port}",
                STREAM_MODE="edit",
                BUDGET_PERIOD="total",
                **env,
            )
            bot.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
            await stack.enter_async_context(bot)
            bots.append(bot)
            proxy.backends.append(bot.url)  # type: ignore[attr-defined]
        # Each replica calls setWebhook once it listens (both start at once: a busy machine's start
        # can take long, START_CEILING).
        await tg.wait_until(
            lambda: tg.world.webhook_sets >= count, timeout=START_CEILING, description="setWebhook x2"
        )
        yield proxy, bots


def asked(kimi: FakeKimi) -> list[str]:
    """The question of every chat request Kimi got, in order."""
    return [r.json["messages"][-1]["content"] for r in kimi.chat_requests]


async def test_two_replicas_answer_each_question_once_in_order_and_stop_across(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi, pg_url: str
):
    async with replicas(tmp_path, tg, fake_kimi, pg_url) as (proxy, bots):
        for bot in bots:
            status, body = await get(f"{bot.url}/healthz")  # type: ignore[attr-defined]
            assert status == 200, body
        status, body = await get(f"{proxy.url}/tg/webhook")  # a GET is not an update
        assert status in (404, 405)

        # Four questions in a row: Telegram delivers them one by one, the proxy alternates, so
        # consecutive questions land on different replicas while the previous answer streams.
        alice = tg.user(first_name="Alice")
        fake_kimi.script(*[Reply(content=f"Answer {n}. " + "word " * 30, delay=0.02) for n in range(1, 5)])
        proxy.lose_answers = 1  # the first delivery's answer is lost: Telegram retries it
        for n in range(1, 5):
            await tg.send_text(alice, f"Question {n}")
        await tg.wait_until(
            lambda: (
                sum(t.startswith("Answer") for t in tg.bot_texts(alice.id)) == 4
                and not any(m.reply_markup for m in tg.messages(alice.id))
            ),
            timeout=2 * WAIT_CEILING,  # four answers one after the other
        )
        assert asked(fake_kimi) == [f"Question {n}" for n in range(1, 5)]  # once each, in order
        for request in fake_kimi.chat_requests[1:]:  # each turn saw the one before it, answered
            assert request.json["messages"][-2]["role"] == "assistant"
        assert [t.split(".")[0] for t in tg.bot_texts(alice.id)] == [f"Answer {n}" for n in range(1, 5)]
        first = next(u["update_id"] for u in tg.updates_delivered if u["message"]["text"] == "Question 1")
        assert len(set(proxy.backends_of(first))) == 2  # the retry went to the other replica
        assert {f.backend for f in proxy.forwarded} == {0, 1}

        # A stop pressed on the replica that is not streaming the answer stops it.
        fake_kimi.script(Reply(content="Long story. " * 400, chunk_tokens=2, delay=0.03))
        await tg.send_text(alice, "Tell me a long story")
        streaming = await tg.wait_for_message(
            alice.id, lambda m: bool(m.callback_data) and "Long story" in (m.text or ""), timeout=30
        )
        question_id = tg.updates_delivered[-1]["update_id"]
        await tg.press_button(alice, streaming, streaming.callback_data[0])
        press_id = (
            tg.world.updates[-1]["update_id"] if tg.world.updates else tg.updates_delivered[-1]["update_id"]
        )
        await tg.wait_until(lambda: not tg.message(alice.id, streaming.message_id).reply_markup, timeout=30)
        assert proxy.backends_of(question_id) != proxy.backends_of(press_id)
        final = tg.message(alice.id, streaming.message_id).text or ""
        assert len(final) < len("Long story. " * 400)

        # Both replicas count what they did; the stopped turn is counted once it has ended.
        async def metrics() -> list[str]:
            return [(await get(f"{bot.url}/metrics"))[1] for bot in bots]  # type: ignore[attr-defined]

        stopped = 'kimi_bot_turns_total{outcome="stopped"} 1.0'
        deadline = asyncio.get_running_loop().time() + WAIT_CEILING
        while asyncio.get_running_loop().time() < deadline:
            texts = await metrics()
            if any(stopped in text for text in texts):
                break
            await asyncio.sleep(0.1)  # polling the endpoint for the counter to appear
        assert sum(stopped in text for text in texts) == 1
        assert all("kimi_bot_updates_handled_total" in text for text in texts)

        # SIGTERM on one replica: it exits 0 and leaves the webhook to the other one.
        bots[0].signal(signal.SIGTERM)
        assert await bots[0].wait(15) == 0, bots[0].log
        assert tg.world.webhook_deletes == 0 and tg.world.webhook_url
        fake_kimi.script(Reply(content="Still here."))
        await tg.send_text(alice, "Anyone there?")
        await tg.wait_for_message(alice.id, lambda m: "Still here" in (m.text or ""), timeout=30)
    for bot in bots:
        assert "Traceback" not in bot.log, bot.log


async def test_two_replicas_streaming_into_one_group_get_no_429(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi, pg_url: str
):
    # No burst in a chat: any two messages to the group less than a second apart get a 429, so two
    # replicas each pacing only themselves would collide at once.
    tg.flood_limits.chat_burst = 1
    async with replicas(tmp_path, tg, fake_kimi, pg_url) as (proxy, bots):
        group = tg.group()
        members = [tg.user(first_name=name) for name in ("Ann", "Ben")]
        fake_kimi.script(
            *[
                Reply(content=f"Answer for {m.first_name}: " + "otters " * 150 + "done.", delay=0.03)
                for m in members
            ]
        )
        for member in members:
            await tg.send_text(member, f"{BOT} tell me about otters", chat=group)
        await tg.wait_until(
            lambda: (
                sum(m.visible_text.endswith("done.") and not m.callback_data for m in tg.messages(group.id))
                == 2
            ),
            timeout=90,
        )
        questions = [u["update_id"] for u in tg.updates_delivered if "message" in u]
        assert {proxy.backends_of(q)[0] for q in questions} == {0, 1}  # one answer per replica
        tg.assert_no_flood()


async def test_buttons_work_whichever_replica_gets_them(
    tmp_path: Path, tg: FakeTelegram, fake_kimi: FakeKimi, pg_url: str
):
    from tests.test_e2e_documents_helpers import make_pdf

    async with replicas(tmp_path, tg, fake_kimi, pg_url, DOCUMENT_CONFIRM_THRESHOLD="0") as (proxy, _bots):
        alice = tg.user(first_name="Alice")

        def last_update() -> int:
            return max(u["update_id"] for u in tg.world.updates + tg.updates_delivered)

        # The model keyboard: /model on one replica, the button on the other.
        await tg.send_text(alice, "/model")
        listing = await tg.wait_for_message(alice.id, lambda m: "model:kimi-k2-thinking" in m.callback_data)
        listed_by = last_update()
        await tg.press_button(alice, listing, "model:kimi-k2-thinking")
        pressed = last_update()
        await tg.wait_for_message(alice.id, lambda m: "kimi-k2-thinking" in (m.text or "") and not m.buttons)
        assert proxy.backends_of(listed_by) != proxy.backends_of(pressed)
        fake_kimi.script(Reply(content="Thinking model here."))
        await tg.send_text(alice, "Which model?")
        await tg.wait_for_message(alice.id, lambda m: "Thinking model here" in (m.text or ""), timeout=30)
        assert fake_kimi.chat_requests[-1].json["model"] == "kimi-k2-thinking"

        # A document's confirmation: asked by one replica, confirmed on the other (from the database).
        fake_kimi.script(Reply(content="Otters are playful."))
        await tg.send_document(alice, make_pdf("Otters hold hands"), "report.pdf")
        sent_by = last_update()
        ask = await tg.wait_for_message(
            alice.id, lambda m: any(d.startswith("doc:yes:") for d in m.callback_data), timeout=30
        )
        yes = next(d for d in ask.callback_data if d.startswith("doc:yes:"))
        await tg.press_button(alice, ask, yes)
        confirmed = last_update()
        await tg.wait_for_message(alice.id, lambda m: m.visible_text == "Otters are playful.", timeout=30)
        assert proxy.backends_of(sent_by) != proxy.backends_of(confirmed)
