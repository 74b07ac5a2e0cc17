"""Memory: RSS of the bot process idle, after 200 and after 2,000 distinct users had a turn.

The bot runs as its own process (`python -m bot` of the checkout given with --repo), started by
bench.load's `bot_process` against the fake Telegram (its flood limits on) and the fake Kimi (no
limits, and the bot's own caps lifted to match; each answer is a short echo). Users come in waves
(100 at a time by default); each asks one question in their own private chat, and the next wave
starts when every final answer of this one is in its chat.

RSS (VmRSS from /proc) is read after a short quiet spell (--settle seconds) at each checkpoint:
idle after start, then after 200 and after 2,000 users. glibc's allocator keeps freed memory for
reuse rather than giving it back, so RSS shows the high-water mark of the heap, not live objects:
growth between 200 and 2,000 users is what is kept per user (or fragmentation that grows with
them). Target (issue 11): idle <= 95 MB; after 2,000 within 5 MB of after 200.

--trace N runs the bot under tracemalloc (N frames) and writes a snapshot at each checkpoint,
then prints the top differences between 200 and 2,000 users (RSS is then not comparable).

Run: .venv/bin/python -m bench.memory [--repo PATH] [--users 200,2000] [--wave 100] [--trace 10]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.load import bot_process, proc_rss_mb
from bench.stats import print_table
from tests.fakes.kimi import FakeKimi
from tests.fakes.telegram import FakeTelegram

from bench.load import BOT_TOKEN, KIMI_KEY  # isort: skip

# Run in the bot's process with --trace: on SIGUSR1, a tracemalloc snapshot to the file named in
# the environment (suffixed with a count), then the bot as `python -m bot` would run it.
_TRACE_HOOK = """
import os, runpy, signal, tracemalloc
_count = [0]
def _dump(*_):
    _count[0] += 1
    tracemalloc.take_snapshot().dump(f"{os.environ['BENCH_SNAPSHOT']}.{_count[0]}")
    open(f"{os.environ['BENCH_SNAPSHOT']}.{_count[0]}.done", "w").close()
signal.signal(signal.SIGUSR1, _dump)
runpy.run_module("bot", run_name="__main__", alter_sys=True)
"""


async def _wave(tg: FakeTelegram, first: int, count: int, ceiling: float) -> float:
    """`count` new users each ask once; returns when every answer is final in its chat."""
    people = [tg.user(first_name=f"M{first + index}") for index in range(count)]
    seen = tg.mark()
    started = time.monotonic()
    for person in people:
        await tg.send_text(person, f"m{person.id} hello")
    waiting = {person.id for person in people}
    deadline = started + ceiling
    # Polling the call log from where it was last read (cheap), not an event per call.
    while waiting:  # noqa: ASYNC110
        calls = tg.calls(include_polling=True)
        for call in calls[seen:]:
            if call.method == "sendMessage" and call.ok and "echo:" in str(call.params.get("text", "")):
                waiting.discard(int(call.chat_id))
        seen = len(calls)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(waiting)} of {count} answers missing after {ceiling} s")
        await asyncio.sleep(0.25)
    return time.monotonic() - started


def _breakdown(pid: int) -> str:
    """Where the RSS is: the main heap, other anonymous maps (threads' malloc arenas, mmaps), files
    (code, shared libraries); and how many threads."""
    heap = anon = files = 0
    name = ""
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if head and not head[0].endswith(":"):
            name = head[5] if len(head) > 5 else ""
        elif head and head[0] == "Rss:":
            kb = int(head[1])
            if name == "[heap]":
                heap += kb
            elif name.startswith("/"):
                files += kb
            else:
                anon += kb
    threads = next(
        line.split()[1]
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("Threads:")
    )
    return f"{heap / 1024:.1f} / {anon / 1024:.1f} / {files / 1024:.1f} / {threads}"


async def _checkpoint(
    proc: asyncio.subprocess.Process, settle: float, snapshot: Path | None
) -> tuple[float, str]:
    await asyncio.sleep(settle)
    rss = proc_rss_mb(proc.pid)
    breakdown = _breakdown(proc.pid)
    if snapshot is not None:
        done = len(list(snapshot.parent.glob(f"{snapshot.name}.*.done"))) + 1
        proc.send_signal(signal.SIGUSR1)
        marker = snapshot.parent / f"{snapshot.name}.{done}.done"
        while not marker.exists():  # noqa: ASYNC110 (another process writes it)
            await asyncio.sleep(0.2)
    return rss, breakdown


async def run(
    repo: Path, checkpoints: list[int], wave: int, settle: float, trace: int | None, keep: Path | None
) -> None:
    kimi = FakeKimi(api_key=KIMI_KEY, max_concurrency=None, max_rpm=None, first_token_delay=0.0)
    rows: list[list[str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        snapshot = (keep or Path(tmp)) / "snap" if trace else None
        extra: dict[str, str] = {}
        argv: tuple[str, ...] = ("-m", "bot")
        if snapshot is not None:
            hook = Path(tmp) / "trace_hook.py"
            hook.write_text(_TRACE_HOOK)
            argv = ("-X", f"tracemalloc={trace}", str(hook))
            extra["BENCH_SNAPSHOT"] = str(snapshot)
        async with (
            FakeTelegram(token=BOT_TOKEN) as tg,
            kimi,
            bot_process(
                repo, tg, kimi, argv=argv, KIMI_MAX_CONCURRENCY="100000", KIMI_MAX_RPM="1000000", **extra
            ) as proc,
        ):
            idle, breakdown = await _checkpoint(proc, settle, snapshot)
            rows.append(["idle (after start)", f"{idle:.1f}", "", breakdown, ""])
            print(f"idle: {idle:.1f} MB", flush=True)
            served = 0
            previous = idle
            for target in checkpoints:
                seconds = 0.0
                while served < target:
                    count = min(wave, target - served)
                    seconds += await _wave(tg, served, count, ceiling=300)
                    served += count
                rss, breakdown = await _checkpoint(proc, settle, snapshot)
                change = f"{rss - previous:+.1f}"
                rows.append([f"after {target} users", f"{rss:.1f}", change, breakdown, f"{seconds:.0f}"])
                print(f"after {target} users: {rss:.1f} MB ({seconds:.0f} s of waves)", flush=True)
                previous = rss
            flood = len(tg.flood_errors)
        print(f"## bench.memory: {repo}")
        print_table(
            ["checkpoint", "RSS MB", "change MB", "heap / other anon / files MB / threads", "waves s"], rows
        )
        if len(rows) >= 3:  # the target: the last checkpoint against the first after idle
            first, last = float(rows[1][1]), float(rows[-1][1])
            print(f"{rows[-1][0]} - {rows[1][0]}: {last - first:+.1f} MB; 429s from Telegram: {flood}")
        if snapshot is not None and len(checkpoints) >= 2:
            _print_growth(snapshot, len(checkpoints), len(checkpoints) + 1)
    sys.stdout.flush()


def _print_growth(snapshot: Path, before: int, after: int, top: int = 25) -> None:
    """What tracemalloc saw grow between two checkpoints, by the line that allocated it."""
    old = tracemalloc.Snapshot.load(f"{snapshot}.{before}")
    new = tracemalloc.Snapshot.load(f"{snapshot}.{after}")
    print(f"## tracemalloc: grown between checkpoints {before - 1} and {after - 1} (by traceback)")
    for stat in new.compare_to(old, "traceback")[:top]:
        print(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks")
        for line in stat.traceback.format(limit=8, most_recent_first=True):
            print("    " + line)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="checkout whose bot to run")
    parser.add_argument("--users", default="200,2000", help="checkpoints: users served so far")
    parser.add_argument("--wave", type=int, default=100, help="users asking at once")
    parser.add_argument("--settle", type=float, default=3.0, help="quiet seconds before reading RSS")
    parser.add_argument("--trace", type=int, help="tracemalloc frames; prints what grew")
    parser.add_argument("--snapshots", type=Path, help="directory to keep the tracemalloc snapshots in")
    args = parser.parse_args()
    checkpoints = [int(n) for n in args.users.split(",")]
    await run(args.repo.resolve(), checkpoints, args.wave, args.settle, args.trace, args.snapshots)


if __name__ == "__main__":
    asyncio.run(main())
