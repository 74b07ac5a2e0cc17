"""The allow-list rules (bot.access) on a real store: admins, ALLOWED_USER_IDS, /allow and /deny."""

from __future__ import annotations

import asyncio

from bot.access import AccessPolicy
from bot.settings import Settings
from storage import Coordination, Store

ADMIN, LISTED, OTHER = 1, 2, 3


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, telegram_bot_token="1:x", moonshot_api_key="sk-x", **values)  # type: ignore[arg-type]


async def test_an_unlisted_bot_is_open_until_the_first_allow(store: Store) -> None:
    policy = AccessPolicy(store, settings(admin_user_ids=str(ADMIN)))
    await policy.load()
    assert policy.allows(OTHER) and policy.allows(LISTED)
    denied = await policy.deny(OTHER, by=ADMIN)
    assert not policy.allows(OTHER) and policy.allows(LISTED) and not denied.closed_the_bot
    allowed = await policy.allow(LISTED, by=ADMIN)
    assert allowed.closed_the_bot  # from now on only the listed
    assert policy.allows(LISTED) and not policy.allows(OTHER) and not policy.allows(99)
    assert policy.allows(ADMIN)


async def test_a_deny_overrides_allowed_user_ids_and_admins_stay_in(store: Store) -> None:
    policy = AccessPolicy(store, settings(admin_user_ids=str(ADMIN), allowed_user_ids=str(LISTED)))
    await policy.load()
    assert policy.allows(LISTED) and not policy.allows(OTHER)
    await policy.deny(LISTED, by=ADMIN)
    change = await policy.deny(ADMIN, by=ADMIN)
    assert not policy.allows(LISTED) and policy.allows(ADMIN) and change.is_admin
    await policy.allow(LISTED, by=ADMIN)
    assert policy.allows(LISTED)


async def test_another_process_sees_a_change_at_its_next_refresh(store: Store) -> None:
    here = AccessPolicy(store, settings(allowed_user_ids=str(LISTED)))
    there = AccessPolicy(store, settings(allowed_user_ids=str(LISTED)))
    await here.load()
    await there.load()
    await here.allow(OTHER, by=ADMIN)
    assert here.allows(OTHER) and not there.allows(OTHER)
    await there.load()
    assert there.allows(OTHER)
    listing = await there.listing()
    assert listing.allowed_by_admins == [OTHER] and listing.from_settings == {LISTED}


async def test_replicas_on_postgresql_hear_of_a_change_at_once(pg_url: str) -> None:
    """Two processes' policies on one PostgreSQL: the other one re-reads on the notification,
    long before its periodic refresh (an hour here) would."""
    here_store, there_store = Store(pg_url), Store(pg_url)
    await here_store.start()
    await there_store.start()
    listener = Coordination(there_store)
    await listener.start()
    try:
        here = AccessPolicy(here_store, settings(allowed_user_ids=str(LISTED)))
        there = AccessPolicy(there_store, settings(allowed_user_ids=str(LISTED)))
        await here.load()
        await there.load()
        changed = asyncio.Event()
        listener.on_access_change(there.changed_elsewhere)
        listener.on_access_change(changed.set)
        refresher = asyncio.create_task(there.keep_fresh(interval=3600))
        await here.allow(OTHER, by=ADMIN)
        await asyncio.wait_for(changed.wait(), 10)
        for _ in range(500):  # the refresher's read follows the notification
            if there.allows(OTHER):
                break
            await asyncio.sleep(0.01)
        assert there.allows(OTHER)
        refresher.cancel()
    finally:
        await listener.close()
        await here_store.close()
        await there_store.close()
