"""Logging that can never print the bot token or the API key.

Libraries log URLs (PTB logs https://api.telegram.org/bot<token>/… at DEBUG, httpx at INFO), so
the secrets are masked when each record is created, before any handler (ours, a test's, a
deployment's) sees it, rather than trusted to every call site.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"
_masked: set[str] = set()
_installed = False


def _mask(text: str) -> str:
    for secret in sorted(_masked, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _masking_factory(make_record: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if not _masked:
            return record
        message = record.getMessage()
        masked = _mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # A traceback can quote a URL with the token: format it now, masked.
            record.exc_text = _mask(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return record

    return factory


def mask_secrets_in_logs(secrets: Iterable[str]) -> None:
    """From now on, no log record anywhere in the process contains these strings."""
    global _installed
    _masked.update(secret for secret in secrets if secret and len(secret) >= 6)
    # The token's secret half alone is a secret too (it appears URL-encoded or split off).
    _masked.update(s.split(":", 1)[1] for s in list(_masked) if ":" in s and len(s.split(":", 1)[1]) >= 6)
    if not _installed:
        logging.setLogRecordFactory(_masking_factory(logging.getLogRecordFactory()))
        _installed = True


def configure_logging(level: str, secrets: Iterable[str]) -> None:
    mask_secrets_in_logs(secrets)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request URL at INFO and Alembic every plugin it loads; noise unless debugging.
    if logging.getLogger().level > logging.DEBUG:
        for chatty in ("httpx", "alembic"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
