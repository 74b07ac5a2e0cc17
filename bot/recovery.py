"""Answers a crash cut: found at start-up, charged for what their last checkpoint shows, stored.

A process that dies mid-answer leaves its turn's row (storage: in-flight turns) and its hold. The
next process to start takes both over (storage.liveness says the owner is dead), and this module
settles each turn the way a stopped answer is settled when Kimi reported no usage: the prompt
plus an estimate of the text written, never more than was held. The partial answer joins the
conversation, so the user can have it continued or ask again; the handlers tell the user.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot.charging import billed_or_estimated
from bot.pricing import PriceTable
from storage import InflightTurn, NewMessage, NewUsage, Store

log = logging.getLogger(__name__)

NO_OUTPUT_LIMIT = 2**31  # no price to tell how much output a hold paid for


@dataclass(frozen=True)
class InterruptedAnswer:
    """A turn a crash cut, settled; to be reported to its user (then `forget` it)."""

    turn: InflightTurn
    cost_micro: int
    assistant_message_id: int | None  # the stored partial answer (None: nothing was written)

    @property
    def text(self) -> str:
        return self.turn.content


class CrashRecovery:
    def __init__(self, store: Store, prices: PriceTable) -> None:
        self._store = store
        self._prices = prices

    async def settle_interrupted(self) -> list[InterruptedAnswer]:
        """Settle every turn taken over from a dead process (repeatable: a settled one is kept)."""
        answers = []
        for turn in await self._store.interrupted_turns():
            usages = self._usage(turn)
            cost = sum(usage.cost_micro for usage in usages)
            messages: list[NewMessage] = []
            if turn.content or turn.reasoning:
                messages = [
                    NewMessage(role="user", content=turn.turn.question),
                    NewMessage(role="assistant", content=turn.content, reasoning=turn.reasoning or None),
                ]
            assistant_id = await self._store.settle_interrupted(turn, cost, usages, messages)
            answers.append(InterruptedAnswer(turn, cost if usages else 0, assistant_id))
        if answers:
            log.warning("%d answer(s) were cut by a crash; settling and telling their users", len(answers))
        return answers

    async def forget(self, answer: InterruptedAnswer) -> None:
        """The user was told (or cannot be): the turn is done."""
        await self._store.forget_interrupted(answer.turn)

    def _usage(self, turn: InflightTurn) -> list[NewUsage]:
        """What the call cost by its checkpoint; nothing if nothing was written (as for a stop)."""
        if not turn.content and not turn.reasoning:
            return []
        price = self._prices.get(turn.turn.model)
        # Estimated as a stopped answer with no usage from Kimi is (bot/charging.py), at most the
        # output the hold paid for (a model no longer priced is charged what was held, below).
        most = (
            price.output_tokens_affordable(turn.reservation.amount_micro, turn.turn.prompt_tokens)
            if price is not None
            else NO_OUTPUT_LIMIT
        )
        [usage] = billed_or_estimated([], turn.turn.prompt_tokens, [turn.content, turn.reasoning], most)
        produced = usage.completion_tokens
        cost = turn.reservation.amount_micro  # a model no longer priced: what was held
        if price is not None:
            cost = min(cost, price.cost_micro(usage.prompt_tokens, produced, 0))
        return [
            NewUsage(
                user_id=turn.turn.user_id,
                chat_id=turn.turn.chat_id,
                model=turn.turn.model,
                prompt_tokens=turn.turn.prompt_tokens,
                cached_tokens=0,
                completion_tokens=produced,
                cost_micro=cost,
                purpose="document" if turn.turn.purpose == "document" else "chat",
                conversation_id=turn.turn.conversation_id,
            )
        ]
