"""Usage views end to end: the /cost chart, /export, the budget notices, and the admins' /report.

The ledger is filled partly by real turns against the fake Kimi and partly by Store.charge (the
same write a turn's settle does), some rows moved back in time, so that days and models differ
without waiting for days. Charts are checked by the data handed to the plot, and the PNG by its
size and format, never by its pixels.
"""

from __future__ import annotations

import asyncio
import csv
import io
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from PIL import Image

from bot.charts import HEIGHT_PX, WIDTH_PX, DailyChart
from bot.periods import current_period
from bot.settings import BudgetPeriod
from storage import NewUsage
from tests.fakes.kimi import FakeKimi, Reply
from tests.fakes.telegram import FakeTelegram, StoredMessage
from tests.harness import RunningBot

ADMIN = 4242
MODEL_A, MODEL_B = "kimi-k2-0905-preview", "moonshot-v1-8k"
SIX_POINTS = {"prompt_tokens": 200, "completion_tokens": 1000, "total_tokens": 1200}  # = 6 元点


async def charge(bot: RunningBot, user_id: int, model: str, micro: int, chat_id: int | None = None) -> None:
    usage = NewUsage(
        user_id=user_id,
        chat_id=chat_id if chat_id is not None else user_id,
        model=model,
        prompt_tokens=100,
        cached_tokens=10,
        completion_tokens=50,
        cost_micro=micro,
        purpose="chat",
        conversation_id=None,
    )
    period = current_period(bot.settings.budget_period)
    await bot.services.store.charge(user_id, period.key, micro, usage)


def backdate_last_row(bot: RunningBot, days: int) -> datetime:
    """Move the newest ledger row `days` back (SQLite keeps naive UTC text)."""
    moment = datetime.now(UTC) - timedelta(days=days)
    path = bot.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE usage_ledger SET created_at = ? WHERE id = (SELECT max(id) FROM usage_ledger)",
            (moment.replace(tzinfo=None).isoformat(sep=" "),),
        )
    return moment


def ledger_rows(bot: RunningBot) -> list[dict]:
    path = bot.settings.database_url.split("///", 1)[1]
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM usage_ledger ORDER BY id").fetchall()
    return [dict(row) | {"at": datetime.fromisoformat(row["created_at"]).replace(tzinfo=UTC)} for row in rows]


def spy_on_charts(bot: RunningBot) -> list[DailyChart]:
    """Record the data of every chart the bot renders (and still render it)."""
    seen: list[DailyChart] = []
    renderer = bot.services.charts
    original = renderer.render

    async def render(chart, labels, fallback):
        seen.append(chart)
        seen_labels.append(labels)
        return await original(chart, labels, fallback)

    seen_labels: list = []
    renderer.render = render  # type: ignore[method-assign]
    spy_on_charts.labels = seen_labels  # type: ignore[attr-defined]
    return seen


def photo_png(tg: FakeTelegram, message: StoredMessage) -> Image.Image:
    data = tg.world.files[message.photo[-1]["file_id"]].data
    image = Image.open(io.BytesIO(data))
    image.verify()
    return Image.open(io.BytesIO(data))


def points_in(text: str, label: str) -> Decimal:
    """The 元点 figure after `label` in a /cost reply, e.g. 'This period: 7.23 元点'."""
    line = next(line for line in text.splitlines() if line.startswith(label))
    return Decimal(line.split(":", 1)[1].split("元点")[0].strip())


def is_photo(message: StoredMessage) -> bool:
    return bool(message.photo)


def is_document(message: StoredMessage) -> bool:
    return message.document is not None


# --- the chart -----------------------------------------------------------------------------------


async def test_cost_chart_shows_the_ledger_per_day_and_model(start_bot, tg: FakeTelegram):
    bot = await start_bot(default_budget="100")
    li = tg.user(first_name="Li", language_code="zh-hans")
    other = tg.user(first_name="Other")
    seen = spy_on_charts(bot)
    await tg.send_text(li, "/start")
    await tg.wait_for_message(li.id)
    await charge(bot, li.id, MODEL_A, 2_500_000)
    await charge(bot, li.id, MODEL_B, 1_250_000)
    await charge(bot, li.id, MODEL_A, 4_000_000)
    three_days_ago = backdate_last_row(bot, 3)
    await charge(bot, li.id, MODEL_A, 7_000_000)
    backdate_last_row(bot, 40)  # older than the chart's 30 days
    await charge(bot, other.id, MODEL_B, 9_000_000)  # someone else's: never in Li's chart

    await tg.send_text(li, "/cost chart")
    sent = await tg.wait_for_message(li.id, is_photo, timeout=30)

    image = photo_png(tg, sent)
    assert image.format == "PNG" and image.size == (WIDTH_PX, HEIGHT_PX) and WIDTH_PX >= 800
    chart = seen[-1]
    today = datetime.now(UTC).date()
    assert len(chart.days) == 30 and chart.days[-1] == today and chart.days[0] == today - timedelta(days=29)
    mine = [row for row in ledger_rows(bot) if row["user_id"] == li.id]
    window = [row for row in mine if row["at"].date() >= chart.days[0]]
    assert chart.total_micro == sum(row["cost_micro"] for row in window) == 7_750_000
    by_model = {series.model: series.costs_micro for series in chart.series}
    assert by_model[MODEL_A][-1] == 2_500_000 and by_model[MODEL_B][-1] == 1_250_000
    assert by_model[MODEL_A][chart.days.index(three_days_ago.date())] == 4_000_000
    assert [series.model for series in chart.series] == [MODEL_A, MODEL_B]  # most spent first
    assert chart.budget_micro == 100_000_000
    period_start = current_period(BudgetPeriod.MONTHLY).starts_at
    assert chart.period_spent_micro[-1] == sum(row["cost_micro"] for row in mine if row["at"] >= period_start)
    assert "天" in spy_on_charts.labels[-1].title  # the user's language
    assert "7.75 元点" in sent.caption

    # The button under /cost sends the presser's own chart.
    await tg.send_text(li, "/cost")
    cost = await tg.wait_for_message(li.id, lambda m: "cost:chart" in m.callback_data)
    await tg.press_button(li, cost, "cost:chart")
    await tg.wait_until(lambda: len([m for m in tg.messages(li.id) if m.photo]) == 2, timeout=30)
    assert seen[-1] == chart


# --- /export -------------------------------------------------------------------------------------


async def test_export_is_a_csv_of_the_callers_calls_summing_to_cost(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot(default_budget="100")
    ben = tg.user(first_name="Ben")
    other = tg.user(first_name="Other")
    fake_kimi.script(Reply(content="hello back", usage=SIX_POINTS))
    await tg.send_text(ben, "hello")
    await tg.wait_for_message(ben.id, lambda m: m.text == "hello back" and not m.callback_data, timeout=15)
    await charge(bot, ben.id, MODEL_B, 1_234_567)
    await charge(bot, other.id, MODEL_B, 5_000_000)

    await tg.send_text(ben, "/cost")
    cost = (await tg.wait_for_message(ben.id, lambda m: "All time" in m.visible_text)).visible_text
    await tg.send_text(ben, "/export")
    sent = await tg.wait_for_message(ben.id, is_document)

    assert sent.document["file_name"].endswith(".csv") and "7.23" in sent.caption
    rows = list(csv.DictReader(io.StringIO(tg.world.files[sent.document["file_id"]].data.decode())))
    assert [row["model"] for row in rows] == [MODEL_A, MODEL_B]
    assert {row["user_id"] for row in rows} == {str(ben.id)}
    first = rows[0]
    assert first["purpose"] == "chat" and first["chat_id"] == str(ben.id)
    assert (first["prompt_tokens"], first["cached_tokens"], first["completion_tokens"]) == (
        "200",
        "0",
        "1000",
    )
    assert datetime.fromisoformat(first["timestamp"]).tzinfo is not None
    total = sum(Decimal(row["cost_yuandian"]) for row in rows)
    assert total == Decimal("7.234567")  # exact, from micro-元点
    assert total.quantize(Decimal("0.01")) == points_in(cost, "This period") == points_in(cost, "All time")

    # Everyone's ledger is for admins only: nothing is sent.
    await tg.send_text(ben, "/export all month")
    refusal = await tg.wait_for_message(ben.id)
    assert "admins" in refusal.text
    await tg.send_text(ben, "/export fortnight")
    assert "/export" in (await tg.wait_for_message(ben.id)).text
    assert len([m for m in tg.messages(ben.id) if m.document]) == 1


# --- budget notices ------------------------------------------------------------------------------


async def test_budget_notices_come_once_in_the_reply_footer(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    # The 1 元点 left after the first answer must still start short answers (MIN_OUTPUT_TOKENS).
    bot = await start_bot(default_budget="7", min_output_tokens=32)
    cai = tg.user(first_name="Cai")
    fake_kimi.script(
        Reply(content="first", usage=SIX_POINTS),
        Reply(content="second", usage={"prompt_tokens": 70, "completion_tokens": 35, "total_tokens": 105}),
        Reply(content="third", usage={"prompt_tokens": 70, "completion_tokens": 35, "total_tokens": 105}),
    )
    await tg.send_text(cai, "one")
    first = await tg.wait_for_message(cai.id, lambda m: "first" in m.text and not m.callback_data, timeout=15)
    assert "used 85% of your budget" in first.text and "6.00 of 7.00" in first.text

    await tg.send_text(cai, "two")
    second = await tg.wait_for_message(
        cai.id, lambda m: "second" in m.text and not m.callback_data, timeout=15
    )
    assert "budget" not in second.text  # once per period

    # A new period begins for someone warned in an earlier one (moved back instead of waiting).
    assert await bot.services.store.claim_budget_warning(cai.id, "2000-01")
    await bot.services.store.set_budget_override(cai.id, 100_000_000)
    await tg.send_text(cai, "three")
    third = await tg.wait_for_message(cai.id, lambda m: "third" in m.text and not m.callback_data, timeout=15)
    assert "new budget period" in third.text and "100.00" in third.text and "85%" not in third.text


# --- admins: /report, /export all, and what non-admins get -----------------------------------------


async def test_report_totals_match_the_ledger_and_stay_with_admins(start_bot, tg: FakeTelegram):
    bot = await start_bot(admin_user_ids=str(ADMIN), default_budget="50")
    admin = tg.user(id=ADMIN, first_name="Admin")
    amy = tg.user(first_name="Amy", username="amy")
    bob = tg.user(first_name="Bob")
    group = tg.group()
    seen = spy_on_charts(bot)
    for user in (amy, bob):
        await tg.send_text(user, "/start")
        await tg.wait_for_message(user.id)
    await charge(bot, amy.id, MODEL_A, 10_000_000)
    await charge(bot, amy.id, MODEL_B, 2_500_000, chat_id=group.id)
    await charge(bot, bob.id, MODEL_A, 1_000_000, chat_id=group.id)

    await tg.send_text(bob, "/report")
    assert (await tg.wait_for_message(bob.id)).text == "This command is for admins."
    await tg.send_text(admin, "/report all", chat=group)
    assert "private chat" in (await tg.wait_for_message(group.id)).text

    await tg.send_text(admin, "/report all")
    report = (await tg.wait_for_message(admin.id, lambda m: "Report" in m.visible_text)).visible_text
    rows = ledger_rows(bot)
    total = sum(row["cost_micro"] for row in rows)
    tokens = sum(row["prompt_tokens"] + row["completion_tokens"] for row in rows)
    assert f"Total: {len(rows)} calls, {tokens} tokens, {Decimal(total) / 10**6:.2f} 元点" in report
    assert f"{MODEL_A}: 2 · 200 / 20 / 100 · 11.00" in report
    assert f"1. @amy ({amy.id}): 12.50 元点 · 12.50 of 50.00 (25%)" in report
    assert f"2. {bob.id}: 1.00 元点" in report
    assert f"{group.id}: 2 calls, 300 tokens, 3.50 元点" in report
    photo = await tg.wait_for_message(admin.id, is_photo, timeout=30)
    assert photo_png(tg, photo).size == (WIDTH_PX, HEIGHT_PX)
    assert seen[-1].total_micro == total and seen[-1].budget_micro is None
    assert "13.50" in photo.caption

    await tg.send_text(admin, "/export all all")
    sent = await tg.wait_for_message(admin.id, is_document)
    exported = list(csv.DictReader(io.StringIO(tg.world.files[sent.document["file_id"]].data.decode())))
    assert sum(Decimal(row["cost_yuandian"]) for row in exported) == Decimal(total) / 10**6
    assert {row["user_id"] for row in exported} == {str(amy.id), str(bob.id)}
    # Only admins ever saw a photo or a file.
    for user in (amy, bob):
        assert not [m for m in tg.messages(user.id) if m.photo or m.document]
    assert not [m for m in tg.messages(group.id) if m.photo or m.document]


async def test_admin_balance_shows_kimis_account_only_in_private(start_bot, tg: FakeTelegram):
    await start_bot(admin_user_ids=str(ADMIN))
    admin = tg.user(id=ADMIN, first_name="Admin")
    group = tg.group()
    await tg.send_text(admin, "/balance", chat=group)
    in_group = await tg.wait_for_message(group.id)
    assert "Budget" in in_group.text and "Kimi account balance: 50" not in in_group.text
    assert "private chat" in in_group.text
    await tg.send_text(admin, "/balance")
    assert "Kimi account balance: 50" in (await tg.wait_for_message(admin.id)).text


# --- the allow-list ------------------------------------------------------------------------------


async def test_allow_and_deny_work_for_the_next_message_without_a_restart(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    friend = tg.user(first_name="Friend")
    stranger = tg.user(first_name="Stranger")
    admin = tg.user(id=ADMIN, first_name="Admin")
    bot = await start_bot(admin_user_ids=str(ADMIN), allowed_user_ids=str(friend.id))

    await tg.send_text(stranger, "hello?")
    assert "private" in (await tg.wait_for_message(stranger.id)).text
    await tg.send_text(friend, f"/allow {stranger.id}")  # not an admin: refused, nothing changes
    assert "admins" in (await tg.wait_for_message(friend.id)).text
    await tg.send_text(friend, f"/deny {friend.id}")
    assert "admins" in (await tg.wait_for_message(friend.id)).text
    await tg.send_text(friend, "/users")
    assert "admins" in (await tg.wait_for_message(friend.id)).text
    assert await bot.services.store.access_entries() == []

    await tg.send_text(admin, "/allow 12x")
    assert "Usage: /allow" in (await tg.wait_for_message(admin.id)).text
    await tg.send_text(admin, f"/allow {stranger.id}")
    await tg.wait_for_message(admin.id, lambda m: str(stranger.id) in m.text)
    fake_kimi.script(Reply(content="welcome in"))
    await tg.send_text(stranger, "hello now?")
    await tg.wait_for_message(stranger.id, lambda m: m.text == "welcome in", timeout=15)

    # Denied while an answer streams: that answer is delivered whole, the next message is refused.
    release = asyncio.Event()  # the answer streams until the /deny is done
    fake_kimi.script(Reply(content="word " * 60, chunk_tokens=2, hold_after_chunks=(2, release)))
    await tg.send_text(friend, "tell me a long story")
    # Text in the draft: the turn has started (a turn denied before it starts is refused).
    await tg.wait_until(
        lambda: any(d.text for d in tg.drafts(friend.id)), timeout=15, description="the answer streaming"
    )
    await tg.send_text(admin, f"/deny {friend.id}")
    await tg.wait_for_message(admin.id, lambda m: "no longer" in m.text)
    assert not [m for m in tg.messages(friend.id) if m.text and m.text.startswith("word")]  # still streaming
    release.set()
    story = await tg.wait_for_message(
        friend.id, lambda m: m.text.startswith("word") and not m.callback_data, timeout=30
    )
    assert story.text.strip() == ("word " * 60).strip()
    calls = len(fake_kimi.chat_requests)
    await tg.send_text(friend, "one more?")
    assert "private" in (await tg.wait_for_message(friend.id)).text
    assert len(fake_kimi.chat_requests) == calls

    await tg.send_text(admin, "/users")
    listing = (await tg.wait_for_message(admin.id, lambda m: "Allowed" in m.text)).text
    assert f"from ALLOWED_USER_IDS: {friend.id}" in listing
    assert f"with /allow: {stranger.id}" in listing and f"Denied with /deny: {friend.id}" in listing
    assert f"{stranger.id}: " in listing and "元点" in listing  # used the bot recently, with spend


async def test_a_message_queued_behind_its_askers_answer_is_refused_after_a_deny(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    friend = tg.user(first_name="Friend")
    admin = tg.user(id=ADMIN, first_name="Admin")
    bot = await start_bot(admin_user_ids=str(ADMIN), allowed_user_ids=str(friend.id))
    release = asyncio.Event()  # the first answer streams until the test lets it finish
    fake_kimi.script(
        Reply(content="word " * 20, hold_after_chunks=(2, release)), Reply(content="never to be sent")
    )
    await tg.send_text(friend, "tell me a story")
    await tg.wait_until(
        lambda: any(d.text for d in tg.drafts(friend.id)), timeout=15, description="streaming"
    )
    await tg.send_text(friend, "and then?")  # let in on arrival, waits behind the answer
    await tg.wait_until(
        lambda: len({d.draft_id for d in tg.drafts(friend.id)}) == 2,
        timeout=15,
        description="the second message's own sign of life (it passed the arrival check)",
    )
    await tg.send_text(admin, f"/deny {friend.id}")
    await tg.wait_for_message(admin.id, lambda m: "no longer" in m.text)
    release.set()

    story = await tg.wait_for_message(
        friend.id, lambda m: m.text.startswith("word") and not m.callback_data, timeout=30
    )
    assert story.text.strip() == ("word " * 20).strip()  # the answer under way still ends whole
    refusal = await tg.wait_for_message(friend.id, lambda m: "private" in m.text, timeout=15)
    assert str(friend.id) in refusal.text
    assert len(fake_kimi.chat_requests) == 1  # the queued message never reached Kimi
    assert not any("never to be sent" in m.text or "went wrong" in m.text for m in tg.messages(friend.id))
    assert len(ledger_rows(bot)) == 1  # only the first answer was charged
    assert (await bot.budget(friend.id))[1] == 0  # and nothing stays reserved


async def test_a_document_read_in_parts_stops_at_the_next_part_after_a_deny(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    friend = tg.user(first_name="Friend")
    admin = tg.user(id=ADMIN, first_name="Admin")
    bot = await start_bot(
        admin_user_ids=str(ADMIN),
        allowed_user_ids=str(friend.id),
        default_model="moonshot-v1-8k",  # 8K of context: the document is read in parts
        document_confirm_threshold="1000",
    )
    release = asyncio.Event()  # the first part's call takes until the deny is done
    fake_kimi.script(
        Reply(content="Part one: otters.", hold_before_answer=release),
        *(Reply(content="never to be sent") for _ in range(10)),
    )
    document = "".join(f"Line {n}: otters of river {n} eat fish and sleep.\n" for n in range(3_000))
    await tg.send_document(friend, document.encode(), "otters.txt", caption="What do otters eat?")
    await tg.wait_until(lambda: len(fake_kimi.chat_requests) == 1, timeout=30, description="part 1 asked")
    await tg.send_text(admin, f"/deny {friend.id}")
    await tg.wait_for_message(admin.id, lambda m: "no longer" in m.text)
    release.set()

    refusal = await tg.wait_for_message(friend.id, lambda m: "private" in m.text, timeout=30)
    assert str(friend.id) in refusal.text
    await bot.caught_up()
    assert len(fake_kimi.chat_requests) == 1  # no part after the deny reached Kimi
    assert len(ledger_rows(bot)) == 1  # only the part under way was charged
    assert (await bot.budget(friend.id))[1] == 0  # and nothing stays reserved
    assert not any("never to be sent" in m.text or "went wrong" in m.text for m in tg.messages(friend.id))
