"""Logging that can never print the bot token or the API key.

Libraries log URLs (PTB's httpx logs https://api.telegram.org/bot<token>/…), so the secrets are
masked in every record's final text rather than trusted to each call site.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "***"


class SecretsFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self._mask(message)
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, masked, so the handler prints this text instead.
            record.exc_text = self._mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        return True

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretsFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL at INFO, token included; keep it to warnings.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, root.level))
