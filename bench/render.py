"""Markdown rendering cost while streaming: what the reply streamer pays to re-render.

The streamer keeps the raw Markdown and, about once a second, renders it again (so half-written
Markdown never reaches Telegram as markup) and cuts it into 4096-unit pieces. Rendering the
*whole* buffer each time makes an answer cost the sum of renders of its growing prefixes; the
streamer renders progress a block at a time instead (handlers/rendering/growing.py: finished
blocks are kept) and the final message whole. This measures both.

Run: .venv/bin/python -m bench.render
"""

from __future__ import annotations

import math
import time

from bench.answer import realistic_answer
from bench.stats import median, ms, percentile, print_header, print_table
from handlers.rendering import GrowingRender, render_for_telegram

ANSWER_LENGTH = 12_000
PREFIX_LENGTHS = (500, 1_000, 2_000, 4_000, 8_000, 12_000)
SAMPLES_PER_LENGTH = 60
# Cut points a little apart, so samples land inside different constructs (an open code fence,
# half a table row, a link without its URL yet) as prefixes of a stream do.
CUT_STEP = 7
# Streaming speeds in characters of this answer per second. Kimi writes roughly 30-100 tokens
# a second; this mixed English/Chinese text has ~3 characters per token.
STREAM_SPEEDS = (100, 300)
CHUNK_CHARS = 8  # one SSE chunk of ~2-3 tokens: what rendering on every chunk would mean


def render_seconds(markdown: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one render_for_telegram call."""
    wall, cpu = time.perf_counter(), time.process_time()
    render_for_telegram(markdown)
    return time.perf_counter() - wall, time.process_time() - cpu


def per_call_table(answer: str) -> None:
    rows = []
    for length in PREFIX_LENGTHS:
        walls = []
        for sample in range(SAMPLES_PER_LENGTH):
            prefix = answer[: max(1, length - sample * CUT_STEP)]
            walls.append(render_seconds(prefix)[0])
        rows.append(
            [
                f"{length:,}",
                ms(median(walls)),
                ms(percentile(walls, 0.95)),
                ms(median(walls) / length * 1000),
            ]
        )
    print("One render_for_telegram call on a prefix of the answer (wall time, ms):")
    print()
    print_table(["prefix chars", "median", "p95", "median per 1k chars"], rows)
    print()


def simulate_stream(answer: str, cut_points: list[int], growing: bool = False) -> tuple[float, float]:
    """Render the buffer at every cut point; the last one whole, the others whole or (growing) a
    block at a time, as the streamer does. (CPU s total, max wall s)."""
    cpu_total, worst = 0.0, 0.0
    progress = GrowingRender()
    for index, cut in enumerate(cut_points):
        wall, cpu = time.perf_counter(), time.process_time()
        if growing and index < len(cut_points) - 1:
            progress.render(answer[:cut])
        else:
            render_for_telegram(answer[:cut])
        cpu_total += time.process_time() - cpu
        worst = max(worst, time.perf_counter() - wall)
    return cpu_total, worst


def stream_table(answer: str) -> None:
    rows = []
    length = len(answer)
    final_cpu = simulate_stream(answer, [length])[0]
    for speed in STREAM_SPEEDS:
        duration = length / speed
        # Once a second (the streamer's pace), plus the final render at the end.
        cuts = [min(length, speed * second) for second in range(1, math.ceil(duration) + 1)]
        cuts.append(length)
        for growing, how in ((False, "whole buffer"), (True, "a block at a time (the streamer)")):
            cpu, worst = simulate_stream(answer, cuts, growing)
            rows.append(
                [
                    f"{speed} chars/s, once a second, {how}",
                    f"{duration:.0f} s",
                    len(cuts),
                    f"{cpu:.2f} s",
                    f"{cpu / duration:.1%}",
                    ms(worst),
                ]
            )
    # For contrast: what rendering on every chunk (no pacing) would cost at the fastest speed.
    chunk_cuts = list(range(CHUNK_CHARS, length, CHUNK_CHARS)) + [length]
    cpu, worst = simulate_stream(answer, chunk_cuts)
    duration = length / STREAM_SPEEDS[-1]
    rows.append(
        [
            f"{STREAM_SPEEDS[-1]} chars/s, every {CHUNK_CHARS}-char chunk, whole buffer (not done)",
            f"{duration:.0f} s",
            len(chunk_cuts),
            f"{cpu:.2f} s",
            f"{cpu / duration:.1%}",
            ms(worst),
        ]
    )
    print(
        f"A {length:,}-character answer streamed, re-rendered on a schedule, the last render whole "
        f"(one final render alone: {ms(final_cpu)} ms CPU):"
    )
    print()
    print_table(
        ["re-render schedule", "stream", "renders", "CPU total", "CPU / stream time", "slowest call ms"],
        rows,
    )
    print()


def main() -> None:
    answer = realistic_answer(ANSWER_LENGTH)
    print_header("bench.render: Markdown rendering while streaming")
    render_for_telegram(answer)  # warm up: imports, regex compilation, caches
    per_call_table(answer)
    stream_table(answer)


if __name__ == "__main__":
    main()
