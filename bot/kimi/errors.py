"""Moonshot's errors as typed exceptions.

Every error names its user text in the catalog (`text_key()`, handlers/texts.py: Chinese and
English, no internals) and carries a log text (type, HTTP status, upstream message) from which any
API key has been removed, so handlers can show the first and log the second without thinking
about secrets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from bot.kimi.redaction import redact

if TYPE_CHECKING:
    from bot.kimi.events import ToolCall, Usage


class KimiError(Exception):
    """Base of every error the Kimi client raises."""

    retryable: ClassVar[bool] = False
    # What the user is told: this entry of the text catalog (handlers/texts.py), no internals.
    text_key_name: ClassVar[str] = "kimi_error"

    def __init__(
        self,
        message: str = "",
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        # Upstream messages can quote the account's key ("Your account org<ak> ..."), so the
        # message is redacted once here and every later str()/log of the error is safe.
        self.message = redact(message)
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        super().__init__(self.log_text())

    def text_key(self) -> str:
        return self.text_key_name

    def log_text(self) -> str:
        parts = [type(self).__name__]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.error_type:
            parts.append(f"type={self.error_type}")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        if self.message:
            parts.append(f"message={self.message!r}")
        return " ".join(parts)


class KimiAuthError(KimiError):
    text_key_name = "kimi_auth"


class KimiPermissionDenied(KimiError):
    text_key_name = "kimi_permission"


class KimiNotFound(KimiError):
    text_key_name = "kimi_not_found"


class KimiInvalidRequest(KimiError):
    text_key_name = "kimi_invalid_request"


class KimiContextOverflow(KimiInvalidRequest):
    """Input (plus max_tokens) does not fit the model's context window: shrink, don't retry."""

    text_key_name = "kimi_context_overflow"


class KimiFileLimit(KimiInvalidRequest):
    """A file the platform refuses to store: too large, empty, or the account's file limits."""

    TOO_LARGE: ClassVar[str] = "too_large"
    EMPTY: ClassVar[str] = "empty"
    TOO_MANY: ClassVar[str] = "too_many"
    TOTAL_SIZE: ClassVar[str] = "total_size"

    def __init__(
        self,
        message: str = "",
        *,
        kind: str,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.kind = kind
        super().__init__(message, status=status, error_type=error_type, request_id=request_id)

    def text_key(self) -> str:
        return f"kimi_file_{self.kind}"


class KimiFileExtractionFailed(KimiError):
    """The platform could not extract text from a file (unsupported format, image without text).

    Moonshot reports it as a 500, but sending the same file again fails the same way: not retried.
    """

    text_key_name = "kimi_extraction_failed"


class KimiContentFilter(KimiError):
    text_key_name = "kimi_content_filter"


class KimiQuotaExhausted(KimiError):
    """429 exceeded_current_quota_error: the account needs topping up; retrying cannot help."""

    text_key_name = "kimi_quota"


class _AdvisedWait(KimiError):
    """An error after which the server may say how long to wait."""

    retryable = True

    def __init__(
        self,
        message: str = "",
        *,
        retry_after: float | None = None,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, error_type=error_type, request_id=request_id)

    def log_text(self) -> str:
        text = super().log_text()
        return text if self.retry_after is None else f"{text} retry_after={self.retry_after:g}s"


class KimiRateLimited(_AdvisedWait):
    text_key_name = "kimi_rate_limited"


class KimiOverloaded(_AdvisedWait):
    text_key_name = "kimi_overloaded"


class KimiServerError(_AdvisedWait):
    text_key_name = "kimi_server_error"


class KimiConnectionError(KimiError):
    """The request did not get through, or the reply broke off before anything was received."""

    retryable = True
    text_key_name = "kimi_connection"


class KimiTimeout(KimiError):
    """No answer within the first-byte timeout.

    Not retried: the server may be generating (and billing) the first answer already.
    """

    text_key_name = "kimi_timeout"


class KimiIncompleteStream(KimiError):
    """A stream that ended without data: [DONE] (dropped, stalled, or broken by an error).

    It carries what was received so the caller can keep and show the partial answer.
    """

    text_key_name = "kimi_incomplete_stream"

    def __init__(
        self,
        message: str = "",
        *,
        content: str = "",
        reasoning: str = "",
        tool_calls: tuple[ToolCall, ...] = (),
        usage: Usage | None = None,
        finish_reason: str | None = None,
        stalled: bool = False,
        upstream_error: KimiError | None = None,
        status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        self.content = content
        self.reasoning = reasoning
        self.tool_calls = tool_calls
        self.usage = usage
        self.finish_reason = finish_reason
        self.stalled = stalled
        self.upstream_error = upstream_error
        super().__init__(message, status=status, request_id=request_id)

    def after(self, content: str, reasoning: str) -> KimiIncompleteStream:
        """The same cut, seen as the end of a turn whose earlier upstream calls (a web search
        round trip) had already produced content and reasoning."""
        if not content and not reasoning:
            return self
        return KimiIncompleteStream(
            self.message,
            content=content + self.content,
            reasoning=reasoning + self.reasoning,
            tool_calls=self.tool_calls,
            usage=self.usage,
            finish_reason=self.finish_reason,
            stalled=self.stalled,
            upstream_error=self.upstream_error,
            status=self.status,
            request_id=self.request_id,
        )

    def log_text(self) -> str:
        text = (
            f"{super().log_text()} stalled={self.stalled} received_chars={len(self.content)}"
            f" reasoning_chars={len(self.reasoning)} finish_reason={self.finish_reason}"
            f" usage={'yes' if self.usage else 'no'}"
        )
        if self.upstream_error is not None:
            text += f" upstream=({self.upstream_error.log_text()})"
        return text
