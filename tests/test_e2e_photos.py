"""Photos (sent as photos, not files) with a text-only model are read like image documents: Kimi's
OCR gives their text (tests/test_e2e_vision.py has the vision models)."""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import (
    chat_messages,
    every_uploaded_file_is_deleted,  # noqa: F401 (autouse)
    file_requests,
    finished,
)


async def test_a_photo_with_a_question_is_read_and_answered(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot()
    fake_kimi.extractions["photo.jpg"] = "MENU: dumplings 12, noodles 18"
    fake_kimi.script(Reply(content="Noodles cost 18.", chunk_tokens=2, delay=0.01))
    amy = tg.user(first_name="Amy")
    await tg.send_photo(amy, b"\xff\xd8\xff\xe0fake-jpeg-pixels" * 50, caption="How much are the noodles?")
    reply = await tg.wait_for_message(amy.id, finished(tg, amy.id, "Noodles cost"), timeout=15)
    answer, hint = [line for line in reply.visible_text.splitlines() if line.strip()]
    assert answer == "Noodles cost 18."
    assert "kimi-k2.6" in hint  # the default model reads only the text; a vision model is named
    messages = chat_messages(fake_kimi)
    assert messages[-1] == {"role": "user", "content": "How much are the noodles?"}
    assert "dumplings 12" in messages[-2]["content"]
    assert file_requests(fake_kimi) == {"upload": 1, "content": 1, "delete": 1}
    upload = next(r for r in fake_kimi.requests if r.method == "POST" and r.path.endswith("/files"))
    assert upload.file_sizes and max(upload.file_sizes.values()) > 64  # the full size, not the thumbnail
