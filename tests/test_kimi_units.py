"""The Kimi client's pure parts: SSE decoding, chunk assembly, request shaping, error mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from bot.kimi import (
    ContentDelta,
    KimiAuthError,
    KimiConnectionError,
    KimiContentFilter,
    KimiContextOverflow,
    KimiError,
    KimiFileExtractionFailed,
    KimiFileLimit,
    KimiIncompleteStream,
    KimiInvalidRequest,
    KimiNotFound,
    KimiOverloaded,
    KimiPermissionDenied,
    KimiQuotaExhausted,
    KimiRateLimited,
    KimiServerError,
    KimiTimeout,
    ReasoningDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
    WebSearchCall,
)
from bot.kimi.assembly import StreamAssembler, result_from_completion
from bot.kimi.redaction import redact
from bot.kimi.resources import currency_for
from bot.kimi.shaping import ChatOptions, clamp_max_tokens, has_fixed_sampling, shape_chat_request
from bot.kimi.sse import SSEDecoder
from bot.kimi.wire_errors import error_from_response, retry_after_from
from handlers.texts import error_text, language_of

# --- SSE ------------------------------------------------------------------------------------

STREAM = (
    'data: {"a": "第一"}\r\n\r\n'
    ": keep-alive comment\n\n"
    'data: {"b": "line\u2028separator inside JSON"}\n\n'
    "event: ignored\ndata: first\ndata: second\n\n"
    "data: [DONE]\n\n"
).encode()
PAYLOADS = ['{"a": "第一"}', '{"b": "line\u2028separator inside JSON"}', "first\nsecond", "[DONE]"]


def test_sse_decodes_events_whole() -> None:
    assert SSEDecoder().feed(STREAM) == PAYLOADS


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_sse_survives_any_split_point(cut: int) -> None:
    # Network pieces can split a line, a CRLF or a UTF-8 character anywhere.
    decoder = SSEDecoder()
    assert decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) == PAYLOADS


def test_sse_byte_by_byte() -> None:
    decoder = SSEDecoder()
    payloads = [p for i in range(len(STREAM)) for p in decoder.feed(STREAM[i : i + 1])]
    assert payloads == PAYLOADS


def test_sse_incomplete_event_is_not_dispatched() -> None:
    assert SSEDecoder().feed(b"data: [DONE]\n") == []


# --- assembly -------------------------------------------------------------------------------


def _chunk(delta: dict | None = None, **choice: object) -> dict:
    return {"choices": [{"index": 0, "delta": delta or {}, **choice}]}


def test_assembler_yields_deltas_and_keeps_the_whole() -> None:
    assembler = StreamAssembler()
    events = []
    events += assembler.feed(_chunk({"role": "assistant", "content": ""}))
    events += assembler.feed(_chunk({"reasoning_content": "think"}))
    events += assembler.feed(_chunk({"content": "Hel"}))
    events += assembler.feed(_chunk({"content": "lo"}))
    events += assembler.feed(_chunk(finish_reason="stop", usage={"prompt_tokens": 5, "completion_tokens": 3}))
    assert events == [ReasoningDelta("think"), ContentDelta("Hel"), ContentDelta("lo")]
    result = assembler.result()
    assert (result.content, result.reasoning, result.finish_reason) == ("Hello", "think", "stop")
    assert result.usage == Usage(5, 3, 0)


def test_assembler_reads_usage_at_top_level_too() -> None:
    assembler = StreamAssembler()
    assembler.feed({**_chunk({"content": "x"}), "usage": None})
    assembler.feed(
        {
            "choices": [],
            "usage": {
                "prompt_tokens": 7,
                "completion_tokens": 1,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
        }
    )
    assert assembler.usage == Usage(7, 1, 4)


def test_assembler_assembles_tool_calls_per_index() -> None:
    assembler = StreamAssembler()
    events = []
    events += assembler.feed(
        _chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "a", "type": "function", "function": {"name": "get", "arguments": ""}},
                ]
            }
        )
    )
    events += assembler.feed(
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "b",
                        "type": "function",
                        "function": {"name": "put", "arguments": "{"},
                    },
                    {"index": 0, "function": {"arguments": '{"k":'}},
                ]
            }
        )
    )
    events += assembler.feed(
        _chunk(
            {
                "tool_calls": [
                    {"index": 0, "function": {"arguments": "1}"}},
                    {"index": 1, "function": {"arguments": "}"}},
                ]
            }
        )
    )
    assert events[0] == ToolCallDelta(0, "a", "get", "")
    assert ToolCallDelta(0, None, None, "1}") in events
    assert assembler.tool_calls() == (
        ToolCall(0, "a", "function", "get", '{"k":1}'),
        ToolCall(1, "b", "function", "put", "{}"),
    )


def test_assembler_hides_builtin_tool_fragments() -> None:
    assembler = StreamAssembler()
    events = assembler.feed(
        _chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "s",
                        "type": "builtin_function",
                        "function": {"name": "$web_search", "arguments": "{}"},
                    }
                ]
            }
        )
    )
    assert events == []
    assert assembler.tool_calls()[0].name == "$web_search"


def test_completion_body_becomes_a_result() -> None:
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": "",
                    "reasoning_content": "r",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 19, "completion_tokens": 21, "total_tokens": 40, "cached_tokens": 10},
    }
    result = result_from_completion(body)
    assert result.tool_calls == (ToolCall(0, "c", "function", "f", "{}"),)
    assert result.usage == Usage(19, 21, 10)
    assert result.usage.uncached_prompt_tokens == 9
    assert result.reasoning == "r"


def test_usage_prefers_the_documented_cached_spelling_and_adds_up() -> None:
    both = Usage.from_wire(
        {
            "prompt_tokens": 10,
            "completion_tokens": 2,
            "cached_tokens": 6,
            "prompt_tokens_details": {"cached_tokens": 5},
        }
    )
    assert both.cached_tokens == 6
    assert both + Usage(1, 1, 1) == Usage(11, 3, 7)
    assert Usage(3, 0, 5).uncached_prompt_tokens == 0


def test_web_search_call_reads_the_announced_tokens() -> None:
    arguments = json.dumps({"search_result": {"search_id": "x"}, "usage": {"total_tokens": 13046}})
    assert WebSearchCall.from_arguments(arguments).total_tokens == 13046
    assert WebSearchCall.from_arguments("not json").total_tokens is None


# --- shaping --------------------------------------------------------------------------------

MESSAGES = [{"role": "user", "content": "hi"}]


def _shape(model: str, *, stream: bool = True, input_tokens: int | None = None, **options: Any) -> dict:
    options.setdefault("max_tokens", 10)
    return shape_chat_request(
        ChatOptions(model=model, **options), MESSAGES, stream=stream, input_tokens=input_tokens
    )


@pytest.mark.parametrize(
    "model",
    [
        "kimi-k2.5",
        "kimi-k2.6",
        "kimi-k2.7-code",
        "kimi-k2.7-code-highspeed",
        "kimi-k3",
        "moonshotai/kimi-k2.6",
    ],
)
def test_fixed_sampling_models_never_get_temperature(model: str) -> None:
    assert has_fixed_sampling(model)
    body = _shape(model, temperature=0.3)
    assert "temperature" not in body
    assert not {"top_p", "n", "presence_penalty", "frequency_penalty"} & body.keys()


@pytest.mark.parametrize(
    "model",
    ["kimi-k2-0905-preview", "kimi-k2-turbo-preview", "moonshot-v1-8k", "kimi-latest", "kimi-k2-thinking"],
)
def test_older_models_are_not_fixed(model: str) -> None:
    assert not has_fixed_sampling(model)


def test_thinking_model_gets_its_recommended_temperature() -> None:
    body = _shape("kimi-k2-thinking-turbo", stream=False, temperature=0.2)
    assert body["temperature"] == 1.0


def test_other_models_pass_the_callers_temperature_within_moonshots_range() -> None:
    shape = lambda t: _shape("kimi-k2-0905-preview", stream=False, temperature=t)  # noqa: E731
    assert shape(0.3)["temperature"] == 0.3
    assert shape(1.7)["temperature"] == 1.0
    assert "temperature" not in shape(None)


def test_streaming_body_asks_for_usage_and_sends_max_tokens() -> None:
    body = _shape("kimi-k2.6", max_tokens=99)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 99
    assert "tools" not in body and "thinking" not in body


def test_max_tokens_is_clamped_to_the_context_window() -> None:
    assert clamp_max_tokens(4000, 8192, 5000) == 3192
    assert clamp_max_tokens(100, 8192, 5000) == 100
    assert clamp_max_tokens(4000, None, 5000) == 4000
    with pytest.raises(KimiContextOverflow):
        clamp_max_tokens(100, 8192, 8192)
    assert (
        _shape("moonshot-v1-8k", max_tokens=4000, context_length=8192, input_tokens=5000)["max_tokens"]
        == 3192
    )


def test_web_search_declares_the_builtin_and_turns_thinking_off_where_it_must() -> None:
    tools = [{"type": "function", "function": {"name": "get_time", "parameters": {}}}]
    body = _shape("kimi-k2.5", tools=tools, web_search=True)
    assert body["tools"] == [*tools, {"type": "builtin_function", "function": {"name": "$web_search"}}]
    assert body["thinking"] == {"type": "disabled"}
    older = _shape("kimi-k2-0905-preview", web_search=True)
    assert "thinking" not in older


# --- errors ---------------------------------------------------------------------------------


def _body(error_type: str, message: str) -> str:
    return json.dumps({"error": {"type": error_type, "message": message}})


@pytest.mark.parametrize(
    ("status", "error_type", "message", "expected", "retryable"),
    [
        (
            400,
            "content_filter",
            "The request was rejected because it was considered high risk",
            KimiContentFilter,
            False,
        ),
        (400, "invalid_request_error", "Invalid request: bad role", KimiInvalidRequest, False),
        (
            400,
            "invalid_request_error",
            "Invalid request: Input token length too long",
            KimiContextOverflow,
            False,
        ),
        (
            400,
            "invalid_request_error",
            "Your request exceeded model token limit : 8192",
            KimiContextOverflow,
            False,
        ),
        (
            400,
            "invalid_request_error",
            "File size is too large, max file size is 100MB, please confirm and re-upload the file",
            KimiFileLimit,
            False,
        ),
        (
            400,
            "invalid_request_error",
            "File size is zero, please confirm and re-upload the file",
            KimiFileLimit,
            False,
        ),
        (400, "invalid_request_error", "You have exceeded the max file count 1000", KimiFileLimit, False),
        (401, "invalid_authentication_error", "Invalid Authentication", KimiAuthError, False),
        (401, "incorrect_api_key_error", "Incorrect API key provided", KimiAuthError, False),
        (
            403,
            "permission_denied_error",
            "The API you are accessing is not open",
            KimiPermissionDenied,
            False,
        ),
        (404, "resource_not_found_error", "Not found the model x or Permission denied", KimiNotFound, False),
        (
            429,
            "exceeded_current_quota_error",
            "Your account org<ak> is suspended, please check your plan and billing details",
            KimiQuotaExhausted,
            False,
        ),
        (
            429,
            "rate_limit_reached_error",
            "Your account org<ak> request reached organization max RPM: 3, please try again after 20 seconds",
            KimiRateLimited,
            True,
        ),
        (
            429,
            "engine_overloaded_error",
            "The engine is currently overloaded, please try again later",
            KimiOverloaded,
            True,
        ),
        (500, "server_error", "invalid state transition", KimiServerError, True),
        (500, "unexpected_output", "something", KimiServerError, True),
        (500, "server_error", "Failed to extract file: unsupported type", KimiFileExtractionFailed, False),
    ],
)
def test_moonshot_errors_map_to_typed_exceptions(
    status: int, error_type: str, message: str, expected: type[KimiError], retryable: bool
) -> None:
    error = error_from_response(status, _body(error_type, message), {})
    assert type(error) is expected
    assert error.retryable is retryable
    assert (error.status, error.error_type, error.message) == (status, error_type, message)


def test_context_overflow_is_an_invalid_request() -> None:
    assert issubclass(KimiContextOverflow, KimiInvalidRequest)


def test_file_limits_tell_their_kind() -> None:
    kinds = [
        error_from_response(400, _body("invalid_request_error", message), {}).kind
        for message in (
            "File size is too large, max file size is 100MB",
            "File size is zero",
            "exceeded the max file count 1000",
        )
    ]
    assert kinds == [KimiFileLimit.TOO_LARGE, KimiFileLimit.EMPTY, KimiFileLimit.TOO_MANY]


def test_a_proxy_page_maps_by_status() -> None:
    error = error_from_response(502, "<html><body>Bad gateway</body></html>", {})
    assert isinstance(error, KimiServerError) and error.retryable
    assert "Bad gateway" in error.message
    assert isinstance(error_from_response(429, "slow down", {}), KimiRateLimited)
    assert isinstance(error_from_response(413, "too big", {}), KimiInvalidRequest)


def test_retry_after_comes_from_the_message_or_the_header() -> None:
    assert retry_after_from("please try again after 20 seconds", None) == 20
    assert retry_after_from("please try again after 1.5 seconds", None) == 1.5
    assert retry_after_from("overloaded", "7") == 7
    assert retry_after_from("please try again after 2 seconds", "5") == 5
    assert retry_after_from("overloaded", None) is None
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 50 < (retry_after_from("", in_a_minute) or 0) <= 60
    error = error_from_response(429, _body("engine_overloaded_error", "overloaded"), {"Retry-After": "3"})
    assert isinstance(error, KimiOverloaded) and error.retry_after == 3


ALL_ERRORS = [
    KimiError(),
    KimiAuthError(),
    KimiPermissionDenied(),
    KimiNotFound(),
    KimiInvalidRequest(),
    KimiContextOverflow(),
    KimiContentFilter(),
    KimiQuotaExhausted(),
    KimiRateLimited(),
    KimiOverloaded(),
    KimiServerError(),
    KimiTimeout(),
    KimiIncompleteStream(),
    KimiConnectionError(),
    KimiFileExtractionFailed(),
    *(KimiFileLimit(kind=kind) for kind in ("too_large", "empty", "too_many", "total_size")),
]


@pytest.mark.parametrize("error", ALL_ERRORS, ids=lambda e: type(e).__name__)
def test_every_error_has_short_user_texts_in_both_languages(error: KimiError) -> None:
    chinese, english = error_text(language_of("zh"), error), error_text(language_of("en"), error)
    assert chinese != english
    assert any("\u4e00" <= char <= "\u9fff" for char in chinese)
    assert english.isascii()
    assert error_text(language_of("zh-hans"), error) == chinese
    assert error_text(language_of("en-US"), error) == error_text(language_of("ru"), error) == english
    for text in (chinese, english):
        assert 0 < len(text) <= 120
        # No internals: no wire error types, HTTP statuses or URLs.
        assert "_error" not in text and "status" not in text.lower() and "http" not in text


def test_log_text_says_what_happened() -> None:
    error = error_from_response(
        429,
        _body("rate_limit_reached_error", "max RPM: 3, please try again after 2 seconds"),
        {"Msh-Request-Id": "req-1"},
    )
    text = error.log_text()
    for part in (
        "KimiRateLimited",
        "status=429",
        "type=rate_limit_reached_error",
        "req-1",
        "max RPM: 3",
        "retry_after=2s",
    ):
        assert part in text
    assert str(error) == text


def test_incomplete_stream_carries_what_arrived_and_can_prepend_earlier_calls() -> None:
    cut = KimiIncompleteStream(
        "dropped", content="world", reasoning="r2", usage=Usage(1, 2), finish_reason="stop"
    )
    whole = cut.after("hello ", "r1 ")
    assert (whole.content, whole.reasoning, whole.usage, whole.finish_reason) == (
        "hello world",
        "r1 r2",
        Usage(1, 2),
        "stop",
    )
    assert cut.after("", "") is cut


def test_redaction_removes_keys_by_value_and_by_shape() -> None:
    text = "key sk-abcdefghijklmnopqrstuvwxyz012345 and gw_SECRET_1234 here"
    cleaned = redact(text, ["gw_SECRET_1234"])
    assert "abcdefghijklmnop" not in cleaned and "gw_SECRET_1234" not in cleaned
    assert "KimiQuotaExhausted" in str(
        KimiQuotaExhausted("Your account org<sk-abcdefghijklmnopqrstuvwxyz> is suspended")
    )
    assert "sk-abcdefghijklmnopqrstuvwxyz" not in str(
        KimiQuotaExhausted("Your account org<sk-abcdefghijklmnopqrstuvwxyz> is suspended")
    )


@pytest.mark.parametrize(
    ("base_url", "currency"),
    [
        ("https://api.moonshot.cn/v1", "CNY"),
        ("https://api.moonshot.ai/v1", "USD"),
        ("https://api.kimi.com/v1", "CNY"),
        ("https://llm-api.mmchat.xyz/v1", None),
        ("http://127.0.0.1:8080/v1", None),
        ("https://evil-moonshot.cn.example.com/v1", None),
    ],
)
def test_balance_currency_follows_the_platform(base_url: str, currency: str | None) -> None:
    assert currency_for(base_url) == currency
