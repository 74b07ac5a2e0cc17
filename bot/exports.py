"""The usage ledger as CSV, for /export: one row per charged upstream call.

Costs are exact: micro-元点 integers written as decimals with six places, so the column sums to
exactly what /cost adds up (which shows it rounded to two places).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC
from decimal import Decimal

from storage import MICRO_PER_YUANDIAN, LedgerEntry

COLUMNS = (
    "timestamp",
    "user_id",
    "chat_id",
    "model",
    "purpose",
    "prompt_tokens",
    "cached_tokens",
    "completion_tokens",
    "web_search_calls",
    "cost_yuandian",
)


def exact_points(micro: int) -> str:
    return f"{Decimal(micro) / MICRO_PER_YUANDIAN:.6f}"


def ledger_csv(entries: Iterable[LedgerEntry]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(COLUMNS)
    for entry in entries:
        writer.writerow(
            (
                entry.created_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                entry.user_id,
                "" if entry.chat_id is None else entry.chat_id,
                entry.model,
                entry.purpose,
                entry.prompt_tokens,
                entry.cached_tokens,
                entry.completion_tokens,
                entry.web_search_calls,
                exact_points(entry.cost_micro),
            )
        )
    return buffer.getvalue().encode("utf-8")
