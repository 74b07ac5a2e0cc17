"""Conversations: one per scope (private, group per user, shared, forum topic), history kept."""

from __future__ import annotations

import asyncio

import pytest

from storage import NewMessage, Store

pytest_plugins = ["tests.db_fixtures"]

ALICE, BOB = 111, 222
GROUP = -1001234567890  # supergroup ids are beyond 32 bits


async def test_private_chat_keeps_one_active_conversation(any_store: Store) -> None:
    first = await any_store.active_conversation(ALICE, ALICE)
    again = await any_store.active_conversation(ALICE, ALICE)
    assert first == again
    assert (first.chat_id, first.user_id, first.thread_id, first.active) == (ALICE, ALICE, None, True)


async def test_scopes_are_kept_apart(any_store: Store) -> None:
    scopes = [
        (ALICE, ALICE, None),  # Alice's private chat
        (GROUP, ALICE, None),  # Alice in the group (per-user mode)
        (GROUP, BOB, None),  # Bob in the same group
        (GROUP, None, None),  # the group's shared conversation
        (GROUP, None, 5),  # forum topic 5, shared
        (GROUP, None, 6),  # forum topic 6
        (GROUP, ALICE, 5),  # Alice in topic 5 (per user and topic)
    ]
    ids = [(await any_store.active_conversation(*scope)).id for scope in scopes]
    assert len(set(ids)) == len(scopes)
    assert [(await any_store.active_conversation(*scope)).id for scope in scopes] == ids


async def test_concurrent_first_messages_open_one_conversation(any_store: Store) -> None:
    found = await asyncio.gather(*(any_store.active_conversation(GROUP, None, 9) for _ in range(20)))
    assert len({c.id for c in found}) == 1


async def test_starting_anew_keeps_the_history(any_store: Store) -> None:
    old = await any_store.active_conversation(GROUP, BOB)
    await any_store.add_messages(old.id, [NewMessage(role="user", content="remember me")])

    new = await any_store.start_new_conversation(GROUP, BOB)

    assert new.id != old.id and new.active
    assert await any_store.active_conversation(GROUP, BOB) == new
    assert await any_store.conversation_messages(new.id) == []
    assert [m.content for m in await any_store.conversation_messages(old.id)] == ["remember me"]
    # other scopes in the chat are untouched
    alice = await any_store.active_conversation(GROUP, ALICE)
    assert alice.id not in (old.id, new.id)


async def test_start_new_without_a_previous_conversation(any_store: Store) -> None:
    new = await any_store.start_new_conversation(ALICE, ALICE)
    assert await any_store.active_conversation(ALICE, ALICE) == new


async def test_concurrent_resets_leave_one_active_conversation(any_store: Store) -> None:
    await any_store.active_conversation(ALICE, ALICE)
    results = await asyncio.gather(*(any_store.start_new_conversation(ALICE, ALICE) for _ in range(5)))
    active = await any_store.active_conversation(ALICE, ALICE)
    assert results[-1].active and active.id in {c.id for c in results}


async def test_messages_come_oldest_first_and_limit_keeps_the_newest(any_store: Store) -> None:
    conversation = await any_store.active_conversation(ALICE, ALICE)
    ids = await any_store.add_messages(
        conversation.id,
        [NewMessage(role="user" if i % 2 == 0 else "assistant", content=f"m{i}") for i in range(6)],
    )
    everything = await any_store.conversation_messages(conversation.id)
    assert [m.content for m in everything] == [f"m{i}" for i in range(6)]
    assert [m.id for m in everything] == ids
    newest = await any_store.conversation_messages(conversation.id, limit=2)
    assert [m.content for m in newest] == ["m4", "m5"]


async def test_recent_messages_read_newest_first_only_what_is_needed(any_store: Store) -> None:
    conversation = await any_store.active_conversation(ALICE, ALICE)
    other = await any_store.active_conversation(GROUP, ALICE)
    await any_store.add_messages(other.id, [NewMessage(role="user", content="x" * 50)])
    # 200 messages of 10 characters, across several pages of the newest-first read.
    await any_store.add_messages(
        conversation.id, [NewMessage(role="user", content=f"{i:010d}") for i in range(200)]
    )
    recent = await any_store.recent_messages(conversation.id, max_chars=1005)
    assert [m.content for m in recent] == [f"{i:010d}" for i in range(99, 200)]  # 101 reach 1005
    # Counting 5 characters more per message (the turn's per-message allowance): 67 reach 1005.
    recent = await any_store.recent_messages(conversation.id, max_chars=1005, chars_per_message=5)
    assert [m.content for m in recent] == [f"{i:010d}" for i in range(133, 200)]
    everything = await any_store.recent_messages(conversation.id, max_chars=10**9)
    assert len(everything) == 200 and everything[0].content == f"{0:010d}"
    assert await any_store.recent_messages(conversation.id, max_chars=0) == []


async def test_message_fields_round_trip(any_store: Store) -> None:
    conversation = await any_store.active_conversation(ALICE, ALICE)
    document = NewMessage(role="system", content="[a.pdf]\ntext", kind="document", tokens=4)
    other = await any_store.active_conversation(GROUP, ALICE)
    elsewhere = NewMessage(role="user", content="x", conversation_id=other.id)
    [doc_id, elsewhere_id] = await any_store.add_messages(conversation.id, [document, elsewhere])

    [stored] = await any_store.conversation_messages(conversation.id)
    assert (stored.id, stored.role, stored.kind, stored.tokens) == (doc_id, "system", "document", 4)
    assert stored.reasoning is None and stored.telegram_message_ids == ()
    assert stored.created_at.tzinfo is not None
    assert [m.id for m in await any_store.conversation_messages(other.id)] == [elsewhere_id]


async def test_telegram_message_ids_are_recorded(any_store: Store) -> None:
    conversation = await any_store.active_conversation(ALICE, ALICE)
    [message_id] = await any_store.add_messages(
        conversation.id, [NewMessage(role="assistant", content="long answer")]
    )
    await any_store.set_message_telegram_ids([(message_id, [501, 502, 503])])
    [stored] = await any_store.conversation_messages(conversation.id)
    assert stored.telegram_message_ids == (501, 502, 503)


async def test_message_needs_a_conversation_and_a_known_role(any_store: Store) -> None:
    with pytest.raises(ValueError):
        await any_store.add_messages(None, [NewMessage(role="user", content="where to?")])
    with pytest.raises(ValueError):
        NewMessage(role="robot", content="?")  # type: ignore[arg-type]


async def test_a_turn_reads_its_conversation_and_history_together(any_store: Store) -> None:
    first, history = await any_store.conversation_with_history(5, 5, None, max_chars=1_000)
    assert history == [] and first == await any_store.active_conversation(5, 5)  # opened
    await any_store.add_messages(first.id, [NewMessage(role="user", content=f"m{n}") for n in range(6)])
    again, history = await any_store.conversation_with_history(5, 5, None, max_chars=6, chars_per_message=1)
    assert again.id == first.id
    assert history == await any_store.recent_messages(first.id, 6, chars_per_message=1)
    assert [m.content for m in history] == ["m4", "m5"]  # the newest (3 chars each), oldest first
