"""Pictures: what preparing one for Kimi costs (decode, scale to 2048 px, re-encode), what is kept,
and what bounding the kept pictures' tokens costs on every later turn.

Photos are synthetic but realistic for the encoder: smooth gradients with noise, as a camera's JPEG
(a flat colour would compress to nothing and flatter the numbers).

Run: .venv/bin/python -m bench.images
"""

from __future__ import annotations

import io
import os
import time

from PIL import Image

from bench.stats import median, ms, print_header, print_table
from bot.images import image_token_bound, prepare_image, stored_image_tokens

SIZES = ((1280, 960), (4000, 3000), (6000, 4000))  # a Telegram photo, a 12 MP and a 24 MP camera file
RUNS = 5


def camera_jpeg(width: int, height: int) -> bytes:
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    noise = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    photo = Image.blend(gradient, noise, 0.08)
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def main() -> None:
    print_header("Preparing a picture for Kimi (bot.images.prepare_image)")
    rows = []
    for width, height in SIZES:
        original = camera_jpeg(width, height)
        times, cpu = [], []
        for _ in range(RUNS):
            start, start_cpu = time.perf_counter(), time.process_time()
            prepared = prepare_image(original)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        kept = prepared.base64
        bound_times = []
        for _ in range(50):
            start = time.perf_counter()
            stored_image_tokens(kept)
            bound_times.append(time.perf_counter() - start)
        rows.append(
            (
                f"{width}×{height}",
                f"{len(original) / 1e6:.1f} MB",
                f"{ms(median(times))} / {ms(median(cpu))}",
                f"{prepared.width}×{prepared.height}",
                f"{len(prepared.data) / 1e6:.2f} MB",
                f"{image_token_bound(width, height):,} → "
                f"{image_token_bound(prepared.width, prepared.height):,}",
                ms(median(bound_times)),
            )
        )
    print_table(
        (
            "original",
            "bytes",
            "prepare ms: wall / CPU",
            "sent and kept",
            "kept bytes",
            "token bound",
            "bound per turn",
        ),
        rows,
    )


if __name__ == "__main__":
    main()
