"""The type of `context` in every handler: PTB's callback context with our bot's rate-limit args.

The application is built with the flood guard as its rate limiter, whose per-call arguments are a
dict (`{"retry": False}` for optional calls); `ContextTypes.DEFAULT_TYPE` would type them as None.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import CallbackContext, ExtBot

RateLimitArgs = dict[str, Any]
TelegramBot = ExtBot[RateLimitArgs]
BotContext = CallbackContext[TelegramBot, dict[Any, Any], dict[Any, Any], dict[Any, Any]]
