"""Chat against the fake Kimi over loopback: every event type, incomplete streams, timeouts,
non-streamed chat, the $web_search round trip and per-model request shaping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from bot.kimi import (
    ContentDelta,
    Finish,
    KimiClient,
    KimiConfig,
    KimiConnectionError,
    KimiContentFilter,
    KimiContextOverflow,
    KimiIncompleteStream,
    KimiInvalidRequest,
    KimiTimeout,
    ReasoningDelta,
    StreamEvent,
    ToolCall,
    ToolCallDelta,
    Usage,
    WebSearchCall,
)
from tests.fakes.kimi import FakeError, FakeKimi, Reply, ScriptedToolCall, count_prompt_tokens

KEY = "sk-stream-test-key-0123456789"
ASK = [{"role": "user", "content": "Tell me something."}]


@pytest.fixture
async def kimi() -> AsyncIterator[FakeKimi]:
    async with FakeKimi(api_key=KEY) as server:
        yield server


@pytest.fixture
async def client(kimi: FakeKimi) -> AsyncIterator[KimiClient]:
    async with KimiClient(_config(kimi)) as kimi_client:
        yield kimi_client


def _config(kimi: FakeKimi, **overrides: Any) -> KimiConfig:
    settings: dict[str, Any] = {
        "connect_timeout": 2.0,
        "first_byte_timeout": 3.0,
        "idle_timeout": 3.0,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
    }
    return KimiConfig(api_key=KEY, base_url=kimi.base_url, **{**settings, **overrides})


async def _collect(
    client: KimiClient,
    model: str = "kimi-k2-0905-preview",
    messages: Sequence[dict[str, Any]] = ASK,
    **options: Any,
) -> list[StreamEvent]:
    options.setdefault("max_tokens", 200)
    return [event async for event in client.stream_chat(model, messages, **options)]


def _text(events: Sequence[StreamEvent], kind: type = ContentDelta) -> str:
    return "".join(e.text for e in events if isinstance(e, kind))


# --- events ---------------------------------------------------------------------------------


async def test_thinking_then_answer_then_finish_then_usage(kimi: FakeKimi, client: KimiClient):
    kimi.script(Reply(reasoning="Let me think about it.", content="Here is the answer.", chunk_tokens=1))
    events = await _collect(client, "kimi-k2-thinking")
    kinds = [type(e) for e in events]
    first_content = kinds.index(ContentDelta)
    assert set(kinds[:first_content]) == {ReasoningDelta}
    assert kinds[-2:] == [Finish, Usage]
    assert _text(events, ReasoningDelta) == "Let me think about it."
    assert _text(events) == "Here is the answer."
    assert events[-2] == Finish("stop")
    prompt = count_prompt_tokens(ASK)
    assert events[-1] == Usage(prompt_tokens=prompt, completion_tokens=6 + 5)


@pytest.mark.parametrize("placement", ["choice", "top_level"])
async def test_usage_is_read_wherever_it_is_placed(kimi: FakeKimi, client: KimiClient, placement: str):
    kimi.script(Reply(content="abcdefgh", usage_placement=placement, cached_tokens=3))  # type: ignore[arg-type]
    events = await _collect(client)
    assert events[-1] == Usage(count_prompt_tokens(ASK), 2, 3)


async def test_no_usage_means_no_usage_event(kimi: FakeKimi, client: KimiClient):
    kimi.script(Reply(content="abcdefgh", usage_placement="none"))
    events = await _collect(client)
    assert not any(isinstance(e, Usage) for e in events)
    assert events[-1] == Finish("stop")


async def test_cached_tokens_under_openais_spelling(kimi: FakeKimi, client: KimiClient):
    kimi.script(
        Reply(
            content="ok",
            usage={
                "prompt_tokens": 2989,
                "completion_tokens": 5,
                "total_tokens": 2994,
                "prompt_tokens_details": {"cached_tokens": 2989},
            },
        )
    )
    usage = (await _collect(client))[-1]
    assert usage == Usage(2989, 5, 2989)
    assert isinstance(usage, Usage) and usage.uncached_prompt_tokens == 0


async def test_tool_calls_stream_as_fragments_and_arrive_whole(kimi: FakeKimi, client: KimiClient):
    kimi.script(
        Reply(
            content="Let me check.",
            tool_calls=[
                ScriptedToolCall("get_weather", '{"city": "Beijing", "unit": "C"}', id="call_1"),
                ScriptedToolCall("get_time", '{"zone": "Asia/Shanghai"}', id="call_2"),
            ],
            chunk_tokens=2,
        )
    )
    tools = [
        {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
        for name in ("get_weather", "get_time")
    ]
    events = await _collect(client, tools=tools)
    fragments = [e for e in events if isinstance(e, ToolCallDelta)]
    assert len(fragments) > 4
    assert fragments[0] == ToolCallDelta(0, "call_1", "get_weather", "")
    assert "".join(f.arguments_fragment for f in fragments if f.index == 0) == (
        '{"city": "Beijing", "unit": "C"}'
    )
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert calls == [
        ToolCall(0, "call_1", "function", "get_weather", '{"city": "Beijing", "unit": "C"}'),
        ToolCall(1, "call_2", "function", "get_time", '{"zone": "Asia/Shanghai"}'),
    ]
    assert events.index(calls[-1]) < events.index(Finish("tool_calls"))
    assert _text(events) == "Let me check."


async def test_max_tokens_cuts_the_answer_with_finish_length(kimi: FakeKimi, client: KimiClient):
    kimi.script(Reply(content="x" * 400))
    events = await _collect(client, max_tokens=10)
    assert _text(events) == "x" * 40
    assert events[-2:] == [Finish("length"), Usage(count_prompt_tokens(ASK), 10)]


# --- incomplete streams and timeouts --------------------------------------------------------


@pytest.mark.parametrize("drop_style", ["abort", "eof"])
async def test_a_stream_without_done_is_incomplete_even_after_finish_stop(
    kimi: FakeKimi, client: KimiClient, drop_style: str
):
    kimi.script(Reply(content="The partial answer", drop_before_done=True, drop_style=drop_style))  # type: ignore[arg-type]
    seen: list[StreamEvent] = []
    with pytest.raises(KimiIncompleteStream) as caught:
        async for event in client.stream_chat("kimi-k2-0905-preview", ASK, max_tokens=100):
            seen.append(event)
    cut = caught.value
    assert cut.content == "The partial answer" == _text(seen)
    assert cut.finish_reason == "stop"  # seen, and still not complete without [DONE]
    assert cut.usage == Usage(count_prompt_tokens(ASK), 5)
    assert not cut.stalled
    assert not any(isinstance(e, Finish | Usage) for e in seen)
    assert len(kimi.chat_requests) == 1  # content had started: never retried


async def test_a_stalled_stream_ends_as_incomplete_after_the_idle_timeout(kimi: FakeKimi):
    kimi.script(Reply(content="one two three four five", chunk_tokens=1, stall_after_chunks=3))
    async with KimiClient(_config(kimi, idle_timeout=0.8)) as client:
        with pytest.raises(KimiIncompleteStream) as caught:
            await _collect(client)
    assert caught.value.stalled
    assert caught.value.content == "one two "
    assert caught.value.usage is None
    assert len(kimi.chat_requests) == 1


async def test_no_headers_within_the_first_byte_timeout(kimi: FakeKimi):
    kimi.script(Reply(content="late", header_delay=2.0))
    async with KimiClient(_config(kimi, first_byte_timeout=0.3)) as client:
        with pytest.raises(KimiTimeout):
            await _collect(client)
    # Not retried: the server may already be generating (and billing) that answer.
    assert len(kimi.chat_requests) == 1


async def test_headers_but_no_first_chunk_within_the_first_byte_timeout(kimi: FakeKimi):
    kimi.script(Reply(content="never sent", stall_after_chunks=0))
    async with KimiClient(_config(kimi, first_byte_timeout=0.3, idle_timeout=5.0)) as client:
        with pytest.raises(KimiTimeout):
            await _collect(client)


async def test_a_drop_before_anything_arrived_is_retried(kimi: FakeKimi, client: KimiClient):
    kimi.script(Reply(content="", drop_before_done=True), Reply(content="second try"))
    events = await _collect(client)
    assert _text(events) == "second try"
    assert len(kimi.chat_requests) == 2


async def test_an_error_inside_the_stream_after_content_keeps_the_partial_answer(
    kimi: FakeKimi, client: KimiClient
):
    kimi.script(
        Reply(content="abcdefgh" * 4, chunk_tokens=2, error_after_chunks=(3, FakeError.content_filter()))
    )
    seen: list[StreamEvent] = []
    with pytest.raises(KimiIncompleteStream) as caught:
        async for event in client.stream_chat("kimi-k2-0905-preview", ASK, max_tokens=100):
            seen.append(event)
    # Two content chunks came before the error, in the same network piece: both reach the caller.
    assert caught.value.content == "abcdefgh" * 2 == _text(seen)
    assert isinstance(caught.value.upstream_error, KimiContentFilter)


async def test_an_error_inside_the_stream_before_content_is_the_error_itself(
    kimi: FakeKimi, client: KimiClient
):
    kimi.script(Reply(content="abc", error_after_chunks=(1, FakeError.content_filter())))
    with pytest.raises(KimiContentFilter):
        await _collect(client)


async def test_leaving_a_stream_early_frees_its_slot(kimi: FakeKimi):
    kimi.script(Reply(content="a long answer " * 20, chunk_tokens=1, delay=0.01), Reply(content="next"))
    async with KimiClient(_config(kimi, max_concurrency=1)) as client:
        async for _event in client.stream_chat("kimi-k2-0905-preview", ASK, max_tokens=500):
            break
        events = await asyncio.wait_for(_collect(client), timeout=10)
    assert _text(events) == "next"


# --- non-streamed chat ----------------------------------------------------------------------


async def test_chat_returns_the_whole_result(kimi: FakeKimi, client: KimiClient):
    kimi.script(
        Reply(
            reasoning="hmm", content="Answer.", tool_calls=[ScriptedToolCall("lookup", '{"q": 1}', id="c1")]
        )
    )
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    result = await client.chat("kimi-k2-thinking", ASK, max_tokens=100, tools=tools)
    assert (result.content, result.reasoning, result.finish_reason) == ("Answer.", "hmm", "tool_calls")
    assert result.tool_calls == (ToolCall(0, "c1", "function", "lookup", '{"q": 1}'),)
    assert result.usage is not None and result.usage.prompt_tokens == count_prompt_tokens(ASK, tools)
    assert kimi.chat_requests[0].json.get("stream") is None


async def test_chat_retries_a_body_cut_in_half(kimi: FakeKimi, client: KimiClient):
    kimi.script(Reply(content="lost", drop_before_done=True), Reply(content="whole"))
    result = await client.chat("kimi-k2-0905-preview", ASK, max_tokens=100)
    assert result.content == "whole"
    assert len(kimi.chat_requests) == 2


# --- $web_search ----------------------------------------------------------------------------


async def test_web_search_round_trip_reports_each_charged_call(kimi: FakeKimi, client: KimiClient):
    kimi.script(
        Reply(web_search="weather in Beijing", search_tokens=1300),
        Reply(web_search="air quality", search_tokens=700),
        Reply(content="Sunny, and the air is clean."),
    )
    events = await _collect(client, "kimi-k2.6", web_search=True, max_tokens=300)

    searches = [e for e in events if isinstance(e, WebSearchCall)]
    assert [s.total_tokens for s in searches] == [1300, 700]
    usages = [e for e in events if isinstance(e, Usage)]
    assert len(usages) == 3  # one per upstream call; the caller sums them
    assert _text(events) == "Sunny, and the air is clean."
    assert events[-2:] == [Finish("stop"), usages[-1]]
    assert not any(isinstance(e, ToolCall | ToolCallDelta) for e in events)
    # The search results are billed as input of the next call.
    assert usages[1].prompt_tokens > usages[0].prompt_tokens + 1300
    assert usages[2].prompt_tokens > usages[1].prompt_tokens + 700

    requests = kimi.chat_requests
    assert len(requests) == 3
    for request in requests:
        assert {"type": "builtin_function", "function": {"name": "$web_search"}} in request.json["tools"]
        assert request.json["thinking"] == {"type": "disabled"}  # k2.6 cannot search thinking
    echoed = requests[1].json["messages"]
    assistant, tool = echoed[-2], echoed[-1]
    assert assistant["tool_calls"][0]["function"]["arguments"] == tool["content"]
    assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert tool["name"] == "$web_search"
    assert searches[0].arguments == tool["content"]


async def test_web_search_on_a_thinking_model_echoes_the_reasoning(kimi: FakeKimi, client: KimiClient):
    kimi.script(
        Reply(reasoning="I should search.", web_search="news"),
        Reply(reasoning="Found it.", content="Here is the news."),
    )
    events = await _collect(client, "kimi-k2-thinking", web_search=True, max_tokens=300)
    assert _text(events) == "Here is the news."
    assistant = kimi.chat_requests[1].json["messages"][-2]
    assert assistant["reasoning_content"] == "I should search."


async def test_web_search_in_non_streamed_chat(kimi: FakeKimi, client: KimiClient):
    kimi.script(Reply(web_search="q", search_tokens=500), Reply(content="done"))
    result = await client.chat("kimi-k2-0905-preview", ASK, max_tokens=100, web_search=True)
    assert result.content == "done"
    assert [s.total_tokens for s in result.web_search_calls] == [500]
    first, second = (r.json for r in kimi.chat_requests)
    assert result.usage is not None
    assert result.usage.prompt_tokens > 2 * count_prompt_tokens(ASK, first["tools"]) + 500
    assert "thinking" not in second  # not a k2.5-family model


async def test_a_cut_after_a_search_keeps_the_whole_turns_text(kimi: FakeKimi, client: KimiClient):
    kimi.script(
        Reply(content="Searching. ", web_search="q"), Reply(content="Partial result", drop_before_done=True)
    )
    with pytest.raises(KimiIncompleteStream) as caught:
        await _collect(client, web_search=True)
    assert caught.value.content == "Searching. Partial result"


# --- shaping as the fake sees it ------------------------------------------------------------


async def test_fixed_temperature_models_get_none_even_when_the_caller_asks(
    kimi: FakeKimi, client: KimiClient
):
    events = await _collect(client, "kimi-k2.6", temperature=0.3)
    assert _text(events) == "echo: Tell me something."
    body = kimi.chat_requests[0].json
    assert "temperature" not in body
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 200


async def test_the_fake_refuses_a_temperature_on_k2_6(kimi: FakeKimi, client: KimiClient):
    # What happens to clients that do send it: the check above is not a formality.
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{kimi.base_url}/chat/completions",
            json={"model": "kimi-k2.6", "messages": ASK, "temperature": 0.3},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response:
            body = await response.json()
    assert response.status == 400
    assert body["error"]["message"] == "invalid temperature: only 1 is allowed for this model"


async def test_thinking_models_get_temperature_one(kimi: FakeKimi, client: KimiClient):
    await _collect(client, "kimi-k2-thinking", temperature=0.2)
    assert kimi.chat_requests[0].json["temperature"] == 1.0


async def test_max_tokens_is_clamped_so_the_request_fits(kimi: FakeKimi, client: KimiClient):
    prompt = count_prompt_tokens(ASK)
    with pytest.raises(KimiContextOverflow):
        await _collect(client, "moonshot-v1-8k", max_tokens=8192)
    events = await _collect(
        client, "moonshot-v1-8k", max_tokens=8192, context_length=8192, input_tokens=prompt
    )
    assert events[-2] == Finish("stop")
    assert kimi.chat_requests[-1].json["max_tokens"] == 8192 - prompt


async def test_cached_model_list_supplies_the_context_length(kimi: FakeKimi, client: KimiClient):
    await client.list_models()
    prompt = count_prompt_tokens(ASK)
    await _collect(client, "moonshot-v1-8k", max_tokens=8192, input_tokens=prompt)
    assert kimi.chat_requests[-1].json["max_tokens"] == 8192 - prompt


async def test_an_input_that_cannot_fit_is_refused_without_a_request(kimi: FakeKimi, client: KimiClient):
    with pytest.raises(KimiContextOverflow):
        await _collect(client, "moonshot-v1-8k", context_length=8192, input_tokens=9000)
    assert kimi.chat_requests == []


async def test_a_stream_broken_before_any_answer_exhausts_retries_as_connection_error(
    kimi: FakeKimi,
):
    kimi.script(*[Reply(content="", drop_before_done=True)] * 3)
    async with KimiClient(_config(kimi, retry_max_attempts=3)) as client:
        with pytest.raises(KimiConnectionError):
            await _collect(client)
    assert len(kimi.chat_requests) == 3
    assert json.dumps(kimi.chat_requests[0].json) == json.dumps(kimi.chat_requests[2].json)


async def test_a_gateways_json_error_on_a_stream_request_is_not_taken_for_a_drop(
    kimi: FakeKimi, client: KimiClient
):
    # An OpenAI-compatible gateway may answer 200 with a JSON error instead of an event stream.
    kimi.script(Reply(error=FakeError(200, "invalid_request_error", "model kimi-k2.6 is not enabled")))
    with pytest.raises(KimiInvalidRequest, match="not enabled"):
        await _collect(client, "kimi-k2.6")
    assert len(kimi.chat_requests) == 1
