"""The core of the Kimi Telegram bot: settings, the Kimi client, pricing and the turn."""
