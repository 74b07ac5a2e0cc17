"""The whole bot end to end: the real bot against the fake Telegram and the fake Kimi.

Measures what a user notices and what Telegram counts: time from the user's message to the first
visible text (the first non-empty draft, or the first message), Telegram API calls per answer,
answers per second for many users at once, the process's peak memory, and 429s (must be 0).

The bot, both fakes and this script share one process and one event loop on 127.0.0.1, so the
numbers include the fakes' own CPU: a lower bound on what the bot alone could do. The bot uses
SQLite (a file in a temporary directory), as it does by default; the many-users run is repeated
on a throwaway PostgreSQL database when the local server is there.

Run (from the repository root): .venv/bin/python -m bench.stream_e2e
"""

from __future__ import annotations

import asyncio
import logging
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from bench.answer import realistic_answer
from bench.postgres import NoPostgres, throwaway_postgres
from bench.stats import median, ms, percentile, print_header, print_table
from handlers.rendering import render_for_telegram
from tests.fakes.kimi import FakeKimi, Reply, count_tokens
from tests.fakes.telegram import Call, Chat, FakeTelegram, User
from tests.harness import BOT_TOKEN, KIMI_KEY, RunningBot, bot_settings

# Kimi's speed in the fake's tokens (at most 4 UTF-8 bytes; one per CJK character): a chunk every
# 20 ms. 2 tokens a chunk is ~100 tokens/s, 4 is ~200 (kimi-k2 writes roughly 30-100 tokens/s;
# the single answers stream faster only to keep the whole run under a minute).
CHUNK_DELAY = 0.02
PARALLEL_CHUNK_TOKENS = 2
SINGLE_CHUNK_TOKENS = 4
SINGLE_ANSWER_CHARS = 5_000  # two Telegram messages: shows the cut at 4096
PARALLEL_ANSWER_CHARS = 3_000
PARALLEL_USERS = 10
THROUGHPUT_ANSWER_CHARS = 400  # short answers sent at once: the bot's own cost per answer
THROUGHPUT_USERS = (10, 40)
ANSWER_TIMEOUT = 30.0
RUN_TIMEOUT = 58.0  # the whole benchmark, start-ups included


@dataclass
class AnswerStats:
    first_text: float  # seconds from the user's message to the first visible text
    done: float  # seconds until the chat shows the final answer
    drafts: int
    edits: int
    sends: int
    other_calls: int  # chat actions, deletions, ...
    rejected: int  # any non-200 answer from Telegram
    too_many_requests: int  # 429s among them


def shows_text(call: Call) -> bool:
    return (
        call.ok
        and call.method in ("sendMessageDraft", "sendMessage", "editMessageText")
        and bool(str(call.params.get("text") or "").strip())
    )


async def ask(tg: FakeTelegram, user: User, chat: Chat, question: str, answer: str) -> AnswerStats:
    """The user asks; returns once the chat shows exactly the final answer, without buttons."""
    wanted = [piece.text for piece in render_for_telegram(answer)]
    sent_at = time.monotonic()  # the fake stamps calls with the same clock
    asked = await tg.send_text(user, question, chat=chat)

    def answered() -> bool:
        replies = [m for m in tg.messages(chat.id) if m.message_id > asked["message_id"]]
        return [m.visible_text for m in replies] == wanted and not replies[-1].reply_markup

    await tg.wait_until(answered, timeout=ANSWER_TIMEOUT, description=f"the answer in chat {chat.id}")
    done = time.monotonic() - sent_at
    calls = [c for c in tg.calls() if c.chat_id == chat.id and c.time >= sent_at]
    first = next((c.time - sent_at for c in calls if shows_text(c)), float("nan"))
    count = Counter(c.method for c in calls)
    shown = count["sendMessageDraft"] + count["editMessageText"] + count["sendMessage"]
    return AnswerStats(
        first_text=first,
        done=done,
        drafts=count["sendMessageDraft"],
        edits=count["editMessageText"],
        sends=count["sendMessage"],
        other_calls=len(calls) - shown,
        rejected=sum(1 for c in calls if c.status != 200),
        too_many_requests=sum(1 for c in calls if c.status == 429),
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def per_answer_row(name: str, stats: list[AnswerStats]) -> list[object]:
    firsts = [s.first_text for s in stats]
    dones = [s.done for s in stats]
    n = len(stats)
    return [
        name,
        n,
        f"{ms(median(firsts))} / {ms(percentile(firsts, 0.95))}",
        f"{median(dones):.1f} / {percentile(dones, 0.95):.1f}",
        f"{sum(s.drafts for s in stats) / n:.1f}",
        f"{sum(s.edits for s in stats) / n:.1f}",
        f"{sum(s.sends for s in stats) / n:.1f}",
        f"{sum(s.other_calls for s in stats) / n:.1f}",
        sum(s.rejected for s in stats),
        sum(s.too_many_requests for s in stats),
    ]


async def private_answer(tg: FakeTelegram, kimi: FakeKimi) -> list[object]:
    answer = realistic_answer(SINGLE_ANSWER_CHARS)
    kimi.script(Reply(content=answer, chunk_tokens=SINGLE_CHUNK_TOKENS, delay=CHUNK_DELAY))
    user = tg.user(first_name="Private")
    stats = await ask(tg, user, tg.private_chat(user), "Explain the deployment, please", answer)
    return per_answer_row(f"private chat (drafts), {len(answer):,} chars", [stats])


async def group_answer(tg: FakeTelegram, kimi: FakeKimi) -> list[object]:
    answer = realistic_answer(SINGLE_ANSWER_CHARS)
    kimi.script(Reply(content=answer, chunk_tokens=SINGLE_CHUNK_TOKENS, delay=CHUNK_DELAY))
    user = tg.user(first_name="Member")
    group = tg.group(title="Bench group")
    stats = await ask(tg, user, group, f"@{tg.bot.username} explain the deployment, please", answer)
    return per_answer_row(f"group (edits), {len(answer):,} chars", [stats])


async def parallel_answers(tg: FakeTelegram, kimi: FakeKimi) -> list[object]:
    answer = realistic_answer(PARALLEL_ANSWER_CHARS)
    users = [tg.user(first_name=f"Parallel{i}") for i in range(PARALLEL_USERS)]
    kimi.script(
        *(Reply(content=answer, chunk_tokens=PARALLEL_CHUNK_TOKENS, delay=CHUNK_DELAY) for _ in users)
    )
    stats = await asyncio.gather(*(ask(tg, u, tg.private_chat(u), "Explain, please", answer) for u in users))
    return per_answer_row(f"{PARALLEL_USERS} private chats at once, {len(answer):,} chars each", list(stats))


async def throughput(tg: FakeTelegram, kimi: FakeKimi, database: str, users_count: int) -> list[object]:
    answer = realistic_answer(THROUGHPUT_ANSWER_CHARS)
    users = [tg.user(first_name=f"Load{users_count}x{i}") for i in range(users_count)]
    kimi.script(*(Reply(content=answer, chunk_tokens=16) for _ in users))
    started, cpu_started = time.monotonic(), time.process_time()
    stats = await asyncio.gather(*(ask(tg, u, tg.private_chat(u), "Quick one", answer) for u in users))
    wall, cpu = time.monotonic() - started, time.process_time() - cpu_started
    firsts = [s.first_text for s in stats]
    dones = [s.done for s in stats]
    return [
        database,
        users_count,
        f"{wall:.2f} s",
        f"{users_count / wall:.1f}",
        f"{cpu / users_count * 1000:.0f}",
        f"{ms(median(firsts))} / {ms(percentile(firsts, 0.95))}",
        f"{ms(median(dones))} / {ms(percentile(dones, 0.95))}",
        sum(s.too_many_requests for s in stats),
    ]


def flood_summary(tg: FakeTelegram) -> str:
    reasons = Counter(f"{e.method} ({e.reason} limit)" for e in tg.flood_errors)
    return ", ".join(f"{n}× {what}" for what, n in reasons.items()) or "none"


async def run_on_sqlite(directory: Path) -> tuple[list[list[object]], list[list[object]], str, float]:
    async with (
        FakeTelegram(token=BOT_TOKEN) as tg,
        FakeKimi(api_key=KIMI_KEY, first_token_delay=0.0) as kimi,  # the bot's own latency
        RunningBot(bot_settings(directory, tg, kimi)),
    ):
        rss_started = peak_rss_mb()
        answers = [
            await private_answer(tg, kimi),
            await group_answer(tg, kimi),
            await parallel_answers(tg, kimi),
        ]
        loads = [await throughput(tg, kimi, "SQLite", n) for n in THROUGHPUT_USERS]
        return answers, loads, flood_summary(tg), rss_started


async def run_on_postgres(directory: Path) -> tuple[list[list[object]], str]:
    async with (
        throwaway_postgres() as database_url,
        FakeTelegram(token=BOT_TOKEN) as tg,
        FakeKimi(api_key=KIMI_KEY, first_token_delay=0.0) as kimi,  # the bot's own latency
        RunningBot(bot_settings(directory, tg, kimi, database_url=database_url)),
    ):
        loads = [await throughput(tg, kimi, "PostgreSQL", n) for n in THROUGHPUT_USERS]
        return loads, flood_summary(tg)


async def run() -> None:
    print_header("bench.stream_e2e: the bot end to end against the fakes")
    single = realistic_answer(SINGLE_ANSWER_CHARS)
    print(
        f"Kimi streams ~{PARALLEL_CHUNK_TOKENS / CHUNK_DELAY:.0f} tokens/s (the single answers, "
        f"{count_tokens(single):,} tokens: ~{SINGLE_CHUNK_TOKENS / CHUNK_DELAY:.0f}/s). "
        "The bot, both fakes and this script share one process."
    )
    print()
    rss_before = peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="kimi-bench-") as directory:
        answers, loads, floods, rss_started = await run_on_sqlite(Path(directory))
        try:
            pg_loads, pg_floods = await run_on_postgres(Path(directory))
            loads += pg_loads
            floods = f"SQLite run: {floods}; PostgreSQL run: {pg_floods}"
        except NoPostgres as reason:
            floods = f"{floods} (PostgreSQL run skipped: {reason})"
    print("Per answer (first visible text in ms and answer complete in s, p50 / p95; calls per answer):")
    print()
    print_table(
        [
            "scenario",
            "answers",
            "first text ms",
            "done s",
            "drafts",
            "edits",
            "sends",
            "other",
            "non-200",
            "429",
        ],
        answers,
    )
    print()
    print(
        f"Throughput: N users ask at the same moment in private chats; {THROUGHPUT_ANSWER_CHARS}-char "
        "answers streamed at once (CPU: the whole process's, per answer):"
    )
    print()
    print_table(
        [
            "database",
            "users",
            "all answered in",
            "answers/s",
            "CPU ms/answer",
            "first text ms",
            "done ms",
            "429",
        ],
        loads,
    )
    print()
    print(
        f"Peak RSS of the process: {peak_rss_mb():.0f} MB (after imports {rss_before:.0f} MB, "
        f"bot running {rss_started:.0f} MB)."
    )
    print(f"429s from the fake Telegram: {floods}.")


async def run_bounded() -> None:
    async with asyncio.timeout(RUN_TIMEOUT):
        await run()


def main() -> None:
    # The bot's INFO lines would bury the tables; its warnings (a 429, for one) still show.
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_bounded())


if __name__ == "__main__":
    main()
