"""Documents in a private chat, end to end: every kind of file is read with Kimi's file-extract,
the remote copy is deleted, and a streamed summary (or the caption's answer) follows."""

from __future__ import annotations

import json

import pytest

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import (
    chat_messages,
    every_uploaded_file_is_deleted,  # noqa: F401 (autouse)
    file_requests,
    finished,
    ledger,
    make_docx,
    make_pdf,
    stored_messages,
    uploads,
)

SUMMARY = "The document is about **otters** and their habits. " * 3

CASES = [
    pytest.param(
        "report.pdf",
        "application/pdf",
        lambda: make_pdf("Otters hold hands", "while sleeping"),
        "Otters hold hands",
        id="pdf",
    ),
    pytest.param(
        "notes.docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        lambda: make_docx("Otters use stones", "as tools"),
        "Otters use stones",
        id="docx",
    ),
    pytest.param(
        "plain.txt", "text/plain", lambda: b"Otters live in rivers.\n", "Otters live in rivers", id="txt"
    ),
    pytest.param(
        "readme.md",
        "text/markdown",
        lambda: b"# Otters\n\n*Playful* animals.\n",
        "*Playful* animals",
        id="md",
    ),
    pytest.param("counts.csv", "text/csv", lambda: b"river,otters\nThames,12\n", "Thames,12", id="csv"),
    pytest.param(
        "otter.py",
        "text/x-python",
        lambda: b"def otter():\n    return 'splash'\n",
        "return 'splash'",
        id="code",
    ),
    pytest.param(
        "data.json", "application/json", lambda: json.dumps({"otters": 3}).encode(), '"otters": 3', id="json"
    ),
    pytest.param(
        "page.html",
        "text/html",
        lambda: b"<html><body><p>Otter page</p></body></html>",
        "Otter page",
        id="html",
    ),
    # An image: the fake runs no OCR, so its "seen" text is set like Kimi's OCR would return it.
    pytest.param(
        "scan.png", "image/png", lambda: b"\x89PNG\r\n\x1a\nfake-pixels", "OCR: otters on a sign", id="image"
    ),
]


@pytest.mark.parametrize(("name", "mime", "make", "expected_text"), CASES)
async def test_each_document_type_is_read_deleted_and_summarised(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi, name, mime, make, expected_text
):
    bot = await start_bot()
    fake_kimi.extractions["scan.png"] = "OCR: otters on a sign"
    fake_kimi.script(Reply(content=SUMMARY, chunk_tokens=3, delay=0.01))
    alice = tg.user(first_name="Alice")

    await tg.send_document(alice, make(), name, mime_type=mime)
    reply = await tg.wait_for_message(alice.id, finished(tg, alice.id, "otters"), timeout=15)

    assert reply.visible_text.startswith("The document is about otters")
    assert any(e["type"] == "bold" for e in reply.entities)
    # Read with file-extract, its text fetched, and the remote copy deleted.
    assert [u["purpose"] for u in uploads(fake_kimi)] == ["file-extract"]
    assert file_requests(fake_kimi) == {"upload": 1, "content": 1, "delete": 1}
    assert fake_kimi.live_files == 0
    # Kimi saw the text as a system message, and was asked for a summary.
    messages = chat_messages(fake_kimi)
    systems = [m["content"] for m in messages if m["role"] == "system"]
    assert any(expected_text in content and name in content for content in systems)
    assert messages[-1]["role"] == "user" and "Summarise" in messages[-1]["content"]
    # Charged as a document call.
    assert [row["purpose"] for row in ledger(bot, alice.id)] == ["document"]
    tg.assert_no_flood()


async def test_the_caption_question_is_answered_with_the_document_as_context(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot()
    fake_kimi.script(Reply(content="Twelve otters live in the Thames.", chunk_tokens=2, delay=0.01))
    alice = tg.user()

    await tg.send_document(
        alice, b"river,otters\nThames,12\nSevern,4\n", "counts.csv", caption="How many otters in the Thames?"
    )
    reply = await tg.wait_for_message(alice.id, finished(tg, alice.id, "Twelve otters"), timeout=15)

    assert reply.visible_text == "Twelve otters live in the Thames."
    messages = chat_messages(fake_kimi)
    assert messages[-1] == {"role": "user", "content": "How many otters in the Thames?"}
    document = messages[-2]
    assert document["role"] == "system" and "Thames,12" in document["content"]
    assert not any("Summarise" in m["content"] for m in messages)
    assert fake_kimi.live_files == 0
    # The document, the question and the answer are kept in the conversation, in that order.
    kept = [(m["role"], m["kind"]) for m in stored_messages(bot)]
    assert kept == [("system", "document"), ("user", "text"), ("assistant", "text")]


async def test_summary_as_the_caption_asks_for_the_default_summary(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()
    fake_kimi.script(Reply(content="Otters, in short.", chunk_tokens=2))
    alice = tg.user()
    await tg.send_document(alice, b"Otters eat fish.\n", "plain.txt", caption="/summary")
    await tg.wait_for_message(alice.id, finished(tg, alice.id, "Otters, in short."), timeout=15)
    assert chat_messages(fake_kimi)[-1]["content"].startswith("Summarise this document")


async def test_a_follow_up_question_still_sends_the_document(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()
    fake_kimi.script(
        Reply(content="A report on otters.", chunk_tokens=2),
        Reply(content="They hold hands while sleeping.", chunk_tokens=2),
    )
    alice = tg.user()
    await tg.send_document(alice, make_pdf("Otters hold hands", "while sleeping"), "report.pdf")
    await tg.wait_for_message(alice.id, finished(tg, alice.id, "A report on otters"), timeout=15)

    await tg.send_text(alice, "What do they do at night?")
    await tg.wait_for_message(alice.id, finished(tg, alice.id, "hold hands"), timeout=15)

    follow_up = chat_messages(fake_kimi)
    assert follow_up[-1] == {"role": "user", "content": "What do they do at night?"}
    assert any(m["role"] == "system" and "Otters hold hands" in m["content"] for m in follow_up)
    assert {"role": "assistant", "content": "A report on otters."} in follow_up
    # The follow-up is a plain chat turn: nothing was uploaded again.
    assert file_requests(fake_kimi)["upload"] == 1
    assert fake_kimi.live_files == 0


async def test_the_same_file_again_or_in_another_chat_is_read_from_the_cache(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()
    fake_kimi.script(*(Reply(content=f"Summary {n}.", chunk_tokens=2) for n in range(3)))
    alice, bob = tg.user(first_name="Alice"), tg.user(first_name="Bob")
    first = await tg.send_document(alice, make_docx("Otters use stones as tools"), "notes.docx")
    await tg.wait_for_message(alice.id, finished(tg, alice.id, "Summary 0"), timeout=15)

    await tg.send_document(alice, b"", "notes.docx", same_file_as=first)
    await tg.wait_for_message(alice.id, finished(tg, alice.id, "Summary 1"), timeout=15)
    await tg.send_document(bob, b"", "copy of notes.docx", same_file_as=first)
    await tg.wait_for_message(bob.id, finished(tg, bob.id, "Summary 2"), timeout=15)

    assert file_requests(fake_kimi) == {"upload": 1, "content": 1, "delete": 1}
    assert len(tg.calls("getFile")) == 1  # not even downloaded again
    # Every summary still had the document's text.
    for request in fake_kimi.chat_requests:
        assert any(
            "Otters use stones" in m["content"] for m in request.json["messages"] if m["role"] == "system"
        )
    assert fake_kimi.live_files == 0


async def test_a_question_sent_right_after_the_document_waits_for_it(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # People send a file and type their question as a separate message at once: the question must
    # be answered after the document joined the conversation, not before, without it.
    await start_bot()
    fake_kimi.script(
        Reply(content="A report on otters.", chunk_tokens=2),
        Reply(content="At night they hold hands.", chunk_tokens=2),
    )
    alice = tg.user()
    await tg.send_document(alice, make_pdf("Otters hold hands", "while sleeping"), "report.pdf")
    await tg.send_text(alice, "What do they do at night?")
    await tg.wait_until(
        lambda: (
            sum(1 for m in tg.messages(alice.id) if m.visible_text.endswith(".") and not m.callback_data) >= 2
        ),
        timeout=15,
    )

    summary_request, question_request = (r.json["messages"] for r in fake_kimi.chat_requests)
    assert summary_request[-1]["content"].startswith("Summarise this document")
    assert question_request[-1] == {"role": "user", "content": "What do they do at night?"}
    assert any(m["role"] == "system" and "Otters hold hands" in m["content"] for m in question_request)
    assert [m.visible_text for m in tg.messages(alice.id)] == [
        "A report on otters.",
        "At night they hold hands.",
    ]
