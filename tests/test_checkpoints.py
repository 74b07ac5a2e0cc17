"""One writer saves every streaming answer's text: all changed answers in one transaction."""

from __future__ import annotations

from collections.abc import Sequence

from bot.checkpoints import Checkpoints
from storage import Checkpoint, NewInflightTurn, Reservation, Store


def turn(user_id: int) -> NewInflightTurn:
    return NewInflightTurn(
        chat_id=user_id,
        user_id=user_id,
        thread_id=None,
        reply_to=None,
        language="en",
        conversation_id=None,
        model="kimi-k2-0905-preview",
        purpose="chat",
        question="why?",
        prompt_tokens=10,
    )


class CountingStore:
    """The store, with each batch of checkpoints it was asked to write noted."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.batches: list[list[Checkpoint]] = []

    async def checkpoint_many(self, checkpoints: Sequence[Checkpoint]) -> None:
        self.batches.append(list(checkpoints))
        await self.store.checkpoint_many(checkpoints)


async def hold(store: Store, user_id: int) -> Reservation:
    reservation = await store.reserve(user_id, "2026-11", 1000, None, inflight_turn=turn(user_id))
    assert reservation is not None
    return reservation


async def saved_texts(store: Store) -> dict[int, tuple[str, str]]:
    return {t.reservation.id: (t.content, t.reasoning) for t in await store.interrupted_turns()}


async def test_changed_answers_are_saved_together_and_unchanged_ones_not_again(any_store: Store):
    counting = CountingStore(any_store)
    checkpoints = Checkpoints(counting, interval=3600)  # type: ignore[arg-type]  # saved by hand here
    first, second = await hold(any_store, 1), await hold(any_store, 2)
    texts = {first.id: ("Hello", ""), second.id: ("Bonjour", "thinking…")}
    async with (
        checkpoints.watching(first, lambda: texts[first.id]),
        checkpoints.watching(second, lambda: texts[second.id]),
    ):
        await checkpoints.save_changed()
        assert len(counting.batches) == 1 and len(counting.batches[0]) == 2
        assert await saved_texts(any_store) == texts

        texts[first.id] = ("Hello, world", "")
        await checkpoints.save_changed()
        assert [item.reservation_id for item in counting.batches[1]] == [first.id]  # only the changed one
        assert await saved_texts(any_store) == texts

        await checkpoints.save_changed()
        assert len(counting.batches) == 2  # nothing changed: no write
    assert checkpoints.watched == 0


async def test_a_settled_answer_keeps_its_settled_text(any_store: Store):
    reservation = await hold(any_store, 3)
    await any_store.checkpoint_many([Checkpoint(reservation.id, "cut here", "")])
    [interrupted] = await any_store.interrupted_turns()
    await any_store.settle_interrupted(interrupted, 10, [], [])
    await any_store.checkpoint_many([Checkpoint(reservation.id, "a late checkpoint", "")])
    [after] = await any_store.interrupted_turns()
    assert after.settled and after.content == "cut here"
