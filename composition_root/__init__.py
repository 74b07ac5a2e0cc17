"""The composition root: settings -> services -> the Telegram application, run until stopped.

The one module that imports all three packages (import-linter holds the rest to the layers
handlers -> bot -> storage): it builds the core's services (`bot/`) on the store (`storage/`),
hands them to the Telegram side (`handlers/`), and owns start-up and shutdown. `python -m bot`
(bot/__main__.py) only calls `main()` here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from telegram.ext import Application

from bot.access import AccessPolicy
from bot.admin import Admin
from bot.budget import BudgetKeeper
from bot.budget_notices import BudgetNotices
from bot.catalog import ModelCatalog
from bot.charts import ChartRenderer
from bot.documents import DocumentReader, DocumentSummaries
from bot.health import Health
from bot.history import History
from bot.kimi import KimiClient, KimiConfig
from bot.log_redaction import configure_logging, mask_secrets_in_logs
from bot.metrics import Metrics
from bot.pending_deliveries import PendingDeliveries
from bot.pricing import PricingError, load_price_table
from bot.recovery import CrashRecovery, InterruptedAnswer
from bot.reports import Reports
from bot.settings import Settings, SettingsError, load_settings
from bot.turn import Conversations
from bot.users import Users
from handlers.app import ALLOWED_UPDATES, build_application, set_commands
from handlers.delivery import Deliveries
from handlers.flood import FloodGuard
from handlers.http_server import HttpServer, health_app
from handlers.progress_pace import ProgressPace
from handlers.recovery import report_interrupted
from handlers.services import BotServices
from handlers.shutdown import end_running_answers
from handlers.webhook import MAX_CONNECTIONS, WebhookReceiver, webhook_path
from storage import Coordination, Store
from storage.single_process import SingleProcessLock

log = logging.getLogger(__name__)


def kimi_config(settings: Settings) -> KimiConfig:
    return KimiConfig(
        api_key=settings.moonshot_api_key.get_secret_value(),
        base_url=settings.moonshot_base_url,
        connect_timeout=settings.kimi_connect_timeout,
        first_byte_timeout=settings.kimi_first_byte_timeout,
        idle_timeout=settings.kimi_idle_timeout,
        max_concurrency=settings.kimi_max_concurrency,
        max_rpm=settings.kimi_max_rpm,
    )


async def build_services(settings: Settings, guard: FloodGuard | None = None) -> BotServices:
    prices = load_price_table(settings.pricing_file)
    if settings.default_model not in prices:
        # Without a price no budget can be enforced, so the bot would have nothing to offer.
        raise PricingError(
            f"DEFAULT_MODEL {settings.default_model!r} has no price; choose one of "
            f"{', '.join(sorted(prices.models))} or add it in PRICING_FILE"
        )
    store = Store(settings.database_url)
    await store.start(migrate_apart=True)  # Alembic stays out of the long-running process
    coordination = Coordination(store)
    try:
        await coordination.start()
    except BaseException:
        await store.close()
        raise
    metrics = Metrics()
    store.on_charge(metrics.charge)
    kimi = KimiClient(kimi_config(settings))
    budgets = BudgetKeeper(store, settings)
    access = AccessPolicy(store, settings)
    await access.load()
    coordination.on_access_change(access.changed_elsewhere)  # /allow and /deny on other replicas
    services = BotServices(
        settings=settings,
        store=store,
        kimi=kimi,
        users=Users(store),
        history=History(store),
        admin=Admin(store, kimi),
        reports=Reports(store, budgets),
        prices=prices,
        budgets=budgets,
        conversations=Conversations(store, kimi, prices, settings, budgets, may_ask=access.allows),
        catalog=ModelCatalog(kimi, prices, settings.default_model),
        guard=guard or FloodGuard(),
        document_reader=DocumentReader(store, kimi),
        summaries=DocumentSummaries(store, kimi, prices, settings, budgets),
        metrics=metrics,
        health=Health(store, lambda: coordination.listening),
        recovery=CrashRecovery(store, prices),
        deliveries=Deliveries(PendingDeliveries(store)),
        access=access,
        charts=ChartRenderer(),
        notices=BudgetNotices(store, budgets),
        coordination=coordination,
        pace=ProgressPace(settings.progress_updates_per_second),
    )
    if settings.webhook_mode and coordination.shared:
        # Several replicas may serve this URL: what one process kept in memory goes through
        # PostgreSQL (turn order, stop signals, flood slots).
        services.conversations.share_turn_order(coordination)
        services.active.share(coordination)
        services.replicas = True
    return services


async def serve(
    settings: Settings,
    stop: asyncio.Event,
    guard: FloodGuard | None = None,
    ready: asyncio.Future[BotServices] | None = None,
) -> None:
    """Poll Telegram and answer until `stop` is set; everything is closed on the way out.

    `ready` receives the services once the bot polls (tests inspect the store through it).
    """
    mask_secrets_in_logs(
        [settings.telegram_bot_token.get_secret_value(), settings.moonshot_api_key.get_secret_value()]
    )
    exclusive = SingleProcessLock(settings.database_url)
    exclusive.acquire()  # SQLite: refuse to be the second process on the file
    try:
        services = await build_services(settings, guard)
    except BaseException:
        exclusive.release()
        raise
    application = build_application(services)
    # Other processes sharing the database may change the allow-list: re-read it now and then.
    access_refresh = asyncio.create_task(services.access.keep_fresh())
    try:
        # Before any new message: a cut answer takes its place in its conversation first.
        interrupted = await services.recovery.settle_interrupted()
        async with application:
            await set_commands(application)
            if settings.webhook_mode:
                await _serve_webhook(settings, services, application, stop, ready, interrupted)
            else:
                await _serve_polling(settings, services, application, stop, ready, interrupted)
    finally:
        await services.deliveries.close()  # what is still pending stays for the next start
        access_refresh.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await access_refresh
        await services.coordination.close()
        await services.kimi.close()
        await services.store.close()
        exclusive.release()


async def _serve_polling(
    settings: Settings,
    services: BotServices,
    application: Application,
    stop: asyncio.Event,
    ready: asyncio.Future[BotServices] | None,
    interrupted: list[InterruptedAnswer],
) -> None:
    updater = application.updater
    if updater is None:  # PTB makes one whenever the application is built with a token
        raise RuntimeError("the Telegram application has no updater")
    # start_polling deletes the webhook first (PTB does that): switching back from webhook mode.
    await updater.start_polling(allowed_updates=ALLOWED_UPDATES)
    await application.start()
    await services.deliveries.start(application.bot)
    application.create_task(report_interrupted(application.bot, services, interrupted))
    server: HttpServer | None = None
    if settings.metrics_listen is not None:
        server = HttpServer(health_app(services), settings.metrics_listen, application, services.health)
        await server.start()
        services.http_port = server.port
    log.info("bot @%s is polling (model %s)", application.bot.username, settings.default_model)
    if ready is not None and not ready.done():
        ready.set_result(services)
    await stop.wait()
    if server is not None:
        await server.stop()
    await shut_down(application, services)


async def _serve_webhook(
    settings: Settings,
    services: BotServices,
    application: Application,
    stop: asyncio.Event,
    ready: asyncio.Future[BotServices] | None,
    interrupted: list[InterruptedAnswer],
) -> None:
    assert settings.telegram_webhook_url is not None and settings.telegram_webhook_secret is not None
    secret = settings.telegram_webhook_secret.get_secret_value()
    receiver = WebhookReceiver(application, services, services.coordination, secret)
    app = health_app(services)
    receiver.add_route(app, webhook_path(settings.telegram_webhook_url))
    server = HttpServer(app, settings.webhook_listen, application, services.health)
    await application.start()
    await services.deliveries.start(application.bot)
    application.create_task(report_interrupted(application.bot, services, interrupted))
    await server.start()  # listening before Telegram is told where to deliver
    services.http_port = server.port
    # Every replica calls it at start-up: same URL, same secret, so it is idempotent.
    await application.bot.set_webhook(
        settings.telegram_webhook_url,
        secret_token=secret,
        allowed_updates=ALLOWED_UPDATES,
        max_connections=MAX_CONNECTIONS,
    )
    log.info(
        "bot @%s takes webhook updates on %s (model %s)",
        application.bot.username,
        settings.webhook_listen,
        settings.default_model,
    )
    if ready is not None and not ready.done():
        ready.set_result(services)
    await stop.wait()
    # Never deleteWebhook here: the other replicas are still serving the URL. Updates that come
    # meanwhile get a 503, which Telegram retries (through the load balancer, on another replica).
    await shut_down(application, services, receiver)
    await server.stop()


# After the grace, interrupted answers need a moment to send their last text and settle; past
# this the process exits anyway (an answer cut there is reported at the next start-up).
INTERRUPT_TIMEOUT = 3.0


async def shut_down(
    application: Application, services: BotServices, receiver: WebhookReceiver | None = None
) -> None:
    """Take no new updates, let running answers end (see handlers.shutdown), stop the app."""
    log.info("stopping: no new updates; running answers get %.0f s", services.settings.shutdown_grace_seconds)
    if receiver is not None:
        receiver.accepting = False
    elif application.updater is not None:
        await application.updater.stop()
    await end_running_answers(services, services.settings.shutdown_grace_seconds)
    if receiver is not None:
        await receiver.drain(grace=INTERRUPT_TIMEOUT)
    try:
        await asyncio.wait_for(application.stop(), INTERRUPT_TIMEOUT)
    except TimeoutError:
        log.warning("stopping: answers still running after the grace were abandoned")


def run(settings: Settings) -> int:
    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
    return 0


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"kimi-telegram-bot: {error}", file=sys.stderr)
        return 2
    secrets = [settings.telegram_bot_token.get_secret_value(), settings.moonshot_api_key.get_secret_value()]
    configure_logging(settings.log_level.value, secrets)
    try:
        return run(settings)
    except PricingError as error:
        print(f"kimi-telegram-bot: pricing: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except Exception as error:  # start-up failed (database, network): one line, no traceback
        message = f"{type(error).__name__}: {error}".splitlines()[0]
        for secret in secrets:
            message = message.replace(secret, "***")
        print(f"kimi-telegram-bot: cannot run: {message}", file=sys.stderr)
        mask_secrets_in_logs(secrets)
        return 1
