"""Reading command arguments typed by people: amounts of 元点, Telegram ids, and safe excerpts.

Every parser either returns a value that is safe to store (an exact integer inside the range the
database and Telegram accept) or raises `BadArgument` with a reason the handler turns into a short
reply. Nothing here touches the database, so a bad argument can never leave a row behind.

Numbers are read with a strict pattern instead of `Decimal(...)`/`int(...)`: those accept NaN,
infinities, exponents (1e309), other scripts' digits and underscores, and `int()` of a very long
string raises instead of answering.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from bot.pricing import MICRO, format_points
from handlers.texts import text

MAX_POINTS = 1_000_000_000  # the largest amount accepted: far above any real budget, far below int64
# Telegram: user and chat ids "have at most 52 significant bits" (Bot API, User.id / Chat.id).
MAX_TELEGRAM_ID = 2**52 - 1
EXCERPT_CHARS = 40  # how much of a bad argument a reply repeats

_NUMBER = re.compile(r"\+?(?P<whole>[0-9]*)(?:\.(?P<fraction>[0-9]*))?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# Full-width digits, point and signs (a Chinese keyboard gives them) and U+2212 read as ASCII.
# Deliberately not NFKC: that would also read "²" as 2.
_ASCII_FORMS = str.maketrans("０１２３４５６７８９．＋－−﹣", "0123456789.+---")
_POINTS_SUFFIXES = ("元点", "点")


class Reason(Enum):
    """Why an argument was refused; each has a text in handlers/texts.py ("arg_<value>")."""

    NOT_A_NUMBER = "not_a_number"
    NEGATIVE = "negative"
    TOO_LARGE = "too_large"
    TOO_PRECISE = "too_precise"
    NOT_AN_ID = "not_an_id"
    ID_OUT_OF_RANGE = "id_out_of_range"
    CHAT_ID_OUT_OF_RANGE = "chat_id_out_of_range"


class BadArgument(ValueError):
    """An argument that can't be used; `excerpt` is the part of it a reply may repeat."""

    def __init__(self, reason: Reason, value: str) -> None:
        super().__init__(f"{reason.value}: {excerpt(value)!r}")
        self.reason = reason
        self.excerpt = excerpt(value)


class BudgetWord(Enum):
    """The words /budget takes instead of an amount: no limit at all, or back to DEFAULT_BUDGET."""

    UNLIMITED = "unlimited"
    DEFAULT = "default"


_BUDGET_WORDS = {
    "unlimited": BudgetWord.UNLIMITED,
    "无限": BudgetWord.UNLIMITED,
    "不限": BudgetWord.UNLIMITED,
    "default": BudgetWord.DEFAULT,
    "默认": BudgetWord.DEFAULT,
}


def excerpt(value: str, limit: int = EXCERPT_CHARS) -> str:
    """At most `limit` characters of `value` on one line, with "…" when cut: safe to echo back."""
    flat = " ".join(value.split())
    if len(flat) <= limit:
        return flat
    return flat[: limit - 1].rstrip() + "…"


def _normalise(value: str) -> str:
    return value.translate(_ASCII_FORMS).strip()


def parse_points(value: str, *, max_points: int = MAX_POINTS) -> int:
    """An amount of 元点 ("12", "12.5", "0.000001", "12.5元点") as exact micro-元点, 0 … max_points."""
    text = _normalise(value)
    for suffix in _POINTS_SUFFIXES:
        text = text.removesuffix(suffix).rstrip()
    negative = text.startswith("-")
    match = _NUMBER.fullmatch(text[1:] if negative else text)
    if match is None or not (match["whole"] or match["fraction"]):
        raise BadArgument(Reason.NOT_A_NUMBER, value)
    whole = match["whole"].lstrip("0")
    fraction = (match["fraction"] or "").rstrip("0")
    if negative and (whole or fraction):
        raise BadArgument(Reason.NEGATIVE, value)
    # Length first: never build an integer from hundreds of digits just to compare it.
    if len(whole) > len(str(max_points)):
        raise BadArgument(Reason.TOO_LARGE, value)
    if len(fraction) > 6:
        raise BadArgument(Reason.TOO_PRECISE, value)
    micro = int(whole or "0") * MICRO + int(fraction.ljust(6, "0"))
    if micro > max_points * MICRO:
        raise BadArgument(Reason.TOO_LARGE, value)
    return micro


@dataclass(frozen=True)
class BudgetLimit:
    """What `/budget <id> <limit>` asks for: micro-元点, or unlimited, or back to the default."""

    micro: int | None = None
    word: BudgetWord | None = None


def parse_budget_limit(value: str) -> BudgetLimit:
    word = _BUDGET_WORDS.get(_normalise(value).lower())
    if word is not None:
        return BudgetLimit(word=word)
    return BudgetLimit(micro=parse_points(value))


def parse_user_id(value: str) -> int:
    """A Telegram user id: a whole number from 1 to 2^52 - 1."""
    return _parse_id(value, allow_negative=False)


def parse_chat_id(value: str) -> int:
    """A Telegram chat id: users are positive, groups negative (-100… for supergroups), never 0."""
    return _parse_id(value, allow_negative=True)


def _parse_id(value: str, *, allow_negative: bool) -> int:
    text = _normalise(value)
    if _INTEGER.fullmatch(text) is None:
        raise BadArgument(Reason.NOT_AN_ID, value)
    digits = text.lstrip("+-").lstrip("0")
    out_of_range = Reason.CHAT_ID_OUT_OF_RANGE if allow_negative else Reason.ID_OUT_OF_RANGE
    if len(digits) > len(str(MAX_TELEGRAM_ID)):
        raise BadArgument(out_of_range, value)
    number = -int(digits or "0") if text.startswith("-") else int(digits or "0")
    if number == 0 or abs(number) > MAX_TELEGRAM_ID or (number < 0 and not allow_negative):
        raise BadArgument(out_of_range, value)
    return number


def bad_argument_text(lang: str, error: BadArgument) -> str:
    """The short reply for a refused argument, in the user's language, quoting only an excerpt."""
    return text(
        lang,
        f"arg_{error.reason.value}",
        value=error.excerpt,
        max_points=format_points(MAX_POINTS * MICRO, places=0),
        max_id=MAX_TELEGRAM_ID,
    )


__all__ = [
    "EXCERPT_CHARS",
    "MAX_POINTS",
    "MAX_TELEGRAM_ID",
    "BadArgument",
    "BudgetLimit",
    "Reason",
    "BudgetWord",
    "bad_argument_text",
    "excerpt",
    "parse_budget_limit",
    "parse_chat_id",
    "parse_points",
    "parse_user_id",
]
