"""bot/documents.py on its own: the early checks, the cut into parts, the reader's cache and its
guaranteed delete of the remote file, and the cost plan (against the fake Kimi and a real store)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bot.budget import BudgetKeeper
from bot.context_window import estimate_text_tokens
from bot.documents import (
    PART_SUMMARY_TOKENS,
    TELEGRAM_DOWNLOAD_LIMIT,
    Document,
    DocumentReader,
    DocumentRejected,
    DocumentSummaries,
    check_document,
    combining_levels,
    split_text,
)
from bot.kimi import KimiClient, KimiConfig, KimiConnectionError, KimiServerError
from bot.pricing import load_price_table
from bot.settings import Settings
from storage import Store
from tests.conftest import KIMI_KEY
from tests.fakes.kimi import FakeError, FakeKimi

PRICES = load_price_table()

# --- check_document ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mime", "size"),
    [
        ("report.pdf", "application/pdf", 1000),
        ("Report.PDF", None, 1000),
        ("notes.docx", None, 10),
        ("sheet.xlsx", None, 10),
        ("slides.pptx", None, 10),
        ("book.epub", None, 10),
        ("main.rs", None, 10),
        ("scan.jpeg", "image/jpeg", 10),
        ("no-extension", "text/plain", 10),
        ("data", "application/json", 10),
        ("unknown.size.txt", None, None),  # Telegram does not always say
        ("exactly.txt", None, TELEGRAM_DOWNLOAD_LIMIT),
    ],
)
def test_readable_documents_pass(name, mime, size):
    check_document(name, mime, size)


@pytest.mark.parametrize(
    ("name", "mime", "size", "reason"),
    [
        ("big.pdf", "application/pdf", TELEGRAM_DOWNLOAD_LIMIT + 1, "too_big"),
        ("big.exe", None, TELEGRAM_DOWNLOAD_LIMIT + 1, "too_big"),  # the size is said first
        ("empty.txt", "text/plain", 0, "empty"),
        ("setup.EXE", None, 10, "unsupported"),
        ("archive.tar.gz", None, 10, "unsupported"),
        ("song.mp3", None, 10, "unsupported"),
        ("movie.mkv", None, 10, "unsupported"),
        ("renamed.txt", "video/mp4", 10, "unsupported"),  # the MIME type gives it away
        ("voice", "audio/ogg", 10, "unsupported"),
        ("mystery", "application/octet-stream", 10, "unsupported"),
        (None, None, 10, "unsupported"),
    ],
)
def test_unreadable_documents_are_refused_with_a_reason(name, mime, size, reason):
    with pytest.raises(DocumentRejected) as refused:
        check_document(name, mime, size)
    assert refused.value.reason == reason


# --- split_text ----------------------------------------------------------------------------------


def test_split_text_keeps_every_character_in_order_within_the_limit():
    text = "".join(f"Line {n}: otters and rivers, {'x' * (n % 50)}\n" for n in range(500))
    parts = split_text(text, 300)
    assert len(parts) > 1
    assert "".join(parts) == text
    assert all(estimate_text_tokens(part) <= 300 for part in parts)
    assert all(part.endswith("\n") for part in parts)  # cut at line ends, not mid-line


def test_split_text_cuts_one_enormous_line_hard():
    text = "長" * 1000 + "\nend\n"
    parts = split_text(text, 300)
    assert "".join(parts) == text
    assert all(estimate_text_tokens(part) <= 300 for part in parts)
    assert len(parts) >= 4


def test_split_text_of_a_short_text_is_one_part():
    assert split_text("Otters.\n", 300) == ["Otters.\n"]


# --- DocumentReader ------------------------------------------------------------------------------


@pytest.fixture
async def client(fake_kimi: FakeKimi) -> AsyncIterator[KimiClient]:
    config = KimiConfig(
        api_key=KIMI_KEY, base_url=fake_kimi.base_url, retry_base_delay=0.01, retry_max_delay=0.02
    )
    async with KimiClient(config) as kimi_client:
        yield kimi_client


def _downloads(data: bytes, counter: list[int]):
    async def download() -> bytes:
        counter.append(1)
        return data

    return download


async def test_reader_extracts_deletes_and_then_serves_from_the_cache(
    store: Store, client: KimiClient, fake_kimi: FakeKimi
):
    reader = DocumentReader(store, client)
    downloads: list[int] = []

    first = await reader.read("AgAD1", "notes.txt", _downloads(b"Otters hold hands.\n", downloads))
    again = await reader.read("AgAD1", "renamed.txt", _downloads(b"ignored", downloads))

    assert first.text == again.text == "Otters hold hands.\n"
    assert again.filename == "renamed.txt"  # the name is the message's, the text the cache's
    assert len(downloads) == 1
    assert sum(1 for r in fake_kimi.requests if r.method == "POST" and r.path == "/v1/files") == 1
    assert fake_kimi.live_files == 0
    saved = await store.get_extraction("AgAD1")
    assert saved is not None and saved.content == first.text


async def test_reader_deletes_the_file_when_reading_its_text_fails(
    store: Store, client: KimiClient, fake_kimi: FakeKimi, monkeypatch
):
    async def broken(file_id: str) -> str:
        assert fake_kimi.live_files == 1  # uploaded, so there is something to clean up
        raise KimiServerError("content unavailable")

    monkeypatch.setattr(client, "file_content", broken)
    reader = DocumentReader(store, client)

    with pytest.raises(KimiServerError):
        await reader.read("AgAD2", "notes.txt", _downloads(b"Otters.\n", []))

    assert fake_kimi.live_files == 0
    assert await store.cached_extraction("AgAD2") is None  # a failure is not cached


async def test_reader_deletes_the_file_when_the_read_is_cancelled(
    store: Store, client: KimiClient, fake_kimi: FakeKimi, monkeypatch
):
    reading = asyncio.Event()

    async def slow(file_id: str) -> str:
        reading.set()
        await asyncio.sleep(60)
        return ""

    monkeypatch.setattr(client, "file_content", slow)
    reader = DocumentReader(store, client)
    task = asyncio.create_task(reader.read("AgAD3", "notes.txt", _downloads(b"Otters.\n", [])))
    await asyncio.wait_for(reading.wait(), 5)
    assert fake_kimi.live_files == 1

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake_kimi.live_files == 0


async def test_reader_keeps_trying_to_delete_after_a_failed_delete(
    store: Store, client: KimiClient, fake_kimi: FakeKimi, monkeypatch
):
    # The Kimi transport's retries do it (a 5xx is retryable): the reader has no loop of its own.
    real_upload = client.upload
    uploaded_ids: list[str] = []

    async def upload_then_fail_its_first_delete(data: bytes, filename: str, purpose: str = "file-extract"):
        uploaded = await real_upload(data, filename, purpose)
        uploaded_ids.append(uploaded.id)
        fake_kimi.script_errors(f"/files/{uploaded.id}", FakeError.server_error())
        return uploaded

    monkeypatch.setattr(client, "upload", upload_then_fail_its_first_delete)
    reader = DocumentReader(store, client)
    document = await reader.read("AgAD4", "notes.txt", _downloads(b"Otters.\n", []))

    assert document.text == "Otters.\n"
    deletes = [r for r in fake_kimi.requests if r.method == "DELETE"]
    assert [(r.path, r.status) for r in deletes] == [(f"/v1/files/{uploaded_ids[0]}", 500)] + [
        (f"/v1/files/{uploaded_ids[0]}", 200)
    ]
    assert fake_kimi.live_files == 0


async def test_reader_deletes_a_file_stored_by_an_upload_whose_answer_was_lost(
    store: Store, client: KimiClient, fake_kimi: FakeKimi, monkeypatch
):
    unrelated = await client.upload(b"Beavers.\n", "other.txt")  # another read in progress
    real_upload = client.upload

    async def answer_lost(data: bytes, filename: str, purpose: str = "file-extract"):
        await real_upload(data, filename, purpose)  # stored on Kimi...
        raise KimiConnectionError("connection reset by peer")  # ...but we never learn its id

    monkeypatch.setattr(client, "upload", answer_lost)
    reader = DocumentReader(store, client)

    with pytest.raises(KimiConnectionError):
        await reader.read("AgAD8", "notes.txt", _downloads(b"Otters.\n", []))

    assert list(fake_kimi.files) == [unrelated.id]
    await client.delete_file(unrelated.id)


async def test_reader_deletes_a_file_whose_upload_was_cancelled(
    store: Store, client: KimiClient, fake_kimi: FakeKimi, monkeypatch
):
    real_upload = client.upload
    stored = asyncio.Event()

    async def slow_answer(data: bytes, filename: str, purpose: str = "file-extract"):
        await real_upload(data, filename, purpose)
        stored.set()
        await asyncio.sleep(60)  # the answer is slow to come back; the bot shuts down meanwhile

    monkeypatch.setattr(client, "upload", slow_answer)
    reader = DocumentReader(store, client)
    task = asyncio.create_task(reader.read("AgAD9", "notes.txt", _downloads(b"Otters.\n", [])))
    await asyncio.wait_for(stored.wait(), 5)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake_kimi.live_files == 0


async def test_reader_refuses_an_empty_download_without_uploading(
    store: Store, client: KimiClient, fake_kimi: FakeKimi
):
    reader = DocumentReader(store, client)
    with pytest.raises(DocumentRejected) as refused:
        await reader.read("AgAD5", "empty.txt", _downloads(b"", []))
    assert refused.value.reason == "empty"
    assert fake_kimi.requests == []


async def test_reader_reports_the_account_file_limit(store: Store, client: KimiClient, fake_kimi: FakeKimi):
    from bot.kimi import KimiFileLimit

    fake_kimi.max_files = 0
    reader = DocumentReader(store, client)
    with pytest.raises(KimiFileLimit) as limited:
        await reader.read("AgAD6", "notes.txt", _downloads(b"Otters.\n", []))
    assert limited.value.kind == KimiFileLimit.TOO_MANY
    assert fake_kimi.live_files == 0


# --- DocumentSummaries.plan ----------------------------------------------------------------------


def _settings(fake_kimi: FakeKimi, **overrides) -> Settings:
    values = dict(
        telegram_bot_token="1:TEST",
        moonshot_api_key=KIMI_KEY,
        moonshot_base_url=fake_kimi.base_url,
        default_budget=Decimal(1000),
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


async def _plan(store: Store, client: KimiClient, fake_kimi: FakeKimi, text: str, model: str, **overrides):
    settings = _settings(fake_kimi, **overrides)
    budgets = BudgetKeeper(store, settings)
    summaries = DocumentSummaries(store, client, PRICES, settings, budgets)
    user = await store.get_or_create_user(7, "en")
    plan = await summaries.plan(user, PRICES.get(model), Document("AgAD7", "doc.txt", text))
    return summaries, plan


async def test_a_document_that_fits_is_one_part_with_its_worst_case_cost(
    store: Store, client: KimiClient, fake_kimi: FakeKimi
):
    summaries, plan = await _plan(store, client, fake_kimi, "Otters.\n" * 100, "kimi-k2-0905-preview")

    assert plan.parts == ["Otters.\n" * 100] and not plan.split
    assert plan.document_tokens > 100  # Kimi's own count of the document message
    assert 0 < plan.minimum_micro < plan.estimate_micro
    assert plan.affordable and plan.startable
    assert not summaries.needs_confirmation(plan)  # about 12 元点, under the default 20


async def test_a_document_over_the_context_is_split_and_priced_for_every_part(
    store: Store, client: KimiClient, fake_kimi: FakeKimi
):
    text = "".join(f"Paragraph {n}: otters of river {n} eat fish.\n" for n in range(3000))
    summaries, plan = await _plan(store, client, fake_kimi, text, "moonshot-v1-8k")

    assert plan.split and "".join(plan.parts) == text
    price = PRICES.get("moonshot-v1-8k")
    assert all(estimate_text_tokens(part) < price.context_length for part in plan.parts)
    one_part_cost = price.cost_micro(estimate_text_tokens(plan.parts[0]), 0)
    assert plan.estimate_micro > len(plan.parts) * one_part_cost * 0.9
    assert summaries.needs_confirmation(plan)


async def test_confirmation_follows_the_threshold_and_the_budget(
    store: Store, client: KimiClient, fake_kimi: FakeKimi
):
    text = "Otters.\n" * 100
    summaries, plan = await _plan(
        store, client, fake_kimi, text, "kimi-k2-0905-preview", document_confirm_threshold=1
    )
    assert summaries.needs_confirmation(plan) and plan.affordable

    summaries, plan = await _plan(store, client, fake_kimi, text, "kimi-k2-0905-preview", default_budget=5)
    assert summaries.needs_confirmation(plan) and not plan.affordable and plan.startable

    summaries, plan = await _plan(
        store, client, fake_kimi, text, "kimi-k2-0905-preview", default_budget="0.01"
    )
    assert not plan.startable


async def test_the_local_estimate_stands_in_when_kimi_cannot_count(
    store: Store, client: KimiClient, fake_kimi: FakeKimi
):
    fake_kimi.script_errors("/tokenizers/estimate-token-count", *[FakeError.server_error()] * 10)
    _, plan = await _plan(store, client, fake_kimi, "Otters.\n" * 100, "kimi-k2-0905-preview")
    assert plan.document_tokens >= estimate_text_tokens("Otters.\n" * 100)


def test_combining_levels_shrink_the_summaries_until_they_fit():
    assert combining_levels(5, 5, 4) == []
    assert combining_levels(6, 5, 4) == [2]
    assert combining_levels(100, 5, 4) == [25, 7, 2]
    assert combining_levels(3, 1, 2) == [2, 1]


async def test_a_planned_map_reduce_never_asks_more_than_the_context_holds(
    store: Store, client: KimiClient, fake_kimi: FakeKimi
):
    text = "".join(f"Paragraph {n}: otters of river {n} eat fish.\n" for n in range(20000))
    _, plan = await _plan(store, client, fake_kimi, text, "moonshot-v1-8k")

    context = PRICES.get("moonshot-v1-8k").context_length
    slot = PART_SUMMARY_TOKENS + 16
    assert plan.combine_levels and plan.combine_levels[-1] <= plan.reduce_capacity
    # A combining call (its summaries and its answer) and the final answer's input both fit.
    assert plan.combine_batch * slot + PART_SUMMARY_TOKENS < context
    assert plan.reduce_capacity * slot + 2048 < context
    assert plan.steps == len(plan.parts) + sum(plan.combine_levels)
