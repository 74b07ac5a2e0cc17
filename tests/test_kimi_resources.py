"""Models, token estimation, balance and files against the fake Kimi over loopback."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import docx
import pytest
from fpdf import FPDF

from bot.kimi import (
    Balance,
    KimiClient,
    KimiConfig,
    KimiFileExtractionFailed,
    KimiFileLimit,
    KimiInvalidRequest,
    KimiNotFound,
    KimiServerError,
    ModelInfo,
)
from bot.kimi.client import MAX_FILE_BYTES
from tests.fakes.kimi import ExtractionFailure, FakeError, FakeKimi, count_prompt_tokens

KEY = "sk-resources-test-key-0123456789"


@pytest.fixture
async def kimi() -> AsyncIterator[FakeKimi]:
    async with FakeKimi(api_key=KEY) as server:
        yield server


@pytest.fixture
async def client(kimi: FakeKimi) -> AsyncIterator[KimiClient]:
    async with KimiClient(_config(kimi)) as kimi_client:
        yield kimi_client


def _config(kimi: FakeKimi, **overrides: Any) -> KimiConfig:
    settings: dict[str, Any] = {"retry_base_delay": 0.01, "retry_max_delay": 0.05}
    return KimiConfig(api_key=KEY, base_url=kimi.base_url, **{**settings, **overrides})


def _requests_to(kimi: FakeKimi, method: str, path: str) -> int:
    return sum(1 for r in kimi.requests if r.method == method and r.path == "/v1" + path)


# --- models ---------------------------------------------------------------------------------


async def test_models_are_listed_with_their_context_and_abilities(client: KimiClient):
    models = {model.id: model for model in await client.list_models()}
    assert models["kimi-k2.6"] == ModelInfo(
        "kimi-k2.6",
        262144,
        True,
        supports_image_in=True,
        supports_video_in=False,
        owned_by="moonshot",
    )
    assert models["moonshot-v1-8k"].context_length == 8192
    assert models["moonshot-v1-8k"].supports_reasoning is False


async def test_the_model_list_is_cached_until_it_is_due(kimi: FakeKimi, client: KimiClient):
    await client.list_models()
    await client.list_models()
    assert _requests_to(kimi, "GET", "/models") == 1
    await client.list_models(refresh=True)
    assert _requests_to(kimi, "GET", "/models") == 2


async def test_the_model_list_is_refreshed_once_stale(kimi: FakeKimi):
    async with KimiClient(_config(kimi, models_refresh=0.0)) as client:
        await client.list_models()
        await client.list_models()
    assert _requests_to(kimi, "GET", "/models") == 2


async def test_a_failed_refresh_keeps_the_last_list_and_waits_before_trying_again(kimi: FakeKimi):
    async with KimiClient(_config(kimi, retry_max_attempts=1)) as client:
        first = await client.list_models()
        kimi.script_errors("/models", FakeError.server_error())
        assert await client.list_models(refresh=True) == first
        assert await client.list_models() == first  # no new attempt on every call
    assert _requests_to(kimi, "GET", "/models") == 2
    kimi.script_errors("/models", FakeError.server_error())
    async with KimiClient(_config(kimi, retry_max_attempts=1)) as fresh:
        with pytest.raises(KimiServerError):
            await fresh.list_models()


def test_older_model_listings_without_flags():
    raw = {
        "id": "moonshot-v1-8k",
        "object": "model",
        "owned_by": "moonshot",
        "root": "x",
        "permission": [{"allow_sampling": True}],
    }
    assert ModelInfo.from_wire(raw) == ModelInfo("moonshot-v1-8k", None, None, None, None, "moonshot")


# --- tokens ---------------------------------------------------------------------------------


async def test_estimate_tokens_matches_what_the_chat_then_bills(kimi: FakeKimi, client: KimiClient):
    messages = [
        {"role": "system", "content": "你是 Kimi。"},
        {"role": "user", "content": "Summarise the attached report, please."},
    ]
    estimated = await client.estimate_tokens("kimi-k2.6", messages)
    assert estimated == count_prompt_tokens(messages)
    result = await client.chat("kimi-k2.6", messages, max_tokens=50)
    assert result.usage is not None and result.usage.prompt_tokens == estimated
    body = kimi.requests[0].json
    assert body == {"model": "kimi-k2.6", "messages": messages}


async def test_estimate_for_an_unknown_model_is_not_found(client: KimiClient):
    with pytest.raises(KimiNotFound):
        await client.estimate_tokens("kimi-k9", [{"role": "user", "content": "x"}])


# --- balance --------------------------------------------------------------------------------


async def test_balance_is_exact(kimi: FakeKimi, client: KimiClient):
    kimi.cash_balance, kimi.voucher_balance = Decimal("3.00001"), Decimal("46.58893")
    assert await client.balance() == Balance(
        Decimal("49.58894"), Decimal("46.58893"), Decimal("3.00001"), None
    )


async def test_a_negative_cash_balance_leaves_the_vouchers(kimi: FakeKimi, client: KimiClient):
    kimi.cash_balance, kimi.voucher_balance = Decimal("-2.5"), Decimal("10")
    balance = await client.balance()
    assert (balance.available, balance.cash) == (Decimal("10"), Decimal("-2.5"))


async def test_balance_currency_is_none_for_a_host_that_is_not_moonshots(client: KimiClient):
    # 127.0.0.1 could be any gateway; .cn / .ai hosts are covered in test_kimi_units.
    assert (await client.balance()).currency is None


# --- files ----------------------------------------------------------------------------------


def _pdf(*lines: str) -> bytes:
    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for line in lines:
        pdf.cell(text=line)
        pdf.ln()
    return bytes(pdf.output())


def _docx(*paragraphs: str) -> bytes:
    document = docx.Document()
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "data", "expected"),
    [
        ("notes.txt", "第一行\nsecond line".encode(), "第一行\nsecond line"),
        ("README.md", b"# Title\n\nBody", "# Title\n\nBody"),
        ("main.py", b"print('hi')\n", "print('hi')\n"),
        (
            "report.pdf",
            _pdf("Quarterly report (draft)", "Revenue grew 12%"),
            "Quarterly report (draft)\nRevenue grew 12%",
        ),
        ("memo.docx", _docx("第一段", "Second paragraph"), "第一段\nSecond paragraph"),
    ],
)
async def test_upload_extract_delete(
    kimi: FakeKimi, client: KimiClient, filename: str, data: bytes, expected: str
):
    stored = await client.upload(data, filename)
    assert (stored.filename, stored.bytes, stored.status, stored.purpose) == (
        filename,
        len(data),
        "ok",
        "file-extract",
    )
    assert await client.file_content(stored.id) == expected
    assert [f.id for f in await client.list_files()] == [stored.id]
    await client.delete_file(stored.id)
    assert kimi.live_files == 0
    upload = next(r for r in kimi.requests if r.method == "POST")
    assert upload.form == {"purpose": "file-extract"}
    assert upload.file_sizes == {filename: len(data)}


async def test_extraction_results_can_be_set_per_file(kimi: FakeKimi, client: KimiClient):
    kimi.extractions["scan.png"] = "text found by OCR"
    stored = await client.upload(b"\x89PNG fake image", "scan.png")
    assert await client.file_content(stored.id) == "text found by OCR"


async def test_a_raw_text_content_body_is_returned_as_it_came(kimi: FakeKimi, client: KimiClient):
    kimi.file_content_as_json = False
    stored = await client.upload(b"plain words", "a.txt")
    assert await client.file_content(stored.id) == "plain words"


@pytest.mark.parametrize("filename", ["setup.exe", "archive.zip", "song.mp3", "clip.mp4", "photo.jpg"])
async def test_unextractable_files_fail_without_retry(kimi: FakeKimi, client: KimiClient, filename: str):
    with pytest.raises(KimiFileExtractionFailed) as caught:
        await client.upload(b"\x00\x01binary", filename)
    assert "Failed to extract file" in caught.value.message
    assert _requests_to(kimi, "POST", "/files") == 1
    assert kimi.live_files == 0


async def test_a_failed_extraction_reported_as_status_is_deleted():
    async with FakeKimi(api_key=KEY, extraction_failure_style="status") as strict:
        strict.extractions["blank.pdf"] = ExtractionFailure("no text found in the file")
        async with KimiClient(_config(strict)) as client:
            with pytest.raises(KimiFileExtractionFailed, match="no text found"):
                await client.upload(_pdf("x"), "blank.pdf")
        assert strict.live_files == 0
        deleted = [r.path for r in strict.requests if r.method == "DELETE"]
        assert len(deleted) == 1 and deleted[0].startswith("/v1/files/cl")


async def test_file_limits():
    async with FakeKimi(api_key=KEY, max_file_bytes=1024, max_files=2) as small:
        async with KimiClient(_config(small)) as client:
            with pytest.raises(KimiFileLimit) as too_large:
                await client.upload(b"x" * 1025, "big.txt")
            with pytest.raises(KimiFileLimit) as empty:
                await client.upload(b"", "empty.txt")
            await client.upload(b"one", "1.txt")
            await client.upload(b"two", "2.txt")
            with pytest.raises(KimiFileLimit) as too_many:
                await client.upload(b"three", "3.txt")
    assert (too_large.value.kind, empty.value.kind, too_many.value.kind) == (
        KimiFileLimit.TOO_LARGE,
        KimiFileLimit.EMPTY,
        KimiFileLimit.TOO_MANY,
    )
    assert "max file count" in too_many.value.message
    assert small.live_files == 2


async def test_files_over_100_mb_are_refused_without_uploading(kimi: FakeKimi, client: KimiClient):
    with pytest.raises(KimiFileLimit) as caught:
        await client.upload(bytes(MAX_FILE_BYTES + 1), "huge.txt")
    assert caught.value.kind == KimiFileLimit.TOO_LARGE
    assert kimi.requests == []


async def test_unknown_file_and_invalid_purpose(kimi: FakeKimi, client: KimiClient):
    with pytest.raises(KimiNotFound):
        await client.delete_file("cl-does-not-exist")
    with pytest.raises(KimiNotFound):
        await client.file_content("cl/../../models")
    with pytest.raises(KimiInvalidRequest, match="Invalid purpose"):
        await client.upload(b"x", "a.txt", purpose="fine-tune")


@pytest.mark.parametrize(
    ("filename", "arrives_as"),
    [
        ("季度报告.txt", "季度报告.txt"),
        ('say "hi".txt', 'say "hi".txt'),
        ("two\r\nlines.txt", "two__lines.txt"),
    ],
)
async def test_filenames_arrive_intact_and_safe(
    kimi: FakeKimi, client: KimiClient, filename: str, arrives_as: str
):
    stored = await client.upload("内容".encode(), filename)
    assert stored.filename == arrives_as
    assert await client.file_content(stored.id) == "内容"
