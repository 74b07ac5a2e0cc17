"""Errors, retries and client-side limits against the fake Kimi over loopback.

Retry waits go through an injected sleep that records them, so the rules (advised waits,
backoff, the bounded total) are checked exactly without spending the time.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from bot.kimi import (
    ContentDelta,
    KimiAuthError,
    KimiClient,
    KimiConfig,
    KimiConnectionError,
    KimiContentFilter,
    KimiContextOverflow,
    KimiError,
    KimiIncompleteStream,
    KimiInvalidRequest,
    KimiNotFound,
    KimiOverloaded,
    KimiPermissionDenied,
    KimiQuotaExhausted,
    KimiRateLimited,
    KimiServerError,
)
from tests.fakes.kimi import FakeError, FakeKimi, Reply

KEY = "sk-retry-test-key-0123456789"
ASK = [{"role": "user", "content": "hello"}]
MODEL = "kimi-k2-0905-preview"


class RecordedSleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def kimi() -> AsyncIterator[FakeKimi]:
    async with FakeKimi(api_key=KEY) as server:
        yield server


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


def _client(kimi: FakeKimi, sleeps: RecordedSleeps | None = None, **overrides: Any) -> KimiClient:
    settings: dict[str, Any] = {
        "connect_timeout": 2.0,
        "first_byte_timeout": 3.0,
        "idle_timeout": 3.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
    }
    config = KimiConfig(api_key=KEY, base_url=kimi.base_url, **{**settings, **overrides})
    return KimiClient(config, sleep=sleeps) if sleeps else KimiClient(config)


async def _answer(client: KimiClient, model: str = MODEL, **options: Any) -> str:
    options.setdefault("max_tokens", 100)
    parts = [
        event.text
        async for event in client.stream_chat(model, ASK, **options)
        if isinstance(event, ContentDelta)
    ]
    return "".join(parts)


# --- never retried --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (FakeError.quota_exhausted(), KimiQuotaExhausted),
        (FakeError.permission_denied(), KimiPermissionDenied),
        (FakeError.invalid_request("Invalid request: something"), KimiInvalidRequest),
        (FakeError.content_filter(), KimiContentFilter),
        (FakeError.context_overflow(8192), KimiContextOverflow),
        (FakeError.input_too_long(), KimiContextOverflow),
        (FakeError.authentication(), KimiAuthError),
    ],
    ids=lambda value: getattr(value, "type", None) or getattr(value, "__name__", ""),
)
@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "chat"])
async def test_final_errors_are_raised_at_once(
    kimi: FakeKimi,
    sleeps: RecordedSleeps,
    error: FakeError,
    expected: type[KimiError],
    streamed: bool,
):
    kimi.script(Reply(error=error), Reply(content="must not be reached"))
    async with _client(kimi, sleeps) as client:
        with pytest.raises(expected) as caught:
            if streamed:
                await _answer(client)
            else:
                await client.chat(MODEL, ASK, max_tokens=100)
    assert type(caught.value) is expected
    assert not caught.value.retryable
    assert caught.value.message == error.message
    assert len(kimi.chat_requests) == 1
    assert sleeps.waits == []


async def test_the_fakes_own_checks_produce_the_same_types(kimi: FakeKimi, sleeps: RecordedSleeps):
    async with _client(kimi, sleeps) as client:
        with pytest.raises(KimiNotFound, match="Not found the model kimi-k9"):
            await _answer(client, "kimi-k9")
        with pytest.raises(KimiContextOverflow, match="exceeded model token limit : 8192"):
            await _answer(client, "moonshot-v1-8k", max_tokens=8190)
    async with KimiClient(KimiConfig(api_key="sk-wrong-key-000000", base_url=kimi.base_url)) as c:
        with pytest.raises(KimiAuthError):
            await _answer(c)
    kimi.cash_balance = kimi.voucher_balance = Decimal(0)
    async with _client(kimi, sleeps) as client:
        with pytest.raises(KimiQuotaExhausted):
            await _answer(client)
    assert sleeps.waits == []


# --- retried --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        FakeError.rate_limited(after=1),
        FakeError.overloaded(),
        FakeError.server_error(),
        FakeError(502, "bad_gateway", "upstream connect error"),
    ],
    ids=lambda e: f"{e.status}-{e.type}",
)
@pytest.mark.parametrize("streamed", [True, False], ids=["stream", "chat"])
async def test_transient_errors_before_the_first_token_are_retried(
    kimi: FakeKimi, sleeps: RecordedSleeps, error: FakeError, streamed: bool
):
    kimi.script(Reply(error=error), Reply(error=error), Reply(content="at last"))
    async with _client(kimi, sleeps) as client:
        if streamed:
            assert await _answer(client) == "at last"
        else:
            assert (await client.chat(MODEL, ASK, max_tokens=100)).content == "at last"
    assert len(kimi.chat_requests) == 3
    assert len(sleeps.waits) == 2


async def test_the_advised_wait_in_the_message_is_honoured(kimi: FakeKimi, sleeps: RecordedSleeps):
    kimi.script(Reply(error=FakeError.rate_limited(after=7)), Reply(content="ok"))
    async with _client(kimi, sleeps) as client:
        assert await _answer(client) == "ok"
    assert len(sleeps.waits) == 1
    assert 7 <= sleeps.waits[0] <= 7.7  # the advice plus at most 10 % jitter


async def test_a_retry_after_header_is_honoured(kimi: FakeKimi, sleeps: RecordedSleeps):
    kimi.script(Reply(error=FakeError.overloaded(headers={"Retry-After": "4"})), Reply(content="ok"))
    async with _client(kimi, sleeps) as client:
        assert await _answer(client) == "ok"
    assert 4 <= sleeps.waits[0] <= 4.4


async def test_an_advised_wait_beyond_the_time_left_raises_at_once(kimi: FakeKimi, sleeps: RecordedSleeps):
    kimi.script(Reply(error=FakeError.rate_limited(after=30)), Reply(content="too late"))
    async with _client(kimi, sleeps, retry_max_total=10.0) as client:
        with pytest.raises(KimiRateLimited) as caught:
            await _answer(client)
    assert caught.value.retry_after == 30
    assert sleeps.waits == []
    assert len(kimi.chat_requests) == 1


async def test_backoff_grows_and_attempts_are_bounded(kimi: FakeKimi, sleeps: RecordedSleeps):
    kimi.script(*[Reply(error=FakeError.server_error())] * 10)
    async with _client(
        kimi, sleeps, retry_base_delay=1.0, retry_max_delay=100.0, retry_max_attempts=4, retry_max_total=600.0
    ) as client:
        with pytest.raises(KimiServerError):
            await _answer(client)
    assert len(kimi.chat_requests) == 4
    first, second, third = sleeps.waits
    # base * 2^(n-1) plus up to one base of jitter: [1, 2], [2, 3], [4, 5]
    assert 1 <= first <= 2 <= second <= 3 < 4 <= third <= 5


async def test_nothing_is_retried_once_content_has_started(kimi: FakeKimi, sleeps: RecordedSleeps):
    kimi.script(
        Reply(content="partial " * 10, chunk_tokens=2, error_after_chunks=(3, FakeError.overloaded())),
        Reply(content="must not be requested"),
    )
    async with _client(kimi, sleeps) as client:
        with pytest.raises(KimiIncompleteStream) as caught:
            await _answer(client)
    assert isinstance(caught.value.upstream_error, KimiOverloaded)
    assert caught.value.content.startswith("partial")
    assert len(kimi.chat_requests) == 1
    assert sleeps.waits == []


async def test_an_unreachable_server_is_a_connection_error_after_retries(sleeps: RecordedSleeps):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = KimiConfig(
        api_key=KEY, base_url=f"http://127.0.0.1:{port}/v1", retry_max_attempts=3, retry_base_delay=0.01
    )
    async with KimiClient(config, sleep=sleeps) as client:
        with pytest.raises(KimiConnectionError):
            await _answer(client)
        with pytest.raises(KimiConnectionError):
            await client.balance()
    assert len(sleeps.waits) == 4


async def test_a_connect_timeout_is_a_retried_connection_error(sleeps: RecordedSleeps):
    # A listening socket whose accept backlog is full leaves connect() hanging, like a
    # blackholed host, without leaving the machine.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        config = KimiConfig(
            api_key=KEY,
            base_url=f"http://127.0.0.1:{port}/v1",
            connect_timeout=0.2,
            first_byte_timeout=60.0,
            retry_max_attempts=2,
        )
        try:
            async with KimiClient(config, sleep=sleeps) as client:
                with pytest.raises(KimiConnectionError, match="ConnectionTimeoutError"):
                    await client.balance()
        finally:
            for filler in fillers:
                filler.close()
    assert len(sleeps.waits) == 1  # nothing reached the server: safe to retry


async def test_other_endpoints_use_the_same_retries(kimi: FakeKimi, sleeps: RecordedSleeps):
    kimi.script_errors("/models", FakeError.overloaded(), FakeError.server_error())
    kimi.script_errors("/users/me/balance", FakeError.permission_denied())
    async with _client(kimi, sleeps) as client:
        assert len(await client.list_models()) == len(kimi.models)
        with pytest.raises(KimiPermissionDenied):
            await client.balance()
    assert len(sleeps.waits) == 2


async def test_retries_are_logged_as_warnings(
    kimi: FakeKimi, sleeps: RecordedSleeps, caplog: pytest.LogCaptureFixture
):
    kimi.script(Reply(error=FakeError.rate_limited(after=1)), Reply(content="ok"))
    with caplog.at_level(logging.WARNING, logger="bot.kimi"):
        async with _client(kimi, sleeps) as client:
            await _answer(client)
    assert "KimiRateLimited status=429" in caplog.text
    assert "retrying" in caplog.text


# --- client-side limits ---------------------------------------------------------------------


async def test_the_concurrency_cap_makes_turns_wait_instead_of_fail():
    async with FakeKimi(api_key=KEY, max_concurrency=2) as kimi:
        kimi.script(*[Reply(content="slow answer", chunk_tokens=1, delay=0.02)] * 6)
        async with _client(kimi, max_concurrency=2, retry_max_attempts=1) as client:
            answers = await asyncio.gather(*(_answer(client) for _ in range(6)))
    assert answers == ["slow answer"] * 6
    assert kimi.max_in_flight == 2
    assert all(request.status == 200 for request in kimi.chat_requests)


async def test_without_the_cap_the_strict_fake_refuses():
    # The control for the test above: the fake really enforces the account's limit.
    async with FakeKimi(api_key=KEY, max_concurrency=2) as kimi:
        kimi.script(*[Reply(content="slow answer", chunk_tokens=1, delay=0.02)] * 6)
        async with _client(kimi, max_concurrency=50, retry_max_attempts=1) as client:
            results = await asyncio.gather(*(_answer(client) for _ in range(6)), return_exceptions=True)
    assert any(isinstance(result, KimiRateLimited) for result in results)


async def test_the_rpm_cap_spreads_requests_over_the_window():
    # The fake counts in a 0.4 s window, the client in 0.6 s: the slack absorbs the scheduling
    # jitter of a loaded machine; a leaky bucket (aiolimiter) would still burst past it.
    async with FakeKimi(api_key=KEY, max_rpm=3, rpm_window=0.4) as kimi:
        async with _client(kimi, max_rpm=3, rpm_window=0.6, retry_max_attempts=1) as client:
            started = time.monotonic()
            answers = await asyncio.gather(*(_answer(client) for _ in range(9)))
            elapsed = time.monotonic() - started
    assert len(answers) == 9
    assert all(request.status == 200 for request in kimi.chat_requests)
    assert elapsed >= 1.2  # 9 requests at 3 per 0.6 s need at least two full windows


async def test_without_the_rpm_cap_the_strict_fake_refuses():
    async with FakeKimi(api_key=KEY, max_rpm=3, rpm_window=5.0) as kimi:
        async with _client(kimi, max_rpm=100, retry_max_attempts=1) as client:
            results = await asyncio.gather(*(_answer(client) for _ in range(5)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, KimiRateLimited)]
    assert len(refused) == 2
    assert "max RPM: 3" in refused[0].message


async def test_an_error_in_a_200_body_is_typed_and_retried_when_transient(
    kimi: FakeKimi, sleeps: RecordedSleeps
):
    # Seen from gateways: HTTP 200 with Moonshot's error object as the body.
    overloaded, quota = FakeError.overloaded(), FakeError.quota_exhausted()
    kimi.script_errors(
        "/tokenizers/estimate-token-count",
        FakeError(200, overloaded.type, overloaded.message),
    )
    async with _client(kimi, sleeps) as client:
        assert await client.estimate_tokens(MODEL, ASK) > 0
        kimi.script_errors("/tokenizers/estimate-token-count", FakeError(200, quota.type, quota.message))
        with pytest.raises(KimiQuotaExhausted):
            await client.estimate_tokens(MODEL, ASK)
    assert len(sleeps.waits) == 1
