"""The search reservation holds every fee the user can be charged: those of the searches run and
of the one response that asks past the allowance (WEB_SEARCH_MAX_CALLS_PER_RESPONSE)."""

from __future__ import annotations

import pytest

from bot.pricing import load_price_table
from bot.search_budget import SearchAllowance, chargeable_searches, search_worst_case_micro
from bot.settings import SettingsError, load_settings


def test_the_reservation_holds_the_fees_of_every_chargeable_search() -> None:
    table = load_price_table()
    price = table.models["kimi-k2.6"]
    fee = table.web_search_fee_micro
    allowance = SearchAllowance(searches=2, result_tokens=16_000, per_response=5)
    tokens_only = search_worst_case_micro(price, 1000, 500, 0, allowance)
    with_fees = search_worst_case_micro(price, 1000, 500, fee, allowance)
    assert with_fees - tokens_only == 7 * fee
    # Whatever Moonshot bills, the user is charged no more fees than were reserved.
    assert [chargeable_searches(billed, allowance) for billed in (0, 3, 7, 8, 40)] == [0, 3, 7, 7, 7]


def test_the_allowance_is_set_by_the_environment() -> None:
    settings = load_settings(
        telegram_bot_token="1:x",
        moonshot_api_key="k",
        web_search_max_calls=3,
        web_search_max_result_tokens=9000,
        web_search_max_calls_per_response=6,
    )
    assert (
        settings.web_search_max_calls,
        settings.web_search_max_result_tokens,
        settings.web_search_max_calls_per_response,
    ) == (3, 9000, 6)
    with pytest.raises(SettingsError):
        load_settings(telegram_bot_token="1:x", moonshot_api_key="k", web_search_max_calls_per_response=0)
