"""Command arguments: amounts to exact micro-元点, Telegram ids in range, excerpts safe to echo."""

from __future__ import annotations

import pytest

from handlers.command_arguments import (
    MAX_POINTS,
    MAX_TELEGRAM_ID,
    BadArgument,
    BudgetLimit,
    BudgetWord,
    Reason,
    bad_argument_text,
    excerpt,
    parse_budget_limit,
    parse_chat_id,
    parse_points,
    parse_user_id,
)


@pytest.mark.parametrize(
    ("typed", "micro"),
    [
        ("12", 12_000_000),
        ("12.5", 12_500_000),
        ("0", 0),
        ("0.000001", 1),
        (".5", 500_000),
        ("5.", 5_000_000),
        ("+3", 3_000_000),
        ("007.10", 7_100_000),
        ("1.5000000000", 1_500_000),  # trailing zeros are not precision
        ("-0", 0),
        ("１２．５", 12_500_000),  # full-width digits from a phone keyboard
        ("2.5元点", 2_500_000),
        (" 42 ", 42_000_000),
        (str(MAX_POINTS), MAX_POINTS * 1_000_000),
    ],
)
def test_amounts_are_exact_micro_points(typed: str, micro: int):
    assert parse_points(typed) == micro


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("nan", Reason.NOT_A_NUMBER),
        ("NaN", Reason.NOT_A_NUMBER),
        ("inf", Reason.NOT_A_NUMBER),
        ("-Infinity", Reason.NOT_A_NUMBER),
        ("1e309", Reason.NOT_A_NUMBER),
        ("1E3", Reason.NOT_A_NUMBER),
        ("0x10", Reason.NOT_A_NUMBER),
        ("1_000", Reason.NOT_A_NUMBER),
        ("12,5", Reason.NOT_A_NUMBER),
        ("١٢", Reason.NOT_A_NUMBER),  # other scripts' digits: Decimal() would take them
        ("²", Reason.NOT_A_NUMBER),
        ("", Reason.NOT_A_NUMBER),
        (".", Reason.NOT_A_NUMBER),
        ("abc", Reason.NOT_A_NUMBER),
        ("1.2.3", Reason.NOT_A_NUMBER),
        ("-5", Reason.NEGATIVE),
        ("−5", Reason.NEGATIVE),  # U+2212 minus sign
        ("-0.1", Reason.NEGATIVE),
        ("9" * 300, Reason.TOO_LARGE),
        ("1" + "0" * 4200, Reason.TOO_LARGE),  # past int()'s 4300-digit guard would raise
        (str(MAX_POINTS + 1), Reason.TOO_LARGE),
        (str(MAX_POINTS) + ".000001", Reason.TOO_LARGE),
        ("0.0000001", Reason.TOO_PRECISE),
        ("0." + "0" * 5000 + "1", Reason.TOO_PRECISE),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(typed: str, reason: Reason):
    with pytest.raises(BadArgument) as raised:
        parse_points(typed)
    assert raised.value.reason is reason


def test_budget_words_and_amounts():
    assert parse_budget_limit("unlimited") == BudgetLimit(word=BudgetWord.UNLIMITED)
    assert parse_budget_limit("UNLIMITED") == BudgetLimit(word=BudgetWord.UNLIMITED)
    assert parse_budget_limit("不限") == BudgetLimit(word=BudgetWord.UNLIMITED)
    assert parse_budget_limit("default") == BudgetLimit(word=BudgetWord.DEFAULT)
    assert parse_budget_limit("默认") == BudgetLimit(word=BudgetWord.DEFAULT)
    assert parse_budget_limit("2.5") == BudgetLimit(micro=2_500_000)
    with pytest.raises(BadArgument):
        parse_budget_limit("inf")  # an infinity is not a word for unlimited


@pytest.mark.parametrize(
    ("typed", "user_id"),
    [("1", 1), ("123456789", 123456789), ("+42", 42), ("００７", 7), (str(MAX_TELEGRAM_ID), MAX_TELEGRAM_ID)],
)
def test_user_ids_in_range(typed: str, user_id: int):
    assert parse_user_id(typed) == user_id


@pytest.mark.parametrize(
    ("typed", "reason"),
    [
        ("12345678901234567890", Reason.ID_OUT_OF_RANGE),  # 20 digits: past SQLite's int64 too
        (str(MAX_TELEGRAM_ID + 1), Reason.ID_OUT_OF_RANGE),
        ("0", Reason.ID_OUT_OF_RANGE),
        ("-5", Reason.ID_OUT_OF_RANGE),
        ("9" * 5000, Reason.ID_OUT_OF_RANGE),
        ("@someone", Reason.NOT_AN_ID),
        ("12.0", Reason.NOT_AN_ID),
        ("1e5", Reason.NOT_AN_ID),
        ("²", Reason.NOT_AN_ID),  # str.isdigit() says yes, int() says no
        ("", Reason.NOT_AN_ID),
        ("nan", Reason.NOT_AN_ID),
    ],
)
def test_bad_user_ids(typed: str, reason: Reason):
    with pytest.raises(BadArgument) as raised:
        parse_user_id(typed)
    assert raised.value.reason is reason


def test_chat_ids_may_be_negative_but_not_zero_or_huge():
    assert parse_chat_id("-1001234567890") == -1001234567890
    assert parse_chat_id("42") == 42
    for bad in ("0", "-" + "9" * 20, "group"):
        with pytest.raises(BadArgument):
            parse_chat_id(bad)


def test_excerpts_are_short_and_on_one_line():
    assert excerpt("short") == "short"
    assert excerpt("two\n  lines") == "two lines"
    long = excerpt("x" * 4000)
    assert len(long) == 40 and long.endswith("…")
    assert len(excerpt("模" * 100, limit=10)) == 10


def test_a_bad_argument_reply_quotes_only_an_excerpt_in_both_languages():
    with pytest.raises(BadArgument) as raised:
        parse_points("9" * 300)
    english = bad_argument_text("en", raised.value)
    chinese = bad_argument_text("zh", raised.value)
    assert "too large" in english and "1000000000 元点" in english and len(english) < 120
    assert "太大" in chinese and len(chinese) < 120
    with pytest.raises(BadArgument) as raised:
        parse_user_id("12345678901234567890")
    assert str(MAX_TELEGRAM_ID) in bad_argument_text("en", raised.value)
