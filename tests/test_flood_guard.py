"""The flood guard's arithmetic, on a fake clock: per chat, per group, overall, and after a 429."""

from __future__ import annotations

import asyncio

import pytest
from telegram.error import RetryAfter

from handlers.flood import FloodGuard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def send(guard: FloodGuard, chat_id: int, endpoint: str = "sendMessage", result=True, **limit_args):
    async def callback():
        if isinstance(result, Exception):
            raise result
        return result

    return await guard.process_request(callback, (), {}, endpoint, {"chat_id": chat_id}, limit_args or None)


async def test_one_message_a_second_per_chat(clock: Clock):
    guard = FloodGuard(clock=clock)
    await send(guard, 5)
    assert guard.delay_for(5) == pytest.approx(1.0)
    assert guard.delay_for(6) == 0.0  # other chats are not held up
    clock.now += 0.4
    assert guard.delay_for(5) == pytest.approx(0.6)


async def test_drafts_and_chat_actions_are_not_messages(clock: Clock):
    guard = FloodGuard(clock=clock)
    await send(guard, 5, "sendMessageDraft")
    await send(guard, 5, "sendChatAction")
    assert guard.delay_for(5) == 0.0


async def test_twenty_a_minute_in_a_group_with_slots_kept_for_final_messages(clock: Clock):
    guard = FloodGuard(clock=clock)
    group = -100123
    guard.reserve(group, 2)
    for _ in range(17):
        await send(guard, group, "editMessageText")
        clock.now += 1.0
    assert guard.has_headroom(group)  # 17 used + 2 kept back < 20
    await send(guard, group, "editMessageText")
    clock.now += 1.0
    assert not guard.has_headroom(group)  # an optional edit would eat a final message's slot
    await send(guard, group)
    clock.now += 1.0
    guard.unreserve(group, 2)
    await send(guard, group)
    clock.now += 1.0
    # 20 in the window: the next one waits for the oldest to leave it (61 s window, a 1 s margin).
    assert guard.delay_for(group) == pytest.approx(61.0 - 20.0)


async def test_overall_limit_across_chats(clock: Clock):
    guard = FloodGuard(clock=clock, global_per_second=3)
    for chat in (1, 2, 3):
        await send(guard, chat)
    assert guard.delay_for(4) == pytest.approx(1.0)


async def test_a_429_blocks_the_chat_and_optional_calls_are_not_retried(clock: Clock):
    guard = FloodGuard(clock=clock)
    with pytest.raises(RetryAfter):
        await send(guard, 7, "editMessageText", result=RetryAfter(9), retry=False)
    assert guard.delay_for(7) == pytest.approx(9.0)


async def test_slots_count_from_when_telegram_answered(clock: Clock):
    guard = FloodGuard(clock=clock)

    async def slow_callback():
        clock.now += 0.5  # the request took half a second to arrive and be answered
        return True

    await guard.process_request(slow_callback, (), {}, "sendMessage", {"chat_id": 9}, None)
    assert guard.delay_for(9) == pytest.approx(1.0)  # a full second from the answer, not from the send


async def test_a_request_in_flight_holds_its_slot_until_answered(clock: Clock):
    guard = FloodGuard(clock=clock, global_per_second=2)
    answer = asyncio.Event()

    async def slow():
        await answer.wait()
        return True

    flights = [
        asyncio.create_task(guard.process_request(slow, (), {}, "sendMessage", {"chat_id": c}, None))
        for c in (1, 2)
    ]
    await asyncio.sleep(0)
    clock.now += 5.0  # however long the requests take to arrive, they still count
    assert guard.delay_for(3) > 0 and guard.delay_for(1) > 0
    answer.set()
    await asyncio.gather(*flights)
    assert guard.delay_for(3) == pytest.approx(1.0)  # dated from the answers


async def test_waiting_chats_are_served_first_come_first_served():
    guard = FloodGuard(global_per_second=3)
    order: list[int] = []

    def recorder(chat: int):
        async def callback():
            order.append(chat)
            return True

        return callback

    tasks = []
    for chat in range(1, 10):
        tasks.append(
            asyncio.create_task(
                guard.process_request(recorder(chat), (), {}, "sendMessage", {"chat_id": chat}, None)
            )
        )
        await asyncio.sleep(0)  # each asks after the one before
    await asyncio.gather(*tasks)
    assert order == list(range(1, 10))


async def test_idle_chats_are_forgotten(clock: Clock):
    guard = FloodGuard(clock=clock, global_per_second=1000)
    for chat in range(1, 101):
        await send(guard, chat)
    guard.reserve(-100500)  # a stream still holding a group slot is remembered
    assert guard.tracked_chats == 101
    clock.now += 40.0
    await send(guard, 999)
    assert guard.tracked_chats == 2
