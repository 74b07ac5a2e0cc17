"""Documents the bot cannot read get a clear reply, and cost nothing: no chat call, no ledger row,
no remote file left behind (and, when the problem is known up front, no download or upload)."""

from __future__ import annotations

import pytest

from tests.fakes.kimi import ExtractionFailure, FakeKimi
from tests.fakes.telegram import FakeTelegram
from tests.harness import RunningBot
from tests.test_e2e_documents_helpers import (
    every_uploaded_file_is_deleted,  # noqa: F401 (autouse)
    file_requests,
    nothing_charged,
)

MB = 1024 * 1024


async def _refusal(tg: FakeTelegram, fake_kimi: FakeKimi, bot: RunningBot, user_id: int) -> str:
    reply = await tg.wait_for_message(user_id)
    await bot.caught_up()
    assert [m.visible_text for m in tg.messages(user_id)] == [reply.visible_text], "one reply, no summary"
    assert fake_kimi.chat_requests == []
    assert nothing_charged(bot, user_id)
    assert fake_kimi.live_files == 0
    return reply.visible_text


async def test_a_file_over_20_mb_is_refused_before_downloading(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    alice = tg.user()
    await tg.send_document(alice, b"%PDF-1.4 big", "big.pdf", mime_type="application/pdf", file_size=25 * MB)

    text = await _refusal(tg, fake_kimi, bot, alice.id)

    assert "larger than 20 MB" in text
    assert tg.calls("getFile") == []
    assert file_requests(fake_kimi)["upload"] == 0


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("setup.exe", "application/x-msdownload"),
        ("photos.zip", "application/zip"),
        ("song.mp3", "audio/mpeg"),
        ("clip.mp4", "video/mp4"),
        ("voice-note", "audio/ogg"),  # no extension: the MIME type decides
    ],
)
async def test_types_kimi_cannot_extract_are_refused_without_upload(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, name, mime
):
    bot = await start_bot()
    alice = tg.user()
    await tg.send_document(alice, b"MZ\x90\x00 binary", name, mime_type=mime)

    text = await _refusal(tg, fake_kimi, bot, alice.id)

    assert text.startswith("I can't read this kind of file.")
    assert tg.calls("getFile") == []
    assert file_requests(fake_kimi)["upload"] == 0


async def test_an_empty_file_is_refused(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()
    alice = tg.user(language_code="zh-hans")
    await tg.send_document(alice, b"", "empty.txt", mime_type="text/plain")

    assert await _refusal(tg, fake_kimi, bot, alice.id) == "这个文件是空的。"
    assert file_requests(fake_kimi)["upload"] == 0


@pytest.mark.parametrize("style", ["http", "status"])
async def test_an_extraction_failure_is_explained_and_leaves_no_file(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, style
):
    # Moonshot reports a failed extraction as a 500, or (per the FileObject doc) as status "error"
    # on a file that then exists and must be deleted.
    fake_kimi.extraction_failure_style = style
    fake_kimi.extractions["broken.pdf"] = ExtractionFailure("corrupt xref table")
    bot = await start_bot()
    alice = tg.user()
    await tg.send_document(alice, b"%PDF-1.4 broken", "broken.pdf", mime_type="application/pdf")

    text = await _refusal(tg, fake_kimi, bot, alice.id)

    assert text == "Could not extract text from this file. Please try another format."
    assert file_requests(fake_kimi)["upload"] == 1


async def test_an_image_without_text_is_explained(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()
    alice = tg.user()
    await tg.send_document(alice, b"\x89PNG\r\n\x1a\nblank", "blank.png", mime_type="image/png")

    text = await _refusal(tg, fake_kimi, bot, alice.id)

    refusal, hint = text.splitlines()
    assert refusal == "Could not extract text from this file. Please try another format."
    assert "kimi-k2.6" in hint  # a model that could see the picture itself


async def test_a_file_with_only_whitespace_text_is_explained(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    fake_kimi.extractions["spaces.txt"] = " \n\t \n"
    bot = await start_bot()
    alice = tg.user()
    await tg.send_document(alice, b" \n\t \n", "spaces.txt", mime_type="text/plain")

    assert await _refusal(tg, fake_kimi, bot, alice.id) == "I found no text in this file."
    assert file_requests(fake_kimi) == {"upload": 1, "content": 1, "delete": 1}


async def test_a_kimi_account_at_its_file_limit_is_explained(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    fake_kimi.max_files = 0
    bot = await start_bot()
    alice = tg.user()
    await tg.send_document(alice, b"Otters.\n", "plain.txt", mime_type="text/plain")

    text = await _refusal(tg, fake_kimi, bot, alice.id)

    assert text == "The file storage is full. Please try later or tell the bot's admin."


async def test_a_failed_download_from_telegram_is_explained(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot()
    alice = tg.user()
    tg.fail_next("getFile", "Bad Request: wrong file_id or the file is temporarily unavailable", status=400)
    await tg.send_document(alice, b"Otters.\n", "plain.txt", mime_type="text/plain")

    text = await _refusal(tg, fake_kimi, bot, alice.id)

    assert text == "I couldn't download this file from Telegram. Please try again."
    assert file_requests(fake_kimi)["upload"] == 0
