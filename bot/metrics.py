"""What an operator graphs: Prometheus metrics of one bot process (prometheus-client).

One registry per running bot (not the library's global one), so that several bots in one test
process, or a restart inside one process, never share or double-register counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.pricing import MICRO

# Kimi answers take seconds to minutes; queue waits are usually zero, sometimes a whole answer.
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.updates = Counter(
            "kimi_bot_updates_handled", "Telegram updates handled, by kind", ["kind"], registry=r
        )
        self.duplicate_updates = Counter(
            "kimi_bot_duplicate_updates",
            "Webhook deliveries of an update already handled (Telegram retried it); ignored",
            registry=r,
        )
        self.turns = Counter("kimi_bot_turns", "Chat turns finished, by outcome", ["outcome"], registry=r)
        self.first_token_seconds = Histogram(
            "kimi_bot_upstream_first_token_seconds",
            "From the upstream call to Kimi's first streamed token",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.answer_seconds = Histogram(
            "kimi_bot_upstream_total_seconds",
            "From the upstream call to the end of Kimi's answer",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.telegram_calls = Counter(
            "kimi_bot_telegram_calls", "Bot API calls made, by method", ["method"], registry=r
        )
        self.telegram_429s = Counter(
            "kimi_bot_telegram_429",
            "Bot API calls answered 429 (flood control), by method",
            ["method"],
            registry=r,
        )
        self.charged = Counter("kimi_bot_charged_yuandian", "元点 charged to users' budgets", registry=r)
        self.active_streams = Gauge(
            "kimi_bot_active_streams", "Answers being streamed into Telegram now", registry=r
        )
        self.queue_wait_seconds = Histogram(
            "kimi_bot_queue_wait_seconds",
            "Time a turn waited for the earlier turns of its conversation",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def charge(self, cost_micro: int) -> None:
        if cost_micro > 0:
            self.charged.inc(cost_micro / MICRO)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
