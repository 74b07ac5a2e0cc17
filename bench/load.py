"""Load: bursts of users against the real bot process, at Telegram's and Kimi's limits.

The bot runs as its own process (`python -m bot` from the repository given with --repo, so the
same script measures an older commit's checkout too), against the fake Telegram and the fake Kimi
running here. The fake Telegram enforces 30 counted messages/s overall and the per-chat limits,
answering 429 beyond them; the fake Kimi enforces Moonshot's tier-1 limits (50 streams, 200 chat
requests a minute) in the "default" runs and none in the "lifted" ones (the bot's own caps are
lifted to match). Every answer is ~2,000 characters streamed over ~8 s.

For each run it prints what users notice next to the floor an ideal bot would reach under the
same limits:

- sign of life: seconds from the user's message to the bot's first call in that chat
  (typing, an empty draft, a notice); ideal 0;
- first upstream byte: seconds until the fake Kimi started answering that user;
- batch: seconds from the first question until every final answer is in its chat; the ideal
  schedules the streams greedily under the concurrency and per-minute limits;
- [DONE] -> final: seconds from the fake Kimi's last byte to the final message; the ideal sends
  finals first come first served at 30/s from the same [DONE] times;
- finals/s: final messages per second between the 10th and 90th percentile of finals;
- out of order: finals sent in another order than their [DONE] (more than 50 ms apart);
- CPU per reply: the bot process's CPU time over the run / users; RSS of the bot process;
- 429s from Telegram, and from Kimi.

The machine is shared and noisy: run the commits to compare back to back, repeat, take medians.

Run: .venv/bin/python -m bench.load [--repo PATH] [--users 50,200,400] [--limits default,lifted]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.answer import realistic_answer
from bench.stats import percentile, print_table
from tests.fakes.kimi import RECORD, FakeKimi, Reply, count_tokens
from tests.fakes.telegram import FakeTelegram

BOT_TOKEN = "123456:BENCH-bot-token"
KIMI_KEY = "sk-bench-key"

ANSWER_CHARS = 2_000
ANSWER_SECONDS = 8.0
CHUNK_TOKENS = 16
TELEGRAM_PER_SECOND = 30
DEFAULT_CONCURRENCY, DEFAULT_RPM = 50, 200
SIGN_OF_LIFE = ("sendChatAction", "sendMessageDraft", "sendMessage")


class TimedKimi(FakeKimi):
    """The fake Kimi, noting per user when its answer started and when [DONE] went out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started: dict[str, float] = {}
        self.done: dict[str, float] = {}
        self.rejected = 0

    async def _stream(self, request: web.Request, *args: Any, **kwargs: Any) -> web.StreamResponse:
        tag = _tag(request[RECORD].json)
        self.started.setdefault(tag, time.monotonic())
        response = await super()._stream(request, *args, **kwargs)
        self.done[tag] = time.monotonic()
        return response


def _tag(body: Any) -> str:
    messages = body.get("messages") or [{}]
    return str(messages[-1].get("content", "")).split(" ", 1)[0]


@dataclass
class Run:
    users: int
    limits: str
    seconds: float = 0.0
    sign_of_life: list[float] = field(default_factory=list)
    first_byte: list[float] = field(default_factory=list)
    done_to_final: list[float] = field(default_factory=list)
    ideal_done_to_final: list[float] = field(default_factory=list)
    batch: float = math.nan
    ideal_batch: float = math.nan
    finals_per_second: float = math.nan
    ideal_finals_per_second: float = math.nan
    out_of_order: int = 0
    cpu_ms_per_reply: float = math.nan
    rss_idle_mb: float = math.nan
    rss_after_mb: float = math.nan
    telegram_429: int = 0
    kimi_429: int = 0
    missing: int = 0
    stream_seconds: float = ANSWER_SECONDS


def _proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def ideal_batch_seconds(
    users: int, spread: float, duration: float, concurrency: int | None, rpm: int | None
) -> float:
    """Greedy schedule: a stream starts when its user asked, a slot is free and the minute allows.
    `duration` is how long the fake Kimi took to stream one answer in this run (the median)."""
    ends: list[float] = []
    starts: list[float] = []
    for index in range(users):
        start = spread * index / max(1, users)
        if concurrency is not None and index >= concurrency:
            start = max(start, sorted(ends)[index - concurrency])
        if rpm is not None and index >= rpm:
            start = max(start, starts[index - rpm] + 60.0)
        starts.append(start)
        ends.append(start + duration)
    return max(ends)


def ideal_finals(done_times: list[float]) -> list[float]:
    """Final-message times of an ideal bot: FIFO from [DONE], at most 30 in any second."""
    sent: list[float] = []
    for done in sorted(done_times):
        at = done
        if len(sent) >= TELEGRAM_PER_SECOND:
            at = max(at, sent[-TELEGRAM_PER_SECOND] + 1.0)
        sent.append(at)
    return sent


def steady_rate(times: list[float]) -> float:
    ordered = sorted(times)
    if len(ordered) < 10:
        return math.nan
    low, high = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    count = (len(ordered) * 9) // 10 - len(ordered) // 10
    return count / (high - low) if high > low else math.nan


async def run_once(
    repo: Path, users: int, limits: str, spread: float, wait_seconds: float, profile: Path | None = None
) -> Run:
    result = Run(users, limits)
    answer = realistic_answer(ANSWER_CHARS)[:ANSWER_CHARS]
    chunks = max(1, math.ceil(count_tokens(answer) / CHUNK_TOKENS))
    delay = ANSWER_SECONDS / chunks
    default = limits == "default"
    kimi = TimedKimi(
        api_key=KIMI_KEY,
        max_concurrency=DEFAULT_CONCURRENCY if default else None,
        max_rpm=DEFAULT_RPM if default else None,
        first_token_delay=0.0,  # the answer's timing is ANSWER_SECONDS, as before
    )
    async with FakeTelegram(token=BOT_TOKEN) as tg, kimi:
        kimi.script(*(Reply(content=answer, chunk_tokens=CHUNK_TOKENS, delay=delay) for _ in range(users)))
        limit_env = {
            "KIMI_MAX_CONCURRENCY": str(DEFAULT_CONCURRENCY if default else 100_000),
            "KIMI_MAX_RPM": str(DEFAULT_RPM if default else 1_000_000),
        }
        async with bot_process(repo, tg, kimi, **limit_env) as proc:
            result.rss_idle_mb = proc_rss_mb(proc.pid)
            profiler = await _start_profiler(proc.pid, profile) if profile else None
            cpu_before = _proc_cpu_seconds(proc.pid)
            await _burst(tg, kimi, result, users, spread, answer, wait_seconds)
            result.cpu_ms_per_reply = (_proc_cpu_seconds(proc.pid) - cpu_before) * 1000 / users
            result.rss_after_mb = proc_rss_mb(proc.pid)
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
                await profiler.wait()
        result.telegram_429 = len(tg.flood_errors)
        result.kimi_429 = sum(1 for r in kimi.requests if r.status == 429)
    streamed = [kimi.done[tag] - kimi.started[tag] for tag in kimi.done if tag in kimi.started]
    result.stream_seconds = statistics.median(streamed) if streamed else ANSWER_SECONDS
    result.ideal_batch = ideal_batch_seconds(
        users,
        spread,
        result.stream_seconds,
        DEFAULT_CONCURRENCY if default else None,
        DEFAULT_RPM if default else None,
    )
    return result


@contextlib.asynccontextmanager
async def bot_process(
    repo: Path, tg: FakeTelegram, kimi: FakeKimi, *, argv: Sequence[str] = ("-m", "bot"), **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot` of `repo`'s checkout (its own .venv) against the fakes, on a fresh SQLite
    database; entered once it polls and start-up has settled, stopped with SIGTERM on exit.
    `env` adds to or overrides the settings (e.g. Kimi's limits); `argv` replaces `-m bot`. Its
    stderr goes to a file (a pipe nobody reads would block the bot once full)."""
    with tempfile.TemporaryDirectory() as tmp, (Path(tmp) / "bot.log").open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(repo / ".venv/bin/python"),
            *argv,
            cwd=tmp,  # no .env of the checkout's is read
            env={
                **os.environ,
                "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
                "TELEGRAM_API_URL": tg.base_url,
                "TELEGRAM_FILE_URL": tg.base_file_url,
                "MOONSHOT_API_KEY": KIMI_KEY,
                "MOONSHOT_BASE_URL": kimi.base_url,
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bot.db",
                "LOG_LEVEL": "WARNING",
                "MAX_OUTPUT_TOKENS": "4096",
                **env,
                "PYTHONPATH": str(repo),
            },
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        try:
            await tg.wait_until(
                lambda: proc.returncode is not None or tg.calls("getUpdates", include_polling=True),
                timeout=60,
            )
            if proc.returncode is not None:
                raise RuntimeError(f"the bot exited on start:\n{(Path(tmp) / 'bot.log').read_text()[-3000:]}")
            await asyncio.sleep(1.0)  # start-up settles (imports, first poll)
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _start_profiler(pid: int, output: Path) -> asyncio.subprocess.Process:
    """py-spy (pip install py-spy) sampling the bot: `--format raw` folds stacks for flame graphs."""
    spy = Path(sys.executable).parent / "py-spy"
    return await asyncio.create_subprocess_exec(
        str(spy),
        "record",
        "--pid",
        str(pid),
        "--rate",
        "100",
        "--format",
        "raw",
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _burst(
    tg: FakeTelegram,
    kimi: TimedKimi,
    result: Run,
    users: int,
    spread: float,
    answer: str,
    wait_seconds: float,
) -> None:
    people = [tg.user(first_name=f"U{index}") for index in range(users)]
    asked: dict[int, float] = {}
    marker = "部署一个异步 Python 服务"  # a heading's text: survives rendering, not in any notice
    start = time.monotonic()
    for index, person in enumerate(people):
        due = start + spread * index / max(1, users)
        if (wait := due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        asked[person.id] = time.monotonic()
        await tg.send_text(person, f"u{person.id} please explain deployment")

    def finals() -> dict[int, float]:
        found: dict[int, float] = {}
        for call in tg.calls("sendMessage"):
            if call.ok and marker in str(call.params.get("text", "")):
                found.setdefault(int(call.chat_id), call.time)
        return found

    deadline = time.monotonic() + wait_seconds
    # Polling, not an event: the finals are read from the fake's call log, which is cheap to scan.
    while len(final := finals()) < users and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)
    result.missing = users - len(final)
    first_call: dict[int, float] = {}
    for call in tg.calls():
        if call.method in SIGN_OF_LIFE and call.ok and call.chat_id in asked:
            first_call.setdefault(int(call.chat_id), call.time)
    result.sign_of_life = [first_call.get(uid, math.inf) - at for uid, at in asked.items()]
    result.first_byte = [kimi.started.get(f"u{uid}", math.inf) - at for uid, at in asked.items()]
    done = {uid: kimi.done[f"u{uid}"] for uid in asked if f"u{uid}" in kimi.done and uid in final}
    result.done_to_final = [final[uid] - done[uid] for uid in done]
    ideal = ideal_finals(list(done.values()))
    result.ideal_done_to_final = [i - d for i, d in zip(ideal, sorted(done.values()), strict=True)]
    result.finals_per_second = steady_rate([final[uid] for uid in done])
    result.ideal_finals_per_second = steady_rate(ideal)
    ordered = sorted(done, key=done.__getitem__)
    result.out_of_order = sum(
        1
        for a, b in zip(ordered, ordered[1:], strict=False)
        if done[b] - done[a] > 0.05 and final[a] > final[b]
    )
    if final:
        result.batch = max(final.values()) - start


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else ("∞" if math.isinf(value) else f"{value:.{digits}f}")


def report(runs: list[Run], label: str) -> None:
    print(f"## bench.load: {label}")
    rows = []
    for run in runs:
        rows.append(
            [
                f"{run.users} / {run.limits}",
                _fmt(max(run.sign_of_life, default=math.nan)) + " (0)",
                _fmt(max(run.first_byte, default=math.nan)),
                f"{_fmt(run.batch)} ({_fmt(run.ideal_batch)})",
                f"{_fmt(percentile(run.done_to_final, 0.95), 2)}"
                f" ({_fmt(percentile(run.ideal_done_to_final, 0.95), 2)})",
                f"{_fmt(run.finals_per_second)} ({_fmt(run.ideal_finals_per_second)})",
                str(run.out_of_order),
                _fmt(run.cpu_ms_per_reply),
                f"{_fmt(run.rss_idle_mb)} / {_fmt(run.rss_after_mb)}",
                f"{run.telegram_429} / {run.kimi_429}",
                str(run.missing),
            ]
        )
    print_table(
        [
            "users / Kimi limits",
            "sign of life max s (ideal)",
            "first upstream byte max s",
            "batch s (ideal at the measured stream time)",
            "[DONE]->final p95 s (ideal)",
            "finals/s (ideal)",
            "out of order",
            "CPU ms/reply",
            "RSS MB idle / after",
            "429 TG / Kimi",
            "missing",
        ],
        rows,
    )
    sys.stdout.flush()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="checkout whose bot to run")
    parser.add_argument("--users", default="50,200,400")
    parser.add_argument("--limits", default="default,lifted")
    parser.add_argument("--spread", type=float, default=1.0, help="seconds over which users arrive")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for all answers")
    parser.add_argument("--profile", type=Path, help="py-spy raw output file (one run only)")
    args = parser.parse_args()
    runs = []
    for limits in args.limits.split(","):
        for users in (int(n) for n in args.users.split(",")):
            runs.append(
                await run_once(args.repo.resolve(), users, limits, args.spread, args.timeout, args.profile)
            )
            report(runs[-1:], f"{args.repo.resolve()} (partial)")
    report(runs, str(args.repo.resolve()))


if __name__ == "__main__":
    asyncio.run(main())
