"""When Kimi's slots (the account's concurrency) are all taken, a waiting user is told so."""

from __future__ import annotations

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram


async def test_a_user_waiting_for_kimi_sees_a_queued_notice_in_their_language(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(kimi_max_concurrency=1)
    first, second = tg.user(first_name="Ann"), tg.user(first_name="Li", language_code="zh-hans")
    fake_kimi.script(
        Reply(content="first answer " * 20, chunk_tokens=2, delay=0.1), Reply(content="second answer")
    )
    await tg.send_text(first, "hello")
    await tg.wait_until(lambda: fake_kimi.chat_requests, timeout=10)  # the one slot is taken
    await tg.send_text(second, "你好")

    await tg.wait_for_message(second.id, lambda m: m.visible_text == "second answer", timeout=30)
    notices = [d.text for d in tg.drafts(second.id) if "排队" in d.text]
    assert notices and "秒" in notices[0], [d.text for d in tg.drafts(second.id)]
    assert not any("排队" in d.text or "queue" in d.text for d in tg.drafts(first.id))
    assert tg.messages(second.id)[-1].visible_text == "second answer"  # the notice was never a message
