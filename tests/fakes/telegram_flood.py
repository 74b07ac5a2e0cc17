"""Flood control of the fake Telegram: HTTP 429 with retry_after, as bots meet it in production.

Telegram publishes its limits only loosely (Bots FAQ): about one message per second in a chat with
short bursts tolerated, at most 20 messages per minute in a group, about 30 messages per second in
total. Edits are not documented but streaming bots hit 429 on them exactly like on sends, so they
count by default. The numbers are parameters (FloodLimits) so a test can tighten or relax them.

Model:

* every chat has a token bucket (``chat_burst`` tokens, refilled at ``chat_rate`` per second);
* a group or supergroup also has a sliding window of ``group_per_minute`` per ``group_window`` s;
* all counted calls share a sliding window of ``global_per_second`` per second;
* after a 429 the chat is in penalty for ``retry_after`` seconds: every further request to it gets
  429 too (Telegram does that), and those do not consume anything.

Time comes from an injectable clock, so tests move time forward instead of sleeping.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

# Calls that send or change a message: the ones Telegram's flood control counts.
SENDING_METHODS = frozenset(
    {
        "sendMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageMedia",
        "editMessageReplyMarkup",
        "sendDocument",
        "sendPhoto",
        "sendAudio",
        "sendVideo",
        "sendVoice",
        "sendAnimation",
        "sendSticker",
        "sendMediaGroup",
        "sendLocation",
        "sendContact",
        "sendPoll",
        "sendDice",
        "copyMessage",
        "forwardMessage",
    }
)
EDIT_METHODS = frozenset(
    {"editMessageText", "editMessageCaption", "editMessageMedia", "editMessageReplyMarkup"}
)
# Calls that are refused while the chat is in penalty, though they are not counted.
PENALISED_METHODS = SENDING_METHODS | {
    "sendMessageDraft",
    "sendChatAction",
    "deleteMessage",
    "setMessageReaction",
}


@dataclass
class FloodLimits:
    """Numbers of the flood model; defaults follow Telegram's published guidance."""

    enabled: bool = True
    chat_burst: float = 3  # messages a chat may receive at once
    chat_rate: float = 1.0  # sustained messages per second per chat
    group_per_minute: int = 20
    group_window: float = 60.0
    global_per_second: int = 30
    count_edits: bool = True
    count_drafts: bool = False  # undocumented; off because drafts are meant to be sent often
    min_retry_after: int = 1
    extra_retry_after: int = 0  # added to every computed retry_after (Telegram often asks for more)


@dataclass(frozen=True)
class FloodError:
    """One 429 the bot received."""

    time: float
    method: str
    chat_id: int | None
    retry_after: int
    reason: str  # "chat", "group", "global", "penalty" or "forced"


@dataclass
class _ChatState:
    tokens: float
    updated: float
    window: deque[float] = field(default_factory=deque)
    penalty_until: float = 0.0


class FloodControl:
    def __init__(self, limits: FloodLimits, clock: Callable[[], float]) -> None:
        self.limits = limits
        self.clock = clock
        self._chats: dict[int, _ChatState] = {}
        self._global: deque[float] = deque()

    def counts(self, method: str) -> bool:
        if method == "sendMessageDraft":
            return self.limits.count_drafts
        if method in EDIT_METHODS:
            return self.limits.count_edits
        return method in SENDING_METHODS

    def check(self, method: str, chat_id: int, is_group: bool) -> tuple[int, str] | None:
        """Account one call; returns (retry_after, reason) if it must be refused with 429."""
        now = self.clock()
        state = self._chat(chat_id, now)
        if method in PENALISED_METHODS or self.counts(method):
            # Also with the limits off: a forced 429 (penalise) holds like a real one.
            if now < state.penalty_until:
                return max(1, math.ceil(state.penalty_until - now)), "penalty"
        if not self.limits.enabled or not self.counts(method):
            return None

        limits = self.limits
        state.tokens = min(limits.chat_burst, state.tokens + (now - state.updated) * limits.chat_rate)
        state.updated = now
        window_start = now - limits.group_window
        while state.window and state.window[0] <= window_start:
            state.window.popleft()
        while self._global and self._global[0] <= now - 1.0:
            self._global.popleft()

        refusal: tuple[float, str] | None = None
        if state.tokens < 1:
            refusal = ((1 - state.tokens) / limits.chat_rate, "chat")
        elif is_group and len(state.window) >= limits.group_per_minute:
            refusal = (state.window[0] + limits.group_window - now, "group")
        elif len(self._global) >= limits.global_per_second:
            refusal = (self._global[0] + 1.0 - now, "global")
        if refusal is not None:
            retry_after = max(limits.min_retry_after, math.ceil(refusal[0])) + limits.extra_retry_after
            state.penalty_until = now + retry_after
            return retry_after, refusal[1]

        state.tokens -= 1
        if is_group:
            state.window.append(now)
        self._global.append(now)
        return None

    def penalise(self, chat_id: int, retry_after: float) -> None:
        """A 429 was given to the chat (e.g. forced by a test): as on Telegram, every further
        request to it is refused until ``retry_after`` has passed, so a bot must really wait."""
        now = self.clock()
        state = self._chat(chat_id, now)
        state.penalty_until = max(state.penalty_until, now + retry_after)

    def in_penalty(self, chat_id: int) -> float:
        """Seconds of penalty left for a chat (0 if none)."""
        state = self._chats.get(chat_id)
        return max(0.0, state.penalty_until - self.clock()) if state else 0.0

    def reset(self) -> None:
        self._chats.clear()
        self._global.clear()

    def _chat(self, chat_id: int, now: float) -> _ChatState:
        if chat_id not in self._chats:
            self._chats[chat_id] = _ChatState(tokens=self.limits.chat_burst, updated=now)
        return self._chats[chat_id]


class FakeClock:
    """A clock for flood tests: time moves only when the test says so."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
