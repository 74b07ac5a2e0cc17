"""The Telegram application: every handler registered in one place."""

from __future__ import annotations

import logging
from typing import Any

from telegram import BotCommand, BotCommandScopeDefault, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from handlers import access_commands, chat, commands, documents, groups, photos, switches, unsupported, usage
from handlers.access import ACCESS_GROUP, access_handler
from handlers.bot_context import CONTEXT_TYPES, BotContext
from handlers.buttons import (
    ChooseModel,
    ConfirmSummary,
    ContinueAnswer,
    ShowCostChart,
    StopAnswer,
    ToggleSearch,
    pressed,
)
from handlers.call_meter import MeteredRateLimiter
from handlers.progress import TrackingUpdateProcessor
from handlers.services import SERVICES_KEY, BotServices, services
from handlers.shared_flood import SharedFloodLimiter
from handlers.telegram_http import AiohttpRequest
from handlers.texts import text

log = logging.getLogger(__name__)

# Bot API 10.3's stopped_message_generation (the draft's stop control) is unknown to PTB's list.
ALLOWED_UPDATES = [*Update.ALL_TYPES, "stopped_message_generation"]
NEW_MESSAGES = filters.UpdateType.MESSAGE  # edits of old messages are not new questions
# Pictures go to vision models, or have their text read (handlers/photos.py). A GIF comes as an
# animation that also carries a document: it is no file to read.
FILES = (filters.Document.ALL & ~filters.ANIMATION) | filters.PHOTO


class KimiApplication(Application[Any, Any, Any, Any, Any, Any]):
    """PTB's Application without one set that only grows: with no persistence configured it still
    notes the chat and user of every update "to be updated in persistence", and only a persistence
    run empties those sets (PTB 22), so they held every chat and user ever served."""

    __slots__ = ()

    def _mark_for_persistence_update(self, *, update: object | None = None, job: Any = None) -> None:
        if self.persistence is not None:
            super()._mark_for_persistence_update(update=update, job=job)


def build_application(svc: BotServices) -> Application:
    settings = svc.settings
    # getUpdates on aiohttp too, with PTB's default timeouts for it: left to PTB it got an httpx
    # client of its own, which loaded httpcore, anyio and certifi's CA bundle (~3 MB) for one poll.
    polling = AiohttpRequest(pool_size=1, read_timeout=5.0, write_timeout=5.0, pool_timeout=1.0)
    application = (
        ApplicationBuilder()
        .application_class(KimiApplication)
        .context_types(CONTEXT_TYPES)  # context.incoming: who and where, resolved once per update
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_file_url)
        .rate_limiter(MeteredRateLimiter(_flood_limiter(svc), svc.metrics, svc.health))
        # Concurrent: one user's long answer must not hold up anyone else; tracked: see progress.py.
        .concurrent_updates(TrackingUpdateProcessor(svc.handled))
        # aiohttp, not httpx: a third of the CPU under load went to httpx (telegram_http.py).
        .request(AiohttpRequest(pool_size=64, read_timeout=30.0, write_timeout=30.0, pool_timeout=30.0))
        .get_updates_request(polling)
        .build()
    )
    application.bot_data[SERVICES_KEY] = svc
    register_handlers(application)
    return application


def _flood_limiter(svc: BotServices) -> BaseRateLimiter[dict[str, Any]]:
    if svc.replicas:
        return SharedFloodLimiter(svc.guard, svc.coordination)
    return svc.guard


def register_handlers(application: Application) -> None:
    for name, callback in (
        ("start", commands.on_start),
        ("help", commands.on_help),
        ("model", commands.on_model),
        ("balance", commands.on_balance),
        ("cost", commands.on_cost),
        ("reset", commands.on_reset),
        ("stop", commands.on_stop),
        ("budget", commands.on_budget),
        ("export", usage.on_export),
        ("report", usage.on_report),
        ("allow", access_commands.on_allow),
        ("deny", access_commands.on_deny),
        ("users", access_commands.on_users),
        ("summary", documents.on_summary_command),
        ("think", switches.on_think),
        ("search", switches.on_search),
    ):
        application.add_handler(CommandHandler(name, callback, filters=NEW_MESSAGES))
    application.add_handler(CallbackQueryHandler(commands.on_stop_button, pattern=pressed(StopAnswer)))
    application.add_handler(TypeHandler(Update, commands.on_draft_stopped), group=1)
    application.add_handler(CallbackQueryHandler(commands.on_model_button, pattern=pressed(ChooseModel)))
    application.add_handler(
        CallbackQueryHandler(documents.on_confirm_button, pattern=pressed(ConfirmSummary))
    )
    application.add_handler(CallbackQueryHandler(switches.on_search_button, pattern=pressed(ToggleSearch)))
    application.add_handler(CallbackQueryHandler(usage.on_chart_button, pattern=pressed(ShowCostChart)))
    application.add_handler(CallbackQueryHandler(chat.on_continue_button, pattern=pressed(ContinueAnswer)))
    application.add_handler(
        MessageHandler(NEW_MESSAGES & filters.ChatType.PRIVATE & FILES, photos.on_private_file)
    )
    application.add_handler(
        MessageHandler(NEW_MESSAGES & filters.ChatType.GROUPS & FILES, photos.on_group_file)
    )
    application.add_handler(
        MessageHandler(
            NEW_MESSAGES & filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND, chat.on_private_text
        )
    )
    application.add_handler(
        MessageHandler(
            NEW_MESSAGES & filters.ChatType.GROUPS & filters.TEXT & ~filters.COMMAND, groups.on_group_text
        )
    )
    groups.register(application)
    register_fallbacks(application)
    application.add_handler(TypeHandler(Update, _count_update), group=ACCESS_GROUP - 1)  # every update
    application.add_handler(access_handler(), group=ACCESS_GROUP)
    application.add_error_handler(_on_error)


# Everything a handler above did not take: other message kinds (service messages such as a pinned
# message or a member joining are no input), unknown commands and unknown buttons.
OTHER_KINDS = ~filters.TEXT & ~FILES & ~filters.StatusUpdate.ALL


def register_fallbacks(application: Application) -> None:
    """Call after every other handler is added: the first matching handler of a group wins."""
    application.add_handler(
        MessageHandler(
            NEW_MESSAGES & filters.ChatType.PRIVATE & OTHER_KINDS, unsupported.on_unsupported_private
        )
    )
    application.add_handler(
        MessageHandler(NEW_MESSAGES & filters.ChatType.GROUPS & OTHER_KINDS, unsupported.on_unsupported_group)
    )
    application.add_handler(MessageHandler(NEW_MESSAGES & filters.COMMAND, unsupported.on_unknown_command))
    application.add_handler(CallbackQueryHandler(unsupported.on_unknown_button))


async def _count_update(update: Update, context: BotContext) -> None:
    kind = next((key for key in update.to_dict() if key != "update_id"), "unknown")
    services(context).metrics.updates.labels(kind).inc()


async def set_commands(application: Application) -> None:
    """Publish the command list in English and Chinese; a failure is not fatal."""
    english = [BotCommand(name, en) for name, en, _ in commands.COMMANDS]
    chinese = [BotCommand(name, zh) for name, _, zh in commands.COMMANDS]
    try:
        await application.bot.set_my_commands(english, scope=BotCommandScopeDefault())
        await application.bot.set_my_commands(chinese, scope=BotCommandScopeDefault(), language_code="zh")
    except TelegramError as error:
        log.warning("could not register the command list: %s", error)


async def _on_error(update: object, context: BotContext) -> None:
    """The last resort: log the failure (without secrets) and tell the user something short.

    Telegram refusing a call (the user blocked the bot, a network hiccup, a message gone) is part of
    running a bot: one warning line, no traceback. Anything else is our bug: logged with its
    traceback, and the user gets the short generic reply (a pressed button is answered too, so the
    client stops spinning)."""
    error = context.error
    if _expected(error):
        log.warning("Telegram refused a call while handling an update: %s: %s", type(error).__name__, error)
    else:
        log.error("unhandled error while handling an update", exc_info=error)
    if not isinstance(update, Update):
        return
    lang = context.incoming.language
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text(lang, "internal_error"))
        except TelegramError:
            pass  # already answered, or too old to answer
        return
    if isinstance(error, Forbidden) or update.effective_message is None:
        return  # blocked or removed: there is no one to tell
    try:
        await update.effective_message.reply_text(text(lang, "internal_error"))
    except TelegramError:
        pass


# Bad Requests that come from the world changing under the bot, not from a bug of ours.
_EXPECTED_BAD_REQUESTS = (
    "query is too old",
    "query id is invalid",
    "message to edit not found",
    "message to be replied not found",
    "message is not modified",
    "message to delete not found",
    "chat not found",
)


def _expected(error: BaseException | None) -> bool:
    if isinstance(error, BadRequest):
        return any(marker in str(error).lower() for marker in _EXPECTED_BAD_REQUESTS)
    return isinstance(error, TelegramError)  # blocked, kicked, network, flood control, migrated
