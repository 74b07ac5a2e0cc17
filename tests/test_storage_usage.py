"""Users, the usage ledger as /cost reads it, and the document extraction cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from storage import NewMessage, NewUsage, Store, UsageTotals

pytest_plugins = ["tests.db_fixtures"]

USER, OTHER = 1001, 2002
K2, THINKING = "kimi-k2-0905-preview", "kimi-k2-thinking"


def call(
    model: str,
    cost: int,
    *,
    user: int = USER,
    conversation_id: int | None = None,
    purpose: str = "chat",
    prompt: int = 200,
    cached: int = 0,
    completion: int = 1000,
    searches: int = 0,
) -> NewUsage:
    return NewUsage(
        user_id=user,
        chat_id=user,
        model=model,
        prompt_tokens=prompt,
        cached_tokens=cached,
        completion_tokens=completion,
        cost_micro=cost,
        purpose=purpose,  # type: ignore[arg-type]
        conversation_id=conversation_id,
        web_search_calls=searches,
    )


async def turn(store: Store, *calls: NewUsage, user: int = USER) -> None:
    """One settled turn, as the core does it: reserve, then settle with the calls made."""
    reservation = await store.reserve(user, "total", 10**9, None)
    assert reservation is not None
    await store.settle(reservation, sum(c.cost_micro for c in calls), list(calls))


# users


async def test_a_new_user_gets_defaults(any_store: Store) -> None:
    user = await any_store.get_or_create_user(USER, "zh", "alice")
    assert (user.telegram_id, user.language, user.username) == (USER, "zh", "alice")
    assert (user.model, user.role, user.budget_override_micro) == (None, "user", None)
    assert user.created_at.tzinfo is not None
    assert await any_store.get_user(USER) == user
    assert await any_store.get_user(OTHER) is None


async def test_language_and_username_follow_telegram(any_store: Store) -> None:
    await any_store.get_or_create_user(USER, "zh", "alice")
    assert (await any_store.get_or_create_user(USER, "en")).language == "en"
    unchanged = await any_store.get_or_create_user(USER)  # nothing given: nothing forgotten
    assert (unchanged.language, unchanged.username) == ("en", "alice")
    assert (await any_store.get_or_create_user(USER, username="alice2")).username == "alice2"


async def test_model_role_and_budget_override(any_store: Store) -> None:
    await any_store.get_or_create_user(USER)
    await any_store.set_user_model(USER, THINKING)
    await any_store.set_user_role(USER, "admin")
    await any_store.set_budget_override(USER, 5_000_000)
    user = await any_store.get_user(USER)
    assert user is not None
    assert (user.model, user.role, user.budget_override_micro) == (THINKING, "admin", 5_000_000)

    await any_store.set_budget_override(USER, None)
    await any_store.set_user_model(USER, None)
    user = await any_store.get_user(USER)
    assert user is not None and (user.model, user.budget_override_micro) == (None, None)


async def test_an_admin_can_configure_a_user_who_never_wrote(any_store: Store) -> None:
    await any_store.set_budget_override(OTHER, 0)
    user = await any_store.get_user(OTHER)
    assert user is not None and user.budget_override_micro == 0 and user.role == "user"


async def test_unknown_role_is_refused(any_store: Store) -> None:
    with pytest.raises(ValueError):
        await any_store.set_user_role(USER, "owner")


async def test_telegram_ids_beyond_32_bits(any_store: Store) -> None:
    big = 8_000_000_000
    assert (await any_store.get_or_create_user(big)).telegram_id == big


# usage for /cost


async def test_totals_per_model_with_tokens_and_cost(any_store: Store) -> None:
    await turn(any_store, call(K2, 6_000, cached=50, searches=1), call(K2, 1_000, purpose="search"))
    await turn(any_store, call(THINKING, 9_000, prompt=300, completion=2000))
    await turn(any_store, call(K2, 5, user=OTHER), user=OTHER)

    totals = await any_store.usage_totals(USER)
    assert totals == [
        UsageTotals(K2, calls=2, prompt_tokens=400, cached_tokens=50, completion_tokens=2000,
                    cost_micro=7_000, web_search_calls=1, web_search_cost_micro=1_000),
        UsageTotals(THINKING, calls=1, prompt_tokens=300, cached_tokens=0, completion_tokens=2000,
                    cost_micro=9_000, web_search_calls=0),
    ]  # fmt: skip
    assert all(isinstance(t.cost_micro, int) for t in totals)


async def test_totals_since_a_moment_in_any_timezone(any_store: Store) -> None:
    await turn(any_store, call(K2, 1_000))
    middle = datetime.now(UTC)
    await turn(any_store, call(K2, 2_000))

    assert [t.cost_micro for t in await any_store.usage_totals(USER, since=middle)] == [2_000]
    beijing = middle.astimezone(timezone(timedelta(hours=8)))  # same moment, other offset
    assert [t.cost_micro for t in await any_store.usage_totals(USER, since=beijing)] == [2_000]
    future = middle + timedelta(days=1)
    assert await any_store.usage_totals(USER, since=future) == []
    with pytest.raises(ValueError, match="timezone-aware"):
        await any_store.usage_totals(USER, since=datetime(2026, 11, 22))


async def test_totals_of_one_conversation(any_store: Store) -> None:
    first = await any_store.active_conversation(USER, USER)
    await turn(any_store, call(K2, 1_000, conversation_id=first.id))
    second = await any_store.start_new_conversation(USER, USER)
    await turn(any_store, call(K2, 2_000, conversation_id=second.id))
    await turn(any_store, call(THINKING, 4_000, conversation_id=second.id))

    by_conversation = await any_store.usage_totals(USER, conversation_id=second.id)
    assert [(t.model, t.cost_micro) for t in by_conversation] == [(K2, 2_000), (THINKING, 4_000)]
    assert [t.cost_micro for t in await any_store.usage_totals(USER, conversation_id=first.id)] == [1_000]


async def test_last_reply_usage_is_the_latest_turn_only(any_store: Store) -> None:
    assert await any_store.last_reply_usage(USER) == []
    await turn(any_store, call(K2, 1_000))
    await turn(any_store, call(THINKING, 3_000), call(K2, 500, purpose="search", searches=1))
    await turn(any_store, call(K2, 7, user=OTHER), user=OTHER)  # someone else, later

    last = await any_store.last_reply_usage(USER)
    assert [(t.model, t.calls, t.cost_micro, t.web_search_calls) for t in last] == [
        (K2, 1, 500, 1),
        (THINKING, 1, 3_000, 0),
    ]


async def test_settle_records_its_usage_with_its_messages(any_store: Store) -> None:
    conversation = await any_store.active_conversation(USER, USER)
    reservation = await any_store.reserve(USER, "total", 50_000, None)
    assert reservation is not None
    await any_store.settle(
        reservation,
        6_000,
        call(K2, 6_000, conversation_id=conversation.id),
        messages=[NewMessage(role="user", content="q"), NewMessage(role="assistant", content="a")],
        conversation_id=conversation.id,
    )
    assert [t.cost_micro for t in await any_store.last_reply_usage(USER)] == [6_000]
    assert len(await any_store.conversation_messages(conversation.id)) == 2


async def test_settle_files_unattributed_calls_under_its_conversation(any_store: Store) -> None:
    conversation = await any_store.active_conversation(USER, USER)
    reservation = await any_store.reserve(USER, "total", 50_000, None)
    assert reservation is not None
    await any_store.settle(reservation, 3_000, call(K2, 3_000), conversation_id=conversation.id)
    totals = await any_store.usage_totals(USER, conversation_id=conversation.id)
    assert [t.cost_micro for t in totals] == [3_000]


# document extraction cache


async def test_extraction_cache(any_store: Store) -> None:
    assert await any_store.cached_extraction("AgADBAAD") is None
    await any_store.save_extraction("AgADBAAD", "report.pdf", "page one", 3)
    assert await any_store.cached_extraction("AgADBAAD") == "page one"

    await any_store.save_extraction("AgADBAAD", "report.pdf", "page one, again", 4)  # overwrite
    record = await any_store.get_extraction("AgADBAAD")
    assert record is not None
    assert (record.filename, record.content, record.tokens) == ("report.pdf", "page one, again", 4)
    assert await any_store.cached_extraction("other") is None
