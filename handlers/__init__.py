"""Everything that knows Telegram: commands, messages, documents, groups and the reply streamer."""
