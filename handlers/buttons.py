"""What an inline button carries back when pressed: typed, and built and read only here.

Telegram returns a button's `callback_data` (at most 64 bytes) with the press. Each kind of
button is a value class below; `encode` writes it as "<kind>:<value>" and `decode` reads it back,
so the format is written in one place and a handler matches on a type, never on a string prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# Telegram's limit on callback_data, in bytes.
MAX_CALLBACK_BYTES = 64


@dataclass(frozen=True)
class StopAnswer:
    """The stop button under a streaming answer."""

    token: str


@dataclass(frozen=True)
class ChooseModel:
    """A model in /model's list."""

    model: str


@dataclass(frozen=True)
class ConfirmSummary:
    """The yes/no buttons under a costly document summary's confirmation."""

    token: str
    go: bool


@dataclass(frozen=True)
class ToggleSearch:
    """Web search on/off, under /model's list."""


@dataclass(frozen=True)
class ShowCostChart:
    """The 📈 button under /cost: the presser's own chart."""


@dataclass(frozen=True)
class ContinueAnswer:
    """Under an answer a restart or a crash cut: have Kimi write on from where it stopped."""

    message_id: int  # the stored answer


ButtonData = StopAnswer | ChooseModel | ConfirmSummary | ToggleSearch | ShowCostChart | ContinueAnswer


def encode(data: ButtonData) -> str:
    match data:
        case StopAnswer(token):
            return f"stop:{token}"
        case ChooseModel(model):
            return f"model:{model}"
        case ConfirmSummary(token, go):
            return f"doc:{'yes' if go else 'no'}:{token}"
        case ToggleSearch():
            return "search:toggle"
        case ShowCostChart():
            return "cost:chart"
        case ContinueAnswer(message_id):
            return f"cont:{message_id}"


def fits(data: ButtonData) -> bool:
    """Whether Telegram accepts it (a very long model name would not)."""
    return len(encode(data).encode()) <= MAX_CALLBACK_BYTES


def decode(raw: object) -> ButtonData | None:
    """The button a press came from, or None for data this bot never wrote."""
    if not isinstance(raw, str):
        return None
    kind, separator, value = raw.partition(":")
    if not separator:
        return None
    if kind == "stop":
        return StopAnswer(value)
    if kind == "model":
        return ChooseModel(value)
    if kind == "search":
        return ToggleSearch()
    if kind == "doc":
        choice, _, token = value.partition(":")
        return ConfirmSummary(token, choice == "yes")
    if kind == "cost" and value == "chart":
        return ShowCostChart()
    if kind == "cont" and value.isdigit():
        return ContinueAnswer(int(value))
    return None


def pressed(
    kind: type[StopAnswer]
    | type[ChooseModel]
    | type[ConfirmSummary]
    | type[ToggleSearch]
    | type[ShowCostChart]
    | type[ContinueAnswer],
) -> Callable[[object], bool]:
    """A `CallbackQueryHandler` pattern: true for presses of this kind of button."""
    return lambda raw: isinstance(decode(raw), kind)
