"""The one way a reservation ends: settled with what Kimi billed, or released when nothing was made.

Chat turns (bot/turn.py) and document summaries (bot/documents.py) both reserve the worst case
first (bot/budget.py); then a `Charge` turns what the call used into ledger rows at the model's
price and settles them in one transaction with the stored messages. When Kimi reports no usage (a
stopped or cut stream, a gateway that sends none) the work is charged by a conservative estimate,
never as free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.context_window import estimate_text_tokens
from bot.kimi import Usage
from bot.pricing import ModelPrice
from storage import BudgetState, NewMessage, NewUsage, Purpose, Reservation, Store


@dataclass(frozen=True)
class Bill:
    """Who pays for a call, at which price, and where it is counted (/cost)."""

    user_id: int
    chat_id: int | None
    price: ModelPrice
    purpose: Purpose
    conversation_id: int | None


@dataclass(frozen=True)
class Charged:
    usages: list[Usage]  # what was charged: Kimi's figures, or the estimate
    reported: bool  # Kimi reported the usage (False: estimated)
    cost_micro: int
    message_ids: list[int]  # the stored messages, in order
    budget: BudgetState | None  # the period's budget right after (None: settled before)


def billed_or_estimated(
    reported: Sequence[Usage], prompt_tokens: int, produced: Sequence[str], max_completion: int
) -> list[Usage]:
    """Kimi's usage; without any, the prompt's tokens and an estimate of the texts produced, at
    most `max_completion` (the call's max_tokens: Kimi cannot have billed more output than that,
    and the estimate, which runs high, must not charge past the hold)."""
    if reported:
        return list(reported)
    completion = min(max_completion, sum(estimate_text_tokens(text) for text in produced))
    return [Usage(prompt_tokens=prompt_tokens, completion_tokens=completion)]


class Charge:
    """One reservation, from the call's start until it is settled or released (exactly once)."""

    def __init__(self, store: Store, reservation: Reservation, bill: Bill) -> None:
        self._store = store
        self._reservation = reservation
        self._bill = bill

    async def release(self) -> None:
        """Nothing was produced, so nothing is owed: Kimi does not bill a refused request."""
        await self._store.release(self._reservation)

    async def settle(
        self,
        usages: Sequence[Usage],
        *,
        reported: bool = True,
        searches: int = 0,
        search_fee_micro: int = 0,
        messages: Sequence[NewMessage] = (),
        continued: tuple[int, str] | None = None,
    ) -> Charged:
        rows = [self._row(usage) for usage in usages]
        if searches:
            rows.append(self._search_row(searches, searches * search_fee_micro))
        cost = sum(row.cost_micro for row in rows)
        settled = await self._store.settle(
            self._reservation,
            cost,
            rows,
            messages=messages,
            conversation_id=self._bill.conversation_id,
            continued=continued,
        )
        return Charged(list(usages), reported, cost, settled.message_ids, settled.budget)

    def _row(self, usage: Usage) -> NewUsage:
        bill = self._bill
        cached = usage.cached_tokens or 0
        return NewUsage(
            user_id=bill.user_id,
            chat_id=bill.chat_id,
            model=bill.price.model,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=cached,
            completion_tokens=usage.completion_tokens,
            cost_micro=bill.price.cost_micro(usage.prompt_tokens, usage.completion_tokens, cached),
            purpose=bill.purpose,
            conversation_id=bill.conversation_id,
        )

    def _search_row(self, searches: int, cost_micro: int) -> NewUsage:
        bill = self._bill
        return NewUsage(
            user_id=bill.user_id,
            chat_id=bill.chat_id,
            model=bill.price.model,
            prompt_tokens=0,
            cached_tokens=0,
            completion_tokens=0,
            cost_micro=cost_micro,
            purpose="search",
            conversation_id=bill.conversation_id,
            web_search_calls=searches,
        )
