"""A user's budget in 元点: what is left, and the reservation that makes a call safe to start.

The database does the deciding (one conditional UPDATE in `Store.reserve`); this module only works
out how much to ask for, so that concurrent turns and several bot processes can never overspend.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.periods import Period, current_period
from bot.pricing import ModelPrice, points_to_micro
from bot.settings import Settings
from storage import BudgetState, NewInflightTurn, Reservation, Store, UserRecord


@dataclass(frozen=True)
class BudgetView:
    period: Period
    limit_micro: int | None  # None: unlimited
    spent_micro: int
    reserved_micro: int

    @property
    def remaining_micro(self) -> int | None:
        if self.limit_micro is None:
            return None
        return max(0, self.limit_micro - self.spent_micro - self.reserved_micro)


@dataclass(frozen=True)
class Granted:
    reservation: Reservation
    max_tokens: int
    capped: bool  # max_tokens was lowered to what the budget affords


@dataclass(frozen=True)
class Refused:
    view: BudgetView
    needed_micro: int  # the least a useful answer would cost


class BudgetKeeper:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._default_limit = points_to_micro(settings.default_budget)

    def limit_for(self, user: UserRecord) -> int | None:
        if user.budget_override_micro is not None:
            return None if user.budget_override_micro < 0 else user.budget_override_micro
        return self._default_limit

    def period(self, now: datetime | None = None) -> Period:
        return current_period(self._settings.budget_period, now)

    def view_after(self, user: UserRecord, period_key: str, state: BudgetState) -> BudgetView | None:
        """The view of a budget state read with a write (a settle), if it is of the current period."""
        period = self.period()
        if period.key != period_key:
            return None
        return BudgetView(period, self.limit_for(user), state.spent_micro, state.reserved_micro)

    async def view(self, user: UserRecord) -> BudgetView:
        period = self.period()
        state = await self._store.budget_state(user.telegram_id, period.key)
        return BudgetView(period, self.limit_for(user), state.spent_micro, state.reserved_micro)

    async def reserve_exactly(
        self,
        user: UserRecord,
        amount_micro: int,
        max_tokens: int,
        purpose: str = "chat",
        inflight_turn: NewInflightTurn | None = None,
    ) -> Granted | None:
        """Hold exactly `amount_micro` (a worst case worked out by the caller), or None if the
        budget cannot hold it; max_tokens is not lowered. (The store's conditional hold is the
        check: no read is needed first.)"""
        reservation = await self._store.reserve(
            user.telegram_id,
            self.period().key,
            amount_micro,
            self.limit_for(user),
            purpose=purpose,
            inflight_turn=inflight_turn,
        )
        return None if reservation is None else Granted(reservation, max_tokens, capped=False)

    async def reserve_for_call(
        self,
        user: UserRecord,
        price: ModelPrice,
        prompt_tokens: int,
        max_tokens: int,
        purpose: str = "chat",
        min_useful_tokens: int | None = None,
        inflight_turn: NewInflightTurn | None = None,
    ) -> Granted | Refused:
        """Reserve the worst case of a call, capping its output to what the budget affords.

        inflight_turn: the turn the call is for, recorded with the hold (see bot.checkpoints)."""
        min_useful = min(max_tokens, min_useful_tokens or self._settings.min_output_tokens)
        limit = self.limit_for(user)
        # Most calls fit whole: hold the full worst case at once (the store's hold is conditional,
        # so it never goes past the limit); the budget is read only to cap a call that does not.
        whole = await self._store.reserve(
            user.telegram_id,
            self.period().key,
            price.cost_micro(prompt_tokens, max_tokens),
            limit,
            purpose=purpose,
            inflight_turn=inflight_turn,
        )
        if whole is not None:
            return Granted(whole, max_tokens, capped=False)
        # Two attempts: a concurrent turn of the same user may take budget between read and write.
        for _ in range(2):
            view = await self.view(user)
            tokens = max_tokens
            if view.remaining_micro is not None:
                tokens = min(tokens, price.output_tokens_affordable(view.remaining_micro, prompt_tokens))
                if tokens < min_useful:
                    return Refused(view, price.cost_micro(prompt_tokens, min_useful))
            amount = price.cost_micro(prompt_tokens, tokens)
            reservation = await self._store.reserve(
                user.telegram_id, view.period.key, amount, limit, purpose=purpose, inflight_turn=inflight_turn
            )
            if reservation is not None:
                return Granted(reservation, tokens, capped=tokens < max_tokens)
        view = await self.view(user)
        return Refused(view, price.cost_micro(prompt_tokens, min_useful))
