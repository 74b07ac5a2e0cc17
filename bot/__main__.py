"""`python -m bot`: read the settings, wire the core to Telegram, and poll until stopped."""

from __future__ import annotations

import sys


def main() -> int:
    from bot.pricing import PricingError
    from bot.settings import SettingsError, load_settings

    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"kimi-telegram-bot: {error}", file=sys.stderr)
        return 2
    from bot.log_redaction import configure_logging

    configure_logging(
        settings.log_level.value,
        [settings.telegram_bot_token.get_secret_value(), settings.moonshot_api_key.get_secret_value()],
    )
    from bot.runtime import run

    try:
        return run(settings)
    except PricingError as error:
        print(f"kimi-telegram-bot: pricing: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
