"""The bot end to end: a private chat, from /start to a streamed answer."""

from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram
from tests.harness import ON_BOTH_DATABASES


@ON_BOTH_DATABASES
async def test_start_and_a_streamed_answer(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot()
    alice = tg.user(first_name="Alice")
    await tg.send_text(alice, "/start")
    hello = await tg.wait_for_message(alice.id)
    assert "kimi-k2-0905-preview" in hello.text
    fake_kimi.script(
        Reply(content="**Bold** answer, " + "streamed slowly. " * 20, chunk_tokens=2, delay=0.03)
    )
    await tg.send_text(alice, "Hi Kimi")
    reply = await tg.wait_for_message(alice.id, lambda m: "streamed slowly" in (m.text or ""), timeout=20)
    assert reply.text.startswith("Bold answer")
    assert any(e["type"] == "bold" for e in reply.entities)
    assert len(tg.drafts(alice.id)) >= 2
    tg.assert_no_flood()
