"""One conversation turn: context -> reserve -> stream -> settle.

The caller iterates `Conversations.run_turn(...)`: it receives the answer as it is written
(`ThinkingDelta`, `AnswerDelta`, `SearchingWeb`) and, last, one `TurnFinished` with the outcome.
Whatever happens (success, upstream error, a cut stream, the user pressing stop) the reservation is
settled or released and the question and answer are stored with their usage in one transaction.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bot.budget import BudgetKeeper, BudgetView, Granted, Refused
from bot.charging import Bill, Charge, billed_or_estimated
from bot.checkpoints import Checkpoints
from bot.context_window import PER_MESSAGE_OVERHEAD, Measure, SizedHistory, Window, drop_oldest_turns
from bot.kimi import (
    ContentDelta,
    Finish,
    KimiClient,
    KimiContextOverflow,
    KimiError,
    KimiIncompleteStream,
    ReasoningDelta,
    ToolCall,
    Usage,
    WebSearchCall,
)
from bot.kimi.web_search import WEB_SEARCH_NAME
from bot.pricing import ModelPrice, PriceTable
from bot.search_budget import SearchAllowance, chargeable_searches, search_worst_case_micro
from bot.settings import Settings
from bot.shared_turns import SharedPlace, current_arrival, turn_key_text
from bot.token_bound import PER_REQUEST_TOKENS
from bot.turn_locks import Place, TurnQueue
from bot.vision import user_content
from storage import (
    ConversationRecord,
    Coordination,
    HistoryMessage,
    NewInflightTurn,
    NewMessage,
    Purpose,
    Store,
    StoredImage,
    UserRecord,
)

log = logging.getLogger(__name__)

# A turn's place in its conversation's queue: in this process, or across replicas.
TurnPlace = Place | SharedPlace

# Room kept free in the context window besides the answer: the estimate is an estimate.
CONTEXT_SAFETY_TOKENS = 256
# History read per turn, in characters per token of room: the guess used when the context is tight
# (estimate_text_tokens) never counts more than 3 characters a token, nor a message less than
# PER_MESSAGE_OVERHEAD tokens besides its text, so older history than this could not be offered
# anyway (the guaranteed bound offers less still), and reading it would only cost time.
HISTORY_CHARS_PER_TOKEN = 3
# A wait for Kimi's slots this long (seconds) is told to the user.
QUEUED_NOTICE_AFTER = 2.0


class TurnStatus(StrEnum):
    DONE = "done"  # the answer is complete
    TRUNCATED = "truncated"  # complete, but cut at max_tokens (finish_reason=length)
    STOPPED = "stopped"  # the user pressed stop
    INCOMPLETE = "incomplete"  # the stream broke off before [DONE]
    FAILED = "failed"  # upstream error; see `error`
    REFUSED = "refused"  # the budget cannot pay for a useful answer; nothing was called
    TOO_LONG = "too_long"  # the new message alone does not fit the model's context
    FILTERED = "filtered"  # Kimi's content filter ended the answer (finish_reason=content_filter)
    NOT_CONTINUABLE = "not_continuable"  # the answer to continue is no longer the conversation's last
    NOT_ALLOWED = "not_allowed"  # the asker was denied (/deny) while the turn waited; nothing was called


@dataclass(frozen=True)
class ConversationKey:
    chat_id: int
    user_id: int | None  # None: one conversation shared by the whole chat
    thread_id: int | None = None


@dataclass(frozen=True)
class TurnRequest:
    user: UserRecord
    chat_id: int
    key: ConversationKey
    text: str
    purpose: Purpose = "chat"
    # Extra context for this turn only, stored with it (e.g. a document's extracted text).
    preamble: tuple[NewMessage, ...] = ()
    model: str | None = None  # overrides the user's model for this turn
    reply_to: int | None = None  # the question's message: where to answer after a crash
    # Pictures shown with this message (prepared by bot.images): image parts for a vision model,
    # kept with the message for follow-up questions until /reset.
    images: tuple[StoredImage, ...] = ()
    # The stored answer (message id) to continue instead of asking anything new: one a restart or
    # a crash cut. Kimi's partial mode writes on from its text; the stored answer grows.
    continues: int | None = None


@dataclass(frozen=True)
class TurnStarted:
    """The turn has its place (earlier turns of the conversation are done) and its budget."""

    model: str
    continued: str = ""  # a continuation: the answer's text so far (the deltas that follow extend it)


@dataclass(frozen=True)
class Queued:
    """Kimi's slots are all taken (the account's limits): the answer starts in about `seconds`."""

    seconds: int


@dataclass(frozen=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True)
class AnswerDelta:
    text: str


@dataclass(frozen=True)
class SearchingWeb:
    calls: int


@dataclass
class TurnOutcome:
    status: TurnStatus
    model: str
    content: str = ""
    reasoning: str = ""
    cost_micro: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    usage_reported: bool = False
    capped: bool = False
    error: KimiError | None = None
    # Refused: the budget that could not pay. Charged: the budget as the charge left it (None when
    # the period turned meanwhile); the footer's notices are worked out from it without a read.
    budget: BudgetView | None = None
    needed_micro: int = 0
    assistant_message_id: int | None = None
    searches: int = 0  # $web_search calls charged
    search_skipped: bool = False  # search is on, but the budget could not pay for it
    search_limited: bool = False  # the model wanted more searches than a turn allows


@dataclass(frozen=True)
class TurnFinished:
    outcome: TurnOutcome


TurnEvent = TurnStarted | Queued | ThinkingDelta | AnswerDelta | SearchingWeb | TurnFinished


@dataclass
class _Progress:
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    usages: list[Usage] = field(default_factory=list)
    searches: int = 0
    search_limited: bool = False
    finish_reason: str | None = None
    started: bool = False

    def written(self) -> tuple[str, str]:
        """(content, reasoning) so far."""
        return "".join(self.content), "".join(self.reasoning)


@dataclass(frozen=True)
class _CallPlan:
    """How this turn's requests are made: with web search, and thinking on/off/default."""

    web_search: bool = False
    thinking: bool | None = None
    search_allowance: SearchAllowance | None = None  # with web_search: what the turn reserved


@dataclass
class _Answer:
    """One reserved turn while it is answered: it streams, then settles (once) and says how it went.

    What the turn needs travels with it, instead of through every call; the outcome is built once,
    when the turn is settled.
    """

    request: TurnRequest
    conversation_id: int
    price: ModelPrice
    decision: Granted
    plan: _CallPlan
    messages: list[dict[str, str]]
    context_tokens: int  # the window's size for Kimi (its count when asked, else the bound)
    prompt_tokens: int  # the guaranteed bound: reserved, and charged when Kimi reports no usage
    search_skipped: bool
    kimi: KimiClient
    store: Store
    budgets: BudgetKeeper
    web_search_fee_micro: int
    progress: _Progress = field(default_factory=_Progress)
    status: TurnStatus = TurnStatus.DONE
    error: KimiError | None = None

    async def generate(self, stop: asyncio.Event) -> AsyncGenerator[TurnEvent, None]:
        """Stream the answer, noting how it ended; upstream errors end it quietly."""
        progress = self.progress
        messages = self.messages
        try:
            for attempt in range(2):
                try:
                    async for event in self._stream(messages, stop):
                        yield event
                    break
                except KimiContextOverflow:
                    # Our estimate was short of Kimi's count: drop older turns once and try again.
                    if progress.started or attempt == 1:
                        raise
                    messages = drop_oldest_turns(messages)
            if stop.is_set():
                self.status = TurnStatus.STOPPED
            elif progress.finish_reason == "length":
                self.status = TurnStatus.TRUNCATED
            elif progress.finish_reason == "content_filter":
                self.status = TurnStatus.FILTERED
        except KimiIncompleteStream as error:
            self.status = TurnStatus.INCOMPLETE
            self.error = error
            if error.usage is not None and not progress.usages:
                progress.usages.append(error.usage)
        except KimiError as error:
            self.status = TurnStatus.FAILED
            self.error = error

    async def _stream(
        self, messages: list[dict[str, str]], stop: asyncio.Event
    ) -> AsyncGenerator[TurnEvent, None]:
        price, plan, progress = self.price, self.plan, self.progress
        allowance = plan.search_allowance if plan.web_search else None
        if (wait := self.kimi.queue_wait_estimate()) >= QUEUED_NOTICE_AFTER:
            yield Queued(math.ceil(wait))
        sent: list[dict[str, Any]] = list(messages)
        if self.request.continues is not None:
            sent[-1] = {**sent[-1], "partial": True}
        stream = self.kimi.stream_chat(
            price.model,
            sent,
            max_tokens=self.decision.max_tokens,
            context_length=price.context_length,
            input_tokens=self.context_tokens,
            web_search=plan.web_search,
            thinking=plan.thinking,
            max_searches=allowance.searches if allowance else None,
            max_search_tokens=allowance.result_tokens if allowance else None,
        )
        stop_waiter = asyncio.ensure_future(stop.wait())
        try:
            while True:
                next_event = asyncio.ensure_future(anext(stream))
                done, _ = await asyncio.wait({next_event, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
                if next_event not in done:
                    next_event.cancel()
                    await asyncio.gather(next_event, return_exceptions=True)
                    return
                try:
                    event = next_event.result()
                except StopAsyncIteration:
                    return
                if isinstance(event, ContentDelta) and event.text:
                    progress.started = True
                    progress.content.append(event.text)
                    yield AnswerDelta(event.text)
                elif isinstance(event, ReasoningDelta) and event.text:
                    progress.started = True
                    progress.reasoning.append(event.text)
                    yield ThinkingDelta(event.text)
                elif isinstance(event, Usage):
                    progress.usages.append(event)
                elif isinstance(event, WebSearchCall):
                    progress.searches += 1
                    yield SearchingWeb(progress.searches)
                elif isinstance(event, ToolCall) and event.name == WEB_SEARCH_NAME:
                    # A search beyond the turn's allowance, not run: Moonshot bills its fee anyway.
                    progress.searches += 1
                    progress.search_limited = True
                elif isinstance(event, Finish):
                    progress.finish_reason = event.reason
        finally:
            stop_waiter.cancel()
            await stream.aclose()

    async def settle(self) -> TurnOutcome:
        """Settle the reservation with the real cost and store the turn, in one transaction."""
        request, progress = self.request, self.progress
        content, reasoning = progress.written()
        outcome = TurnOutcome(
            self.status,
            self.price.model,
            content=content,
            reasoning=reasoning,
            capped=self.decision.capped,
            error=self.error,
            searches=progress.searches,
            search_skipped=self.search_skipped,
            search_limited=progress.search_limited,
        )
        bill = Bill(
            request.user.telegram_id, request.chat_id, self.price, request.purpose, self.conversation_id
        )
        charge = Charge(self.store, self.decision.reservation, bill)
        if not progress.started and not progress.usages and progress.searches == 0:
            await charge.release()
            return outcome
        # No usage from upstream (stopped, cut): a conservative estimate of the work is charged.
        usages = billed_or_estimated(
            progress.usages, self.prompt_tokens, [content, reasoning], self.decision.max_tokens
        )
        outcome.prompt_tokens = sum(usage.prompt_tokens for usage in usages)
        outcome.cached_tokens = sum(usage.cached_tokens or 0 for usage in usages)
        outcome.completion_tokens = sum(usage.completion_tokens for usage in usages)
        messages: list[NewMessage] = []
        if (content or reasoning) and request.continues is None:
            question = NewMessage(role="user", content=request.text, images=request.images)
            messages = [*request.preamble, question]
            messages.append(
                NewMessage(
                    role="assistant",
                    content=content,
                    reasoning=reasoning or None,
                    tokens=outcome.completion_tokens,
                )
            )
        searches = progress.searches
        if self.plan.search_allowance is not None:
            searches = chargeable_searches(progress.searches, self.plan.search_allowance)
            if searches < progress.searches:
                # More calls in one response than WEB_SEARCH_MAX_CALLS_PER_RESPONSE assumes:
                # Moonshot bills them, the user is charged only what was reserved.
                log.warning(
                    "web search fees not charged to user %s: %d of %d (more calls in one response "
                    "than WEB_SEARCH_MAX_CALLS_PER_RESPONSE)",
                    request.user.telegram_id,
                    progress.searches - searches,
                    progress.searches,
                )
        charged = await charge.settle(
            usages,
            reported=bool(progress.usages),
            searches=searches,
            search_fee_micro=self.web_search_fee_micro,
            messages=messages,
            continued=None if request.continues is None else (request.continues, content),
        )
        outcome.cost_micro = charged.cost_micro
        outcome.usage_reported = charged.reported
        if charged.budget is not None:
            outcome.budget = self.budgets.view_after(
                request.user, self.decision.reservation.period_key, charged.budget
            )
        if charged.message_ids:
            outcome.assistant_message_id = charged.message_ids[-1]
        return outcome


def continuable(history: Sequence[HistoryMessage], answer_id: int) -> tuple[str, str] | None:
    """(question, answer so far) if `answer_id` is the conversation's last answer, else None: an
    answer is continued only while nothing came after it."""
    if len(history) < 2 or history[-1].id != answer_id or history[-1].role != "assistant":
        return None
    if history[-2].role != "user":
        return None
    return history[-2].content, history[-1].content


class Conversations:
    """The core's entry point for chat turns; knows nothing of Telegram."""

    def __init__(
        self,
        store: Store,
        kimi: KimiClient,
        prices: PriceTable,
        settings: Settings,
        budgets: BudgetKeeper,
        may_ask: Callable[[int], bool] = lambda user_id: True,
    ) -> None:
        """`may_ask(user_id)`: may this user still be answered (the allow-list)? Asked again when a
        turn gets its place, since a message queued behind its asker's own answer was let in on
        arrival and the asker may have been denied since."""
        self._store = store
        self._kimi = kimi
        self._prices = prices
        self._settings = settings
        self._budgets = budgets
        self._search_allowance = SearchAllowance(
            searches=settings.web_search_max_calls,
            result_tokens=settings.web_search_max_result_tokens,
            per_response=settings.web_search_max_calls_per_response,
        )
        self._may_ask = may_ask
        self._queue = TurnQueue()
        self._coordination: Coordination | None = None
        self._checkpoints = Checkpoints(store)  # one writer for all answers' checkpoints

    def share_turn_order(self, coordination: Coordination) -> None:
        """Several replicas: order the turns of webhook updates through the database."""
        self._coordination = coordination

    def model_for(self, user: UserRecord, requested: str | None = None) -> ModelPrice:
        """The user's model if it is still priced, else the default (a budget needs a price)."""
        for candidate in (requested, user.model, self._settings.default_model):
            if candidate and (price := self._prices.get(candidate)) is not None:
                return price
        return next(iter(self._prices.models.values()))

    def take_place(self, key: ConversationKey) -> TurnPlace:
        """Call as soon as a message arrives, before awaiting anything: it fixes the order."""
        arrival = current_arrival.get()
        if self._coordination is not None and arrival is not None and arrival.chat_id == key.chat_id:
            turn_key = turn_key_text(key.chat_id, key.user_id, key.thread_id)
            return SharedPlace(self._coordination, arrival, key.chat_id, turn_key)
        return self._queue.take_place(key)

    async def run_turn(
        self,
        request: TurnRequest,
        stop: asyncio.Event | None = None,
        place: TurnPlace | None = None,
    ) -> AsyncGenerator[TurnEvent, None]:
        """Answer one message; turns of one conversation run one at a time, in arrival order."""
        stop = stop or asyncio.Event()
        async with place or self.take_place(request.key):
            async for event in self._run_locked(request, stop):
                yield event

    async def _run_locked(self, request: TurnRequest, stop: asyncio.Event) -> AsyncGenerator[TurnEvent, None]:
        price = self.model_for(request.user, request.model)
        if not self._may_ask(request.user.telegram_id):
            # Before anything is reserved or called: a denied asker costs nothing.
            yield TurnFinished(TurnOutcome(TurnStatus.NOT_ALLOWED, price.model))
            return
        max_output = min(self._settings.max_output_tokens, price.max_output_tokens or price.context_length)
        allowed = price.context_length - max_output - CONTEXT_SAFETY_TOKENS
        conversation, history = await self._read_context(request.key, allowed)
        new_messages: list[dict[str, Any]] = [
            {"role": m.role, "content": m.content} for m in request.preamble
        ]
        new_messages.append(
            {"role": "user", "content": user_content(request.text, request.images, price.vision)}
        )
        continued = ""
        if request.continues is not None:
            cut = continuable(history, request.continues)
            if cut is None:
                yield TurnFinished(TurnOutcome(TurnStatus.NOT_CONTINUABLE, price.model))
                return
            question, continued = cut
            history = history[:-2]
            # Partial mode: the last message is the answer so far, and Kimi writes on from it.
            new_messages = [
                {"role": "user", "content": question},
                {"role": "assistant", "content": continued},
            ]
        window, context_tokens, prompt_tokens = await self._fit(price, history, new_messages, allowed)
        room = price.context_length - context_tokens - CONTEXT_SAFETY_TOKENS
        if room < self._settings.min_output_tokens:
            yield TurnFinished(TurnOutcome(TurnStatus.TOO_LONG, price.model))
            return
        max_tokens = min(max_output, room)

        plan = _CallPlan(thinking=request.user.thinking if price.thinking_switch else None)
        search_skipped = False
        decision: Granted | Refused | None = None
        inflight_turn = self._inflight_turn(request, conversation.id, price, prompt_tokens)
        if request.user.web_search and request.purpose == "chat":
            decision = await self._reserve_search(request, price, prompt_tokens, max_tokens, inflight_turn)
            search_skipped = decision is None
            if decision is not None:
                plan = _CallPlan(
                    web_search=True, thinking=plan.thinking, search_allowance=self._search_allowance
                )
        if decision is None:
            # prompt_tokens is the guaranteed bound: the reservation covers whatever Kimi bills.
            decision = await self._budgets.reserve_for_call(
                request.user, price, prompt_tokens, max_tokens, inflight_turn=inflight_turn
            )
        if isinstance(decision, Refused):
            yield TurnFinished(
                TurnOutcome(
                    TurnStatus.REFUSED, price.model, budget=decision.view, needed_micro=decision.needed_micro
                )
            )
            return

        answer = _Answer(
            request=request,
            conversation_id=conversation.id,
            price=price,
            decision=decision,
            plan=plan,
            messages=window.messages,
            context_tokens=context_tokens,
            prompt_tokens=prompt_tokens,
            search_skipped=search_skipped,
            kimi=self._kimi,
            store=self._store,
            budgets=self._budgets,
            web_search_fee_micro=self._prices.web_search_fee_micro,
        )
        outcome: TurnOutcome | None = None
        try:
            yield TurnStarted(price.model, continued)
            async with self._checkpoints.watching(decision.reservation, answer.progress.written):
                async for event in answer.generate(stop):
                    yield event
            outcome = await answer.settle()
        finally:
            if outcome is None:
                # The consumer went away (task cancelled, generator closed): charge what was made.
                answer.status = TurnStatus.STOPPED
                await asyncio.shield(answer.settle())
        yield TurnFinished(outcome)

    def _inflight_turn(
        self, request: TurnRequest, conversation_id: int, price: ModelPrice, prompt_tokens: int
    ) -> NewInflightTurn:
        return NewInflightTurn(
            chat_id=request.chat_id,
            user_id=request.user.telegram_id,
            thread_id=request.key.thread_id,
            reply_to=request.reply_to,
            language=request.user.language,
            conversation_id=conversation_id,
            model=price.model,
            purpose=request.purpose,
            question=request.text,
            prompt_tokens=prompt_tokens,
        )

    async def _reserve_search(
        self,
        request: TurnRequest,
        price: ModelPrice,
        prompt_tokens: int,
        max_tokens: int,
        inflight_turn: NewInflightTurn,
    ) -> Granted | None:
        """Hold the worst case of a turn with web search, or None if the budget cannot."""
        fee = self._prices.web_search_fee_micro
        # Includes the fees of the response that asks beyond the allowance (billed, not run).
        worst = search_worst_case_micro(price, prompt_tokens, max_tokens, fee, self._search_allowance)
        return await self._budgets.reserve_exactly(
            request.user, worst, max_tokens, inflight_turn=inflight_turn
        )

    async def _read_context(
        self, key: ConversationKey, allowed: int
    ) -> tuple[ConversationRecord, list[HistoryMessage]]:
        """The key's conversation and its newest messages, as many as a window of `allowed` tokens
        could take by either measure (see HISTORY_CHARS_PER_TOKEN), oldest first; one read."""
        return await self._store.conversation_with_history(
            key.chat_id,
            key.user_id,
            key.thread_id,
            max_chars=max(0, allowed) * HISTORY_CHARS_PER_TOKEN,
            chars_per_message=PER_MESSAGE_OVERHEAD * HISTORY_CHARS_PER_TOKEN,
        )

    async def _fit(
        self,
        price: ModelPrice,
        history: list[HistoryMessage],
        new_messages: list[dict[str, Any]],
        allowed: int,
    ) -> tuple[Window, int, int]:
        """The history that fits with room for a full answer.

        Returns the window, its size for the context check (Kimi's count when asked, else the
        bound) and the guaranteed bound of its tokens (for the reservation). Kimi's tokenizer is
        asked only when the bound would cut history that may well fit: the common turn makes no
        upstream call before its answer.
        """
        system = self._settings.system_prompt
        sized = SizedHistory(history, vision=price.vision)  # each turn measured once
        by_bound = sized.fit(system, new_messages, allowed - PER_REQUEST_TOKENS, Measure.BOUND)
        bound = PER_REQUEST_TOKENS + by_bound.bound_tokens
        if by_bound.dropped_turns == 0 and bound <= allowed:
            return by_bound, bound, bound
        budget = allowed
        window, counted = by_bound, None
        for _ in range(3):
            window = sized.fit(system, new_messages, budget, Measure.ESTIMATE)
            counted = await self._count_tokens(price.model, window)
            if counted is None:
                return by_bound, bound, bound  # no count from Kimi: the bound decides alone
            overshoot = counted - allowed
            if overshoot <= 0 or window.dropped_turns == len(sized.turns):
                break
            budget -= overshoot + CONTEXT_SAFETY_TOKENS  # our guess was short: drop more history
        assert counted is not None
        return window, counted, max(counted, PER_REQUEST_TOKENS + window.bound_tokens)

    async def _count_tokens(self, model: str, window: Window) -> int | None:
        """Kimi's own count of the window, or None when it does not answer."""
        try:
            counted = await self._kimi.estimate_tokens(model, window.messages)
        except (TimeoutError, KimiError, OSError) as error:
            log.info("token estimate unavailable (%s); using the local bound", type(error).__name__)
            return None
        return max(counted, 1)


__all__ = [
    "AnswerDelta",
    "ConversationKey",
    "Queued",
    "Conversations",
    "SearchingWeb",
    "ThinkingDelta",
    "TurnEvent",
    "TurnFinished",
    "TurnOutcome",
    "TurnRequest",
    "TurnStarted",
    "TurnStatus",
]
