"""The core turn against the fake Kimi and a real SQLite store: reserve, stream, settle."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from bot.budget import BudgetKeeper
from bot.kimi import KimiClient, KimiConfig, KimiContentFilter
from bot.periods import current_period
from bot.pricing import load_price_table
from bot.settings import Settings
from bot.token_bound import messages_bound, request_bound
from bot.turn import (
    CONTEXT_SAFETY_TOKENS,
    AnswerDelta,
    ConversationKey,
    Conversations,
    ThinkingDelta,
    TurnFinished,
    TurnOutcome,
    TurnRequest,
    TurnStarted,
    TurnStatus,
)
from storage import NewMessage, Store
from tests.conftest import KIMI_KEY
from tests.fakes.kimi import FakeError, FakeKimi, Reply

PRICES = load_price_table()


def make_settings(kimi: FakeKimi, **overrides) -> Settings:
    values = dict(
        telegram_bot_token="1:TEST",
        moonshot_api_key=KIMI_KEY,
        moonshot_base_url=kimi.base_url,
        default_budget=Decimal(1000),
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


class Core:
    def __init__(self, store: Store, kimi: FakeKimi, **overrides) -> None:
        self.settings = make_settings(kimi, **overrides)
        self.client = KimiClient(KimiConfig(api_key=KIMI_KEY, base_url=kimi.base_url, retry_max_total=2))
        self.store = store
        self.budgets = BudgetKeeper(store, self.settings)
        self.conversations = Conversations(store, self.client, PRICES, self.settings, self.budgets)

    async def user(self, user_id: int = 7, model: str | None = None):
        user = await self.store.get_or_create_user(user_id, "en")
        if model:
            await self.store.set_user_model(user_id, model)
            user = await self.store.get_user(user_id)
        return user

    async def ask(self, text: str, user_id: int = 7, stop: asyncio.Event | None = None, on_event=None):
        key = ConversationKey(user_id, user_id)
        place = self.conversations.take_place(key)  # as the handlers do, before any await
        user = await self.store.get_user(user_id) or await self.user(user_id)
        request = TurnRequest(user=user, chat_id=user_id, key=key, text=text)
        events = []
        async for event in self.conversations.run_turn(request, stop, place):
            events.append(event)
            if on_event:
                on_event(event)
        assert isinstance(events[-1], TurnFinished)
        return events, events[-1].outcome

    async def spent(self, user_id: int = 7) -> tuple[int, int]:
        state = await self.store.budget_state(user_id, current_period(self.settings.budget_period).key)
        return state.spent_micro, state.reserved_micro


@pytest.fixture
async def core(store: Store, fake_kimi: FakeKimi):
    made = Core(store, fake_kimi)
    yield made
    await made.client.close()


async def test_a_turn_streams_then_settles_the_real_cost(core: Core, fake_kimi: FakeKimi):
    fake_kimi.script(Reply(content="Hello there, how can I help?", chunk_tokens=1))
    events, outcome = await core.ask("hi")
    assert isinstance(events[0], TurnStarted)
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert answer == "Hello there, how can I help?"
    assert sum(isinstance(e, AnswerDelta) for e in events) > 3  # it streamed, not one block
    assert outcome.status is TurnStatus.DONE and outcome.usage_reported
    price = PRICES.get("kimi-k2-0905-preview")
    assert outcome.cost_micro == price.cost_micro(outcome.prompt_tokens, outcome.completion_tokens)
    assert await core.spent() == (outcome.cost_micro, 0)
    conversation = await core.store.active_conversation(7, 7)
    stored = await core.store.conversation_messages(conversation.id)
    assert [(m.role, m.content) for m in stored] == [("user", "hi"), ("assistant", answer)]


async def test_history_is_sent_on_the_next_turn(core: Core, fake_kimi: FakeKimi):
    fake_kimi.script(Reply(content="Paris."), Reply(content="About 2 million."))
    await core.ask("Capital of France?")
    await core.ask("Its population?")
    sent = fake_kimi.chat_requests[-1].json["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[1]["content"] == "Capital of France?" and sent[2]["content"] == "Paris."


async def test_reset_starts_a_new_context(core: Core, fake_kimi: FakeKimi):
    fake_kimi.script(Reply(content="one"), Reply(content="two"))
    await core.ask("first")
    await core.store.start_new_conversation(7, 7)
    await core.ask("second")
    sent = fake_kimi.chat_requests[-1].json["messages"]
    assert [m["content"] for m in sent if m["role"] != "system"] == ["second"]


async def test_refused_when_budget_cannot_pay_and_no_upstream_call(store: Store, fake_kimi: FakeKimi):
    core = Core(store, fake_kimi, default_budget=Decimal("0.01"))
    try:
        _, outcome = await core.ask("hello")
        assert outcome.status is TurnStatus.REFUSED
        assert outcome.budget.remaining_micro == 10_000
        assert outcome.needed_micro > 10_000
        assert fake_kimi.chat_requests == []
        assert await core.spent() == (0, 0)
    finally:
        await core.client.close()


async def test_small_budget_caps_max_tokens(store: Store, fake_kimi: FakeKimi):
    core = Core(store, fake_kimi, default_budget=Decimal("3"))  # 3 元点 = 525 output tokens at most
    try:
        fake_kimi.script(Reply(content="word " * 1000))
        _, outcome = await core.ask("write a lot")
        max_tokens = fake_kimi.chat_requests[-1].json["max_tokens"]
        assert 256 <= max_tokens < 525  # MIN_OUTPUT_TOKENS (256) is the least worth starting
        assert outcome.status is TurnStatus.TRUNCATED and outcome.capped
        spent, reserved = await core.spent()
        assert reserved == 0 and 0 < spent <= 3_000_000
    finally:
        await core.client.close()


async def test_concurrent_turns_never_overspend_and_run_in_order(store: Store, fake_kimi: FakeKimi):
    # Each answer costs about 0.6 元点; a 2 元点 budget pays for a few, never for all ten.
    core = Core(store, fake_kimi, default_budget=Decimal("2"), max_output_tokens=100)
    try:
        for index in range(10):
            fake_kimi.script(Reply(content=f"answer {index} " + "x" * 300, chunk_tokens=8))
        results = await asyncio.gather(*(core.ask(f"question {i}") for i in range(10)))
        outcomes: list[TurnOutcome] = [outcome for _, outcome in results]
        statuses = {o.status for o in outcomes}
        assert TurnStatus.REFUSED in statuses and statuses & {TurnStatus.DONE, TurnStatus.TRUNCATED}
        spent, reserved = await core.spent()
        assert reserved == 0
        assert spent <= 2_000_000
        assert spent == sum(o.cost_micro for o in outcomes)
        # One turn at a time: the questions reached Kimi in the order they were asked.
        asked = [r.json["messages"][-1]["content"] for r in fake_kimi.chat_requests]
        assert asked == sorted(asked, key=lambda q: int(q.split()[1]))
    finally:
        await core.client.close()


async def test_stop_keeps_the_partial_answer_and_charges_what_was_made(core: Core, fake_kimi: FakeKimi):
    fake_kimi.script(Reply(content="tok " * 500, chunk_tokens=1, delay=0.01))
    stop = asyncio.Event()
    seen = []

    def on_event(event):
        if isinstance(event, AnswerDelta):
            seen.append(event.text)
            if len(seen) == 20:
                stop.set()

    _, outcome = await core.ask("long please", stop=stop, on_event=on_event)
    assert outcome.status is TurnStatus.STOPPED
    assert 0 < len(outcome.content) < len("tok " * 500)
    assert not outcome.usage_reported and outcome.cost_micro > 0
    assert await core.spent() == (outcome.cost_micro, 0)
    conversation = await core.store.active_conversation(7, 7)
    stored = await core.store.conversation_messages(conversation.id)
    assert stored[-1].content == outcome.content


async def test_stream_cut_before_done_is_incomplete_and_kept(core: Core, fake_kimi: FakeKimi):
    fake_kimi.script(Reply(content="partial answer that breaks off here", drop_before_done=True))
    _, outcome = await core.ask("go")
    assert outcome.status is TurnStatus.INCOMPLETE
    assert outcome.content.startswith("partial answer")
    assert outcome.cost_micro > 0 and (await core.spent())[1] == 0


async def test_upstream_error_before_first_token_charges_nothing(core: Core, fake_kimi: FakeKimi):
    fake_kimi.script(Reply(error=FakeError.content_filter()))
    _, outcome = await core.ask("something risky")
    assert outcome.status is TurnStatus.FAILED
    assert isinstance(outcome.error, KimiContentFilter)
    assert await core.spent() == (0, 0)
    conversation = await core.store.active_conversation(7, 7)
    assert await core.store.conversation_messages(conversation.id) == []


async def test_thinking_model_reasoning_is_separate_and_stored(core: Core, fake_kimi: FakeKimi):
    await core.user(model="kimi-k2-thinking")
    fake_kimi.script(Reply(reasoning="Let me think about it.", content="42."))
    events, outcome = await core.ask("meaning of life?")
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    answer = "".join(e.text for e in events if isinstance(e, AnswerDelta))
    assert thinking == "Let me think about it." and answer == "42."
    first_answer = next(i for i, e in enumerate(events) if isinstance(e, AnswerDelta))
    assert all(not isinstance(e, ThinkingDelta) for e in events[first_answer:])
    body = fake_kimi.chat_requests[-1].json
    assert body["model"] == "kimi-k2-thinking" and body.get("temperature") == 1.0
    conversation = await core.store.active_conversation(7, 7)
    stored = await core.store.conversation_messages(conversation.id)
    assert stored[-1].reasoning == "Let me think about it." and stored[-1].content == "42."


async def test_long_history_is_trimmed_to_the_context_window(core: Core, fake_kimi: FakeKimi):
    await core.user(model="moonshot-v1-8k")
    for index in range(12):
        fake_kimi.script(Reply(content=f"reply {index} " + "y" * 2000))
        _, outcome = await core.ask(f"q{index} " + "z" * 2000)
        assert outcome.status in (TurnStatus.DONE, TurnStatus.TRUNCATED), outcome
    sent = fake_kimi.chat_requests[-1].json["messages"]
    assert sent[-1]["content"].startswith("q11")
    assert len(sent) < 1 + 2 * 12  # older turns were dropped
    assert sent[1]["role"] == "user"  # never an orphaned answer first


async def test_a_message_too_long_for_the_model_is_refused_without_a_call(core: Core, fake_kimi: FakeKimi):
    await core.user(model="moonshot-v1-8k")
    _, outcome = await core.ask("x" * 40_000)
    assert outcome.status is TurnStatus.TOO_LONG
    assert fake_kimi.chat_requests == [] and await core.spent() == (0, 0)


async def test_history_is_refitted_when_kimi_counts_more_than_our_estimate(core: Core, fake_kimi: FakeKimi):
    await core.user(model="moonshot-v1-8k")
    for index in range(6):
        fake_kimi.script(Reply(content=f"reply {index} " + "y" * 900))
        await core.ask(f"q{index} " + "z" * 900)
    real_estimate = core.client.estimate_tokens

    async def inflated(model, messages):  # a tokenizer that counts three times what we guess
        return 3 * await real_estimate(model, messages)

    core.client.estimate_tokens = inflated
    fake_kimi.script(Reply(content="fits"))
    _, outcome = await core.ask("last question")
    assert outcome.status is TurnStatus.DONE
    body = fake_kimi.chat_requests[-1].json
    assert len(body["messages"]) < 1 + 2 * 6 + 1  # history dropped to make room
    assert body["max_tokens"] == core.settings.max_output_tokens  # a full-length answer still fits


async def test_the_reservation_bounds_exactly_the_window_that_is_sent(core: Core, fake_kimi: FakeKimi):
    price = PRICES.get("moonshot-v1-8k")
    assert price is not None
    conversation = await core.store.active_conversation(7, 7)
    allowed = price.context_length - core.settings.max_output_tokens - CONTEXT_SAFETY_TOKENS
    new = [{"role": "user", "content": "next"}]
    turns = [
        [
            NewMessage(role="user", content=f"q{i} 你好 " * 40),
            NewMessage(role="assistant", content="答" * 300),
        ]
        for i in range(12)
    ]
    for count in (1, 12):  # fits whole (by the bound alone); cut (Kimi counts the window)
        await core.store.add_messages(conversation.id, [m for turn in turns[:count] for m in turn])
        _, history = await core.conversations._read_context(ConversationKey(7, 7), allowed)
        for kimi_answers in (True, False):
            if not kimi_answers and count > 1:  # (a window that fits whole asks Kimi nothing)
                unavailable = FakeError.invalid_request("tokenizer unavailable")
                fake_kimi.script_errors("/tokenizers/estimate-token-count", unavailable)
            window, size, reserved = await core.conversations._fit(price, history, new, allowed)
            sent = window.messages
            assert reserved == max(size, request_bound(sent)) and size <= allowed
            assert sent[1]["role"] == "user" and sent[-1] == new[0]  # whole turns, newest kept
            assert sent[-2]["content"] == turns[count - 1][1].content
            kept_turns = (len(sent) - 2) // 2
            if count == 1 or not kimi_answers:  # by the bound: kept turns and nothing more fits
                older = [{"role": m.role, "content": m.content} for m in turns[count - kept_turns - 1]]
                assert kept_turns == count or size + messages_bound(older) > allowed
            else:  # Kimi's count lets more history in than the bound would
                assert request_bound(sent) > allowed
        await core.store.start_new_conversation(7, 7)
        conversation = await core.store.active_conversation(7, 7)


async def test_an_ordinary_turn_asks_kimi_for_nothing_but_the_answer(core: Core, fake_kimi: FakeKimi):
    await core.user()
    fake_kimi.script(Reply(content="short"))
    _, outcome = await core.ask("a question that fits easily")
    assert outcome.status is TurnStatus.DONE
    assert [r.path for r in fake_kimi.requests] == ["/v1/chat/completions"]
