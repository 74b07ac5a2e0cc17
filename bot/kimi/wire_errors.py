"""Moonshot's error responses read into the typed errors (bot/kimi/errors.py).

The mapping is data: the tables below say which error type, HTTP status or message marker means
which error, checked in the order `error_from_payload` gives.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime

from bot.kimi.errors import (
    KimiAuthError,
    KimiContentFilter,
    KimiContextOverflow,
    KimiError,
    KimiFileExtractionFailed,
    KimiFileLimit,
    KimiInvalidRequest,
    KimiNotFound,
    KimiOverloaded,
    KimiPermissionDenied,
    KimiQuotaExhausted,
    KimiRateLimited,
    KimiServerError,
    _AdvisedWait,
)
from bot.kimi.redaction import redact

_RETRY_AFTER_IN_MESSAGE = re.compile(r"try again after\s+(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)


def retry_after_from(message: str, header: str | None) -> float | None:
    """The wait the server advises: Retry-After header (seconds or HTTP date) or the message's
    "please try again after N seconds"; the longer one when both are present."""
    advised: list[float] = []
    match = _RETRY_AFTER_IN_MESSAGE.search(message)
    if match:
        advised.append(float(match.group(1)))
    if header:
        header = header.strip()
        try:
            advised.append(max(float(header), 0.0))
        except ValueError:
            try:
                advised.append(max(parsedate_to_datetime(header).timestamp() - time.time(), 0.0))
            except (TypeError, ValueError):
                pass
    return max(advised) if advised else None


def error_from_response(
    status: int,
    body: str,
    headers: Mapping[str, str],
    *,
    secrets: Iterable[str] = (),
) -> KimiError:
    """Map an HTTP error response (Moonshot's {"error": {"type", "message"}} body or anything a
    proxy put in its place) to a typed error."""
    error_type: str | None = None
    message = ""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        error_type = payload["error"].get("type") or payload["error"].get("code")
        message = str(payload["error"].get("message") or "")
    else:
        # A proxy's HTML page or plain text: keep a short, single-line excerpt for the log.
        message = " ".join(body.split())[:200]
    return error_from_payload(
        status,
        str(error_type) if error_type is not None else None,
        redact(message, secrets),
        retry_after_header=headers.get("Retry-After"),
        request_id=headers.get("Msh-Request-Id") or headers.get("X-Msh-Trace-Id"),
    )


# 1. Error types that say it all, whatever the status.
_BY_TYPE: Mapping[str, type[KimiError]] = {
    "content_filter": KimiContentFilter,
    "exceeded_current_quota_error": KimiQuotaExhausted,
    "engine_overloaded_error": KimiOverloaded,
    "rate_limit_reached_error": KimiRateLimited,
}
# 2. Then a file the platform could not read (reported as a 500, but retrying cannot help).
_EXTRACTION_FAILED_MARKER = "failed to extract file"
# 3. Then an error type or an HTTP status, in this order.
_BY_TYPE_OR_STATUS: tuple[tuple[frozenset[str], int, type[KimiError]], ...] = (
    (frozenset({"invalid_authentication_error", "incorrect_api_key_error"}), 401, KimiAuthError),
    (frozenset({"permission_denied_error"}), 403, KimiPermissionDenied),
    (frozenset({"resource_not_found_error"}), 404, KimiNotFound),
    (frozenset(), 429, KimiRateLimited),
)
# 4. Then any other invalid request (the type, or a 4xx), told apart by its message.
_INVALID_REQUEST_TYPE = "invalid_request_error"
_CONTEXT_OVERFLOW_MARKERS = ("input token length too long", "exceeded model token limit")
_FILE_LIMIT_MARKERS = (
    ("file size is too large", KimiFileLimit.TOO_LARGE),
    ("file size is zero", KimiFileLimit.EMPTY),
    ("max file count", KimiFileLimit.TOO_MANY),
    ("total size", KimiFileLimit.TOTAL_SIZE),
)
# 5. Anything else is the server's fault: KimiServerError, retried.


def error_from_payload(
    status: int | None,
    error_type: str | None,
    message: str,
    *,
    retry_after_header: str | None = None,
    request_id: str | None = None,
) -> KimiError:
    lowered = message.lower()

    def make(cls: type[KimiError]) -> KimiError:
        if issubclass(cls, _AdvisedWait):
            retry_after = retry_after_from(message, retry_after_header)
            return cls(
                message, retry_after=retry_after, status=status, error_type=error_type, request_id=request_id
            )
        return cls(message, status=status, error_type=error_type, request_id=request_id)

    if error_type is not None and error_type in _BY_TYPE:
        return make(_BY_TYPE[error_type])
    if _EXTRACTION_FAILED_MARKER in lowered:
        return make(KimiFileExtractionFailed)
    for types, code, cls in _BY_TYPE_OR_STATUS:
        if error_type in types or status == code:
            return make(cls)
    if error_type == _INVALID_REQUEST_TYPE or (status is not None and 400 <= status < 500):
        if any(marker in lowered for marker in _CONTEXT_OVERFLOW_MARKERS):
            return make(KimiContextOverflow)
        for marker, kind in _FILE_LIMIT_MARKERS:
            if marker in lowered:
                return KimiFileLimit(
                    message, kind=kind, status=status, error_type=error_type, request_id=request_id
                )
        return make(KimiInvalidRequest)
    return make(KimiServerError)
