"""The fake Kimi checks image parts as Moonshot does: decodable image data in a data: URL or an
uploaded image (purpose=image) as ms://<id>, only on models that read images; and it counts them."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from bot.kimi import KimiClient, KimiConfig, KimiInvalidRequest
from tests.fakes.kimi import MS_FILE_IMAGE_TOKENS, FakeKimi, image_tokens

KEY = "sk-vision-fake-key-0123456789"


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, "PNG")
    return buffer.getvalue()


def asking(url: str) -> list[dict[str, Any]]:
    parts = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "what is it?"}]
    return [{"role": "user", "content": parts}]


@pytest.fixture
async def client() -> AsyncIterator[tuple[FakeKimi, KimiClient]]:
    async with (
        FakeKimi(api_key=KEY) as kimi,
        KimiClient(KimiConfig(api_key=KEY, base_url=kimi.base_url)) as ours,
    ):
        yield kimi, ours


async def test_a_decodable_picture_is_read_and_counted_by_its_tiles(client):
    kimi, ours = client
    url = "data:image/png;base64," + base64.b64encode(png(140, 28)).decode()
    assert image_tokens(url) == 10 * 2
    result = await ours.chat("kimi-k2.6", asking(url), max_tokens=50)
    assert result.usage is not None and result.usage.prompt_tokens >= 20
    assert await ours.estimate_tokens("kimi-k2.6", asking(url)) == result.usage.prompt_tokens


async def test_an_uploaded_image_is_referred_to_by_ms_url(client):
    kimi, ours = client
    stored = await ours.upload(png(10, 10), "pic.png", purpose="image")
    result = await ours.chat("kimi-k2.5", asking(f"ms://{stored.id}"), max_tokens=50)
    assert result.usage is not None and result.usage.prompt_tokens >= MS_FILE_IMAGE_TOKENS
    await ours.delete_file(stored.id)


@pytest.mark.parametrize(
    ("model", "url", "complaint"),
    [
        ("kimi-k2-0905-preview", "data:image/png;base64,{png}", "does not support image input"),
        ("kimi-k2.6", "data:image/png;base64,aGVsbG8=", "undecodable image"),
        ("kimi-k2.6", "https://example.com/cat.png", "must be base64 or ms://"),
        ("kimi-k2.6", "ms://cl-unknown", "not found or not an image"),
    ],
)
async def test_what_moonshot_refuses_is_refused(client, model: str, url: str, complaint: str):
    kimi, ours = client
    url = url.format(png=base64.b64encode(png(8, 8)).decode())
    with pytest.raises(KimiInvalidRequest) as refused:
        await ours.chat(model, asking(url), max_tokens=50)
    assert complaint in str(refused.value)
    assert kimi.chat_requests[-1].status == 400


async def test_a_file_extract_upload_is_no_image(client):
    kimi, ours = client
    kimi.extractions["notes.txt"] = "text"
    stored = await ours.upload(b"text", "notes.txt", purpose="file-extract")
    with pytest.raises(KimiInvalidRequest):
        await ours.chat("kimi-k2.6", asking(f"ms://{stored.id}"), max_tokens=50)
    await ours.delete_file(stored.id)
