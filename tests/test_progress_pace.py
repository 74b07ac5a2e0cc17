"""Progress updates are shared by all streaming answers: fewer per chat in a burst, none skipped
at the end."""

from __future__ import annotations

import pytest

from handlers.progress_pace import ProgressPace
from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram


def test_each_answer_keeps_its_own_pace_while_few_stream():
    pace = ProgressPace(updates_per_second=50)
    with pace.stream(), pace.stream():
        assert pace.streaming == 2
        assert pace.interval(1.0) == 1.0
        assert pace.interval(3.0) == 3.0


def test_a_burst_shares_the_updates_per_second():
    pace = ProgressPace(updates_per_second=50)
    streams = [pace.stream() for _ in range(200)]
    for stream in streams:
        stream.__enter__()
    assert pace.interval(1.0) == 4.0  # 200 answers, 50 updates a second: each every 4 s
    for stream in streams[:150]:
        stream.__exit__(None, None, None)
    assert pace.interval(1.0) == 1.0  # back to its own pace once the burst is over
    for stream in streams[150:]:
        stream.__exit__(None, None, None)
    assert pace.streaming == 0


def test_a_failing_stream_is_no_longer_counted():
    pace = ProgressPace()
    with pytest.raises(RuntimeError), pace.stream():
        raise RuntimeError("the answer failed")
    assert pace.streaming == 0


def test_the_rate_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        ProgressPace(updates_per_second=0)


async def test_a_slow_pace_sends_fewer_drafts_and_the_whole_final(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    # One update every 30 s for the only stream: the answer (~2 s) shows once, then in full.
    await start_bot(progress_updates_per_second=1 / 30)
    alice = tg.user()
    text = "Paced words arrive one by one. " * 20
    fake_kimi.script(Reply(content=text, chunk_tokens=2, delay=0.03))
    await tg.send_text(alice, "Tell me something")
    final = await tg.wait_for_message(alice.id, lambda m: "one by one" in (m.text or ""), timeout=30)
    growing = [draft.text for draft in tg.drafts(alice.id) if draft.text]
    assert len(growing) <= 1, growing
    assert final.text == text.strip()
    tg.assert_no_flood()
