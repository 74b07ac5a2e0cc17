"""The API key never appears in logged output or in exception text, including on errors."""

from __future__ import annotations

import logging
import socket
import traceback
from typing import Any

import pytest

from bot.kimi import (
    ContentDelta,
    KimiClient,
    KimiConfig,
    KimiError,
    KimiIncompleteStream,
    KimiQuotaExhausted,
)
from handlers.texts import error_text, language_of
from tests.fakes.kimi import FakeError, FakeKimi, Reply

MOONSHOT_KEY = "sk-Zq81mNc0LkPf3Rt6Yw2Vb9Xs4Hd7Ja5Ue1Gi0Ko8Mn6Bv3Cx"
GATEWAY_KEY = "mc_live_7f3a9e21c4b8d6f05e2a1b9c"  # not Moonshot-shaped: redacted by value


def _assert_clean(text: str, key: str) -> None:
    assert key not in text
    assert key[6:30] not in text  # not even a recognisable part of it


async def _exercise_everything(kimi: FakeKimi, key: str) -> list[KimiError]:
    """Drive successes, retries and every kind of failure, logging each error the way a
    handler would (with its traceback)."""
    log = logging.getLogger("bot.handlers.test")
    errors: list[KimiError] = []
    kimi.script(
        Reply(content="fine", reasoning=""),
        Reply(error=FakeError.rate_limited(after=0.01)),
        Reply(content="after a retry"),
        Reply(
            error=FakeError(
                429,
                "exceeded_current_quota_error",
                f"Your account org-1<{key}> is suspended, please check billing",
            )
        ),
        Reply(content="cut off", drop_before_done=True),
        Reply(content="x", error_after_chunks=(2, FakeError(400, "invalid_request_error", f"bad key {key}"))),
    )
    config = KimiConfig(api_key=key, base_url=kimi.base_url, retry_base_delay=0.01)
    async with KimiClient(config) as client:
        for _ in range(5):
            try:
                async for event in client.stream_chat(
                    "kimi-k2-0905-preview", [{"role": "user", "content": "hi"}], max_tokens=50
                ):
                    assert not isinstance(event, ContentDelta) or key not in event.text
            except KimiError as error:
                errors.append(error)
                log.exception("turn failed: %s", error.log_text())
        await client.list_models()
        await client.balance()
        stored = await client.upload(b"text", "a.txt")
        await client.file_content(stored.id)
        await client.delete_file(stored.id)
    async with KimiClient(KimiConfig(api_key=key + "-wrong", base_url=kimi.base_url)) as client:
        try:
            await client.balance()
        except KimiError as error:
            errors.append(error)
            log.exception("balance failed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = KimiConfig(api_key=key, base_url=f"http://127.0.0.1:{port}/v1", retry_max_attempts=1)
    async with KimiClient(unreachable) as client:
        try:
            await client.estimate_tokens("kimi-k2.6", [{"role": "user", "content": "x"}])
        except KimiError as error:
            errors.append(error)
            log.exception("estimate failed")
    return errors


@pytest.mark.parametrize("key", [MOONSHOT_KEY, GATEWAY_KEY], ids=["moonshot", "gateway"])
async def test_the_key_never_reaches_logs_or_exceptions(key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakeKimi(api_key=key) as kimi:
        errors = await _exercise_everything(kimi, key)

    kinds = {type(error).__name__ for error in errors}
    assert {"KimiQuotaExhausted", "KimiIncompleteStream", "KimiAuthError", "KimiConnectionError"} <= kinds
    quota = next(e for e in errors if isinstance(e, KimiQuotaExhausted))
    assert "suspended" in quota.message  # the message survives, only the key is cut out
    cuts = [e for e in errors if isinstance(e, KimiIncompleteStream)]
    assert len(cuts) == 2 and cuts[1].upstream_error is not None  # dropped; broken by an error

    assert "retrying" in caplog.text and "DEBUG" in {r.levelname for r in caplog.records}
    _assert_clean(caplog.text, key)
    for error in errors:
        for text in (
            str(error),
            repr(error),
            error.log_text(),
            error_text(language_of("zh"), error),
            error_text(language_of("en"), error),
            "".join(traceback.format_exception(error)),
        ):
            _assert_clean(text, key)


def test_the_config_does_not_show_its_key() -> None:
    config: Any = KimiConfig(api_key=MOONSHOT_KEY)
    _assert_clean(repr(config), MOONSHOT_KEY)
    _assert_clean(str(config), MOONSHOT_KEY)
