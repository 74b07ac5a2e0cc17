"""A budget holds even when Kimi bills more input tokens than its tokenizer endpoint estimated.

The fake Kimi bills from its own count; here its estimate endpoint answers a quarter of that, as
an estimate that falls short might. The reservation takes the local byte bound, never the estimate.
"""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi, Reply, count_prompt_tokens
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import _query, ledger, spent_micro

ESTIMATE_PATH = "/v1/tokenizers/estimate-token-count"


async def test_a_tight_budget_is_never_overspent_when_the_bill_exceeds_the_estimate(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    fake_kimi.estimate_ratio = 0.25
    # An 8K context with a 4,000-character question is tight: the bot asks Kimi's tokenizer.
    bot = await start_bot(default_budget="5", default_model="moonshot-v1-8k")
    dan = tg.user(first_name="Dan")
    fake_kimi.script(Reply(content="w" * 8000))  # as long as max_tokens lets it be

    await tg.send_text(dan, "z" * 4000)
    await tg.wait_for_message(dan.id, lambda m: m.visible_text.startswith("www"), timeout=20)
    await tg.wait_until(lambda: len(ledger(bot, dan.id)) == 1, timeout=10)

    estimates = [r for r in fake_kimi.requests if r.path == ESTIMATE_PATH]
    assert estimates, "the tight context was not counted by Kimi"
    rows = ledger(bot, dan.id)
    # Kimi billed four times what it had estimated for the first question...
    estimated = int(count_prompt_tokens(estimates[-1].json["messages"]) * fake_kimi.estimate_ratio)
    assert rows[0]["prompt_tokens"] >= 4 * estimated > 0
    # ...and still the budget holds, every hold is released, and the books add up.
    spent = spent_micro(bot, dan.id)
    assert spent <= 5_000_000
    assert spent == sum(row["cost_micro"] for row in rows)


async def test_an_answer_cut_without_usage_is_charged_no_more_than_its_hold(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # The stream reaches max_tokens, then the connection drops before Kimi's usage: the bot
    # estimates the output. Kimi cannot have billed more than max_tokens of it, whatever the
    # estimate of the text says (English runs ~4 characters a token; the estimate counts 3).
    bot = await start_bot(max_output_tokens=300, min_output_tokens=16)
    erin = tg.user(first_name="Erin")
    fake_kimi.script(
        Reply(content="word " * 2000, chunk_tokens=20, usage_placement="none", drop_before_done=True)
    )

    await tg.send_text(erin, "write a lot")
    await tg.wait_until(lambda: len(ledger(bot, erin.id)) == 1, timeout=20)
    await bot.caught_up()

    [row] = ledger(bot, erin.id)
    [hold] = [r["amount_micro"] for r in _query(bot, "SELECT amount_micro FROM reservations")]
    assert row["completion_tokens"] <= 300
    assert 0 < row["cost_micro"] <= hold
