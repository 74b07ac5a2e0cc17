"""The fake Kimi is faithful: the official openai SDK, an independent client, streams from it
and parses the same text and usage as our client; and it refuses what Moonshot refuses."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI

from bot.kimi import ContentDelta, KimiClient, KimiConfig, ReasoningDelta, ToolCall, Usage
from tests.fakes.kimi import (
    FakeError,
    FakeKimi,
    Reply,
    ScriptedToolCall,
    count_prompt_tokens,
    count_tokens,
)

KEY = "sk-fidelity-test-key-0123456789"
ASK = [{"role": "user", "content": "Write two sentences about the sea."}]
ANSWER = "The sea is wide. 海很深。"
TOOLS = [{"type": "function", "function": {"name": "get_time", "parameters": {}}}]


@pytest.fixture
async def kimi() -> AsyncIterator[FakeKimi]:
    async with FakeKimi(api_key=KEY) as server:
        yield server


@pytest.fixture
async def sdk(kimi: FakeKimi) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(api_key=KEY, base_url=kimi.base_url, max_retries=0)
    yield client
    await client.close()


async def _ours(kimi: FakeKimi, model: str = "kimi-k2-thinking") -> tuple[str, str, Usage]:
    text, reasoning, usage = [], [], None
    async with KimiClient(KimiConfig(api_key=KEY, base_url=kimi.base_url)) as client:
        async for event in client.stream_chat(model, ASK, max_tokens=200):
            if isinstance(event, ContentDelta):
                text.append(event.text)
            elif isinstance(event, ReasoningDelta):
                reasoning.append(event.text)
            elif isinstance(event, Usage):
                usage = event
    assert usage is not None
    return "".join(text), "".join(reasoning), usage


async def test_sdk_and_our_client_read_the_documented_stream_alike(kimi: FakeKimi, sdk: AsyncOpenAI):
    reply = Reply(reasoning="Think of waves.", content=ANSWER, chunk_tokens=1, cached_tokens=4)
    kimi.script(reply, reply)
    text, reasoning, choice_usage = [], [], None
    stream = await sdk.chat.completions.create(
        model="kimi-k2-thinking",
        messages=ASK,
        max_tokens=200,
        stream=True,  # type: ignore[arg-type]
    )
    async for chunk in stream:
        # The documented placement: usage inside choices[0] of the last chunk. The SDK only
        # reads chunk.usage, so it stays None there; the value is an extra field of the choice.
        assert chunk.usage is None
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
            choice_usage = (choice.model_extra or {}).get("usage") or choice_usage

    ours = await _ours(kimi)
    assert "".join(text) == ANSWER == ours[0]
    assert "".join(reasoning) == "Think of waves." == ours[1]
    assert choice_usage is not None
    assert Usage.from_wire(choice_usage) == ours[2]
    completion = count_tokens("Think of waves.") + count_tokens(ANSWER)
    assert ours[2] == Usage(count_prompt_tokens(ASK), completion, 4)


async def test_sdk_and_our_client_read_top_level_usage_alike(kimi: FakeKimi, sdk: AsyncOpenAI):
    reply = Reply(content=ANSWER, usage_placement="top_level")
    kimi.script(reply, reply)
    text, usage = [], None
    stream = await sdk.chat.completions.create(
        model="kimi-k2-0905-preview",
        messages=ASK,
        max_tokens=200,
        stream=True,  # type: ignore[arg-type]
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        text.extend(choice.delta.content or "" for choice in chunk.choices)
        usage = chunk.usage or usage
    ours = await _ours(kimi, "kimi-k2-0905-preview")
    assert "".join(text) == ANSWER == ours[0]
    assert usage is not None
    assert Usage(usage.prompt_tokens, usage.completion_tokens) == ours[2]


async def test_sdk_non_streamed_chat_and_usage(kimi: FakeKimi, sdk: AsyncOpenAI):
    kimi.script(Reply(content=ANSWER, cached_tokens=2))
    completion = await sdk.chat.completions.create(
        model="kimi-k2.6",
        messages=ASK,
        max_tokens=200,  # type: ignore[arg-type]
    )
    assert completion.choices[0].message.content == ANSWER
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == count_prompt_tokens(ASK)
    assert (completion.usage.model_extra or {}).get("cached_tokens") == 2


async def test_sdk_sees_length_finish(kimi: FakeKimi, sdk: AsyncOpenAI):
    kimi.script(Reply(content="word " * 100))
    completion = await sdk.chat.completions.create(
        model="kimi-k2.6",
        messages=ASK,
        max_tokens=5,  # type: ignore[arg-type]
    )
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 5


async def test_sdk_assembles_streamed_tool_calls_like_ours(kimi: FakeKimi, sdk: AsyncOpenAI):
    reply = Reply(tool_calls=[ScriptedToolCall("get_time", '{"zone": "Asia/Shanghai"}', "c1")])
    kimi.script(reply, reply)
    arguments: dict[int, str] = {}
    stream = await sdk.chat.completions.create(
        model="kimi-k2-0905-preview",
        messages=ASK,
        tools=TOOLS,
        stream=True,  # type: ignore[arg-type]
    )
    async for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or ():
            arguments[call.index] = arguments.get(call.index, "") + (call.function.arguments or "")
    async with KimiClient(KimiConfig(api_key=KEY, base_url=kimi.base_url)) as client:
        ours = [
            e
            async for e in client.stream_chat("kimi-k2-0905-preview", ASK, max_tokens=100, tools=TOOLS)
            if isinstance(e, ToolCall)
        ]
    assert arguments == {0: '{"zone": "Asia/Shanghai"}'} == {c.index: c.arguments for c in ours}


async def test_the_official_web_search_sample_works_against_the_fake(kimi: FakeKimi, sdk: AsyncOpenAI):
    # Moonshot's documented loop: append the assistant message unchanged, answer each
    # $web_search call with json.dumps(json.loads(arguments)), call again with the same tools.
    kimi.script(Reply(web_search="sea temperature", search_tokens=900), Reply(content="It is 18 °C."))
    tools = [{"type": "builtin_function", "function": {"name": "$web_search"}}]
    messages: list[Any] = list(ASK)
    finish_reason = None
    while finish_reason in (None, "tool_calls"):
        completion = await sdk.chat.completions.create(
            model="kimi-k2-0905-preview",
            messages=messages,
            tools=tools,  # type: ignore[arg-type]
        )
        choice = completion.choices[0]
        finish_reason = choice.finish_reason
        if finish_reason == "tool_calls":
            # warnings=False: the SDK's types only know type "function", not "builtin_function".
            messages.append(choice.message.model_dump(exclude_none=True, warnings=False))
            for call in choice.message.tool_calls or ():
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "name": call.function.name,  # type: ignore[union-attr]
                        "content": json.dumps(json.loads(call.function.arguments)),  # type: ignore[union-attr]
                    }
                )
    assert choice.message.content == "It is 18 °C."
    assert completion.usage is not None and completion.usage.prompt_tokens > 900


async def test_sdk_files_models_and_errors(kimi: FakeKimi, sdk: AsyncOpenAI):
    stored = await sdk.files.create(file=("notes.txt", "第一行".encode()), purpose="file-extract")  # type: ignore[arg-type]
    assert stored.status == "ok" and stored.filename == "notes.txt"
    content = await sdk.files.content(stored.id)
    assert json.loads(content.text)["content"] == "第一行"
    assert (await sdk.files.delete(stored.id)).deleted
    assert kimi.live_files == 0

    models = [model.id async for model in sdk.models.list()]
    assert "kimi-k2.6" in models

    wrong = AsyncOpenAI(api_key="sk-wrong", base_url=kimi.base_url, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        await wrong.models.list()
    await wrong.close()
    assert caught.value.body == {"message": "Invalid Authentication", "type": "invalid_authentication_error"}

    kimi.script(Reply(error=FakeError.rate_limited(after=3)))
    with pytest.raises(openai.RateLimitError, match="please try again after 3 seconds"):
        await sdk.chat.completions.create(model="kimi-k2.6", messages=ASK, max_tokens=5)  # type: ignore[arg-type]


# --- strict like the real service -----------------------------------------------------------


async def _post(
    kimi: FakeKimi, body: dict[str, Any], path: str = "/chat/completions", key: str = KEY
) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            kimi.base_url + path, json=body, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            return response.status, await response.json(content_type=None)


def _tool_call(call_id: str = "call_1", name: str = "get_time") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


@pytest.mark.parametrize(
    ("body", "status", "error_type", "message"),
    [
        (
            {"model": "kimi-k9", "messages": ASK},
            404,
            "resource_not_found_error",
            "Not found the model kimi-k9 or Permission denied",
        ),
        ({"model": "kimi-k2.6", "messages": []}, 400, "invalid_request_error", "messages must not be empty"),
        (
            {"model": "kimi-k2.6", "messages": [{"role": "robot", "content": "x"}]},
            400,
            "invalid_request_error",
            "invalid role",
        ),
        (
            {"model": "kimi-k2.6", "messages": ASK, "temperature": 0.6},
            400,
            "invalid_request_error",
            "invalid temperature: only 1 is allowed for this model",
        ),
        (
            {"model": "kimi-k2.6", "messages": ASK, "top_p": 0.5},
            400,
            "invalid_request_error",
            "invalid top_p: only 0.95 is allowed",
        ),
        (
            {"model": "kimi-k2-0905-preview", "messages": ASK, "temperature": 1.5},
            400,
            "invalid_request_error",
            "temperature must be in [0, 1]",
        ),
        (
            {"model": "moonshot-v1-8k", "messages": ASK, "max_tokens": 8190},
            400,
            "invalid_request_error",
            "Your request exceeded model token limit : 8192",
        ),
        (
            {"model": "moonshot-v1-8k", "messages": [{"role": "user", "content": "x" * 40000}]},
            400,
            "invalid_request_error",
            "Input token length too long",
        ),
        (
            {
                "model": "kimi-k2-thinking",
                "messages": [
                    *ASK,
                    {"role": "assistant", "content": "", "tool_calls": [_tool_call()]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
                ],
                "tools": TOOLS,
            },
            400,
            "invalid_request_error",
            "thinking is enabled but reasoning_content is missing in assistant tool call message",
        ),
        (
            {
                "model": "kimi-k2-0905-preview",
                "messages": [*ASK, {"role": "assistant", "content": "", "tool_calls": [_tool_call()]}],
                "tools": TOOLS,
            },
            400,
            "invalid_request_error",
            "call_1 has no tool message",
        ),
        (
            {
                "model": "kimi-k2-0905-preview",
                "messages": [*ASK, {"role": "tool", "tool_call_id": "call_9", "content": "x"}],
            },
            400,
            "invalid_request_error",
            "tool_call_id call_9 is not found",
        ),
        (
            {
                "model": "kimi-k2-0905-preview",
                "messages": [
                    *ASK,
                    {"role": "assistant", "content": "", "tool_calls": [_tool_call("s1", "$web_search")]},
                    {"role": "tool", "tool_call_id": "s1", "name": "$web_search", "content": "{}"},
                ],
            },
            400,
            "invalid_request_error",
            "must be declared in tools on every request",
        ),
        (
            {
                "model": "kimi-k2.5",
                "messages": ASK,
                "tools": [{"type": "builtin_function", "function": {"name": "$web_search"}}],
            },
            400,
            "invalid_request_error",
            "not compatible with thinking",
        ),
        (
            {
                "model": "kimi-k2-0905-preview",
                "messages": ASK,
                "tools": [{"type": "function", "function": {"name": "a b", "parameters": {}}}],
            },
            400,
            "invalid_request_error",
            "invalid function name",
        ),
        (
            {"model": "kimi-k2-thinking", "messages": ASK, "tools": TOOLS, "tool_choice": "required"},
            400,
            "invalid_request_error",
            "tool_choice must be auto or none",
        ),
    ],
)
async def test_the_fake_refuses_what_moonshot_refuses(
    kimi: FakeKimi, body: dict[str, Any], status: int, error_type: str, message: str
):
    got_status, got = await _post(kimi, body)
    assert got_status == status
    assert got["error"]["type"] == error_type
    assert message in got["error"]["message"]
    assert kimi.pending_replies == 0


async def test_the_fake_accepts_a_proper_tool_round_trip_on_a_thinking_model(kimi: FakeKimi):
    status, body = await _post(
        kimi,
        {
            "model": "kimi-k2-thinking",
            "tools": TOOLS,
            "messages": [
                *ASK,
                {
                    "role": "assistant",
                    "content": "",
                    "reasoning_content": "need the time",
                    "tool_calls": [_tool_call()],
                },
                {"role": "tool", "tool_call_id": "call_1", "name": "get_time", "content": "12:00"},
            ],
        },
    )
    assert status == 200
    assert body["choices"][0]["message"]["content"].startswith("echo: ")


async def test_the_fake_checks_the_key_everywhere(kimi: FakeKimi):
    for path in ("/chat/completions", "/tokenizers/estimate-token-count", "/files"):
        status, body = await _post(kimi, {"model": "kimi-k2.6", "messages": ASK}, path, key="sk-other")
        assert (status, body["error"]["type"]) == (401, "invalid_authentication_error")
    assert [r.status for r in kimi.requests] == [401, 401, 401]
    assert kimi.requests[0].headers["Authorization"] == "Bearer sk-other"


async def test_the_fake_streams_the_documented_wire_format(kimi: FakeKimi):
    kimi.script(Reply(content="Hi there", chunk_tokens=1))
    async with aiohttp.ClientSession() as session:
        async with session.post(
            kimi.base_url + "/chat/completions",
            json={"model": "kimi-k2-0905-preview", "messages": ASK, "stream": True},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response:
            raw = (await response.read()).decode()
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [block for block in raw.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(block[6:]) for block in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    last = chunks[-1]["choices"][0]
    assert last["finish_reason"] == "stop" and last["delta"] == {}
    assert last["usage"] == {
        "prompt_tokens": count_prompt_tokens(ASK),
        "completion_tokens": 2,
        "total_tokens": count_prompt_tokens(ASK) + 2,
    }
    assert "usage" not in chunks[-1]  # not at the top level without include_usage
