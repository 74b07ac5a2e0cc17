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
    from bot.log_redaction import configure_logging, mask_secrets_in_logs

    secrets = [settings.telegram_bot_token.get_secret_value(), settings.moonshot_api_key.get_secret_value()]
    configure_logging(settings.log_level.value, secrets)
    from bot.runtime import run

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


if __name__ == "__main__":
    sys.exit(main())
