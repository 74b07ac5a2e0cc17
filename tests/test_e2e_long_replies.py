"""Command replies longer than one Telegram message arrive in parts (the fake refuses > 4096)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from handlers.long_replies import reply_in_parts
from tests.fakes.telegram import FakeTelegram

ADMIN = 4242
LISTED = [1_000_000_000 + n for n in range(600)]  # "1000000000, " x 600: ~7,200 characters


async def test_users_with_many_allowed_users_arrives_whole_in_parts(start_bot, tg: FakeTelegram):
    await start_bot(admin_user_ids=str(ADMIN), allowed_user_ids=",".join(map(str, LISTED)))
    admin = tg.user(id=ADMIN, first_name="Admin")

    await tg.send_text(admin, "/users")
    # The last line: once it is there, every part before it was delivered (they go in order).
    await tg.wait_for_message(admin.id, lambda m: "Nobody used the bot" in m.text, timeout=15)
    parts = [m.text for m in tg.messages(admin.id) if m.from_bot]
    assert len(parts) >= 2
    assert all(len(part.encode("utf-16-le")) // 2 <= 4096 for part in parts)
    assert not any("went wrong" in part for part in parts)
    listed = [int(word) for word in " ".join(parts).replace(",", " ").split() if word.isdigit()]
    assert [n for n in listed if n in set(LISTED)] == LISTED  # each once, in order, none lost


class _Replies:
    """Stands in for the command's Message: records what is replied."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, InlineKeyboardMarkup | None]] = []

    async def reply_text(self, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> str:
        self.sent.append((text, reply_markup))
        return text


async def test_a_long_reply_is_cut_at_lines_with_its_keyboard_on_the_last_part():
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("📈", callback_data="c")]])
    lines = [f"模型 {n:04d}: 1.5 元点" for n in range(600)]  # ~10,000 characters
    replies = _Replies()
    await reply_in_parts(replies, "\n".join(lines), keyboard)  # type: ignore[arg-type]
    assert len(replies.sent) >= 3
    assert [markup for _, markup in replies.sent] == [None] * (len(replies.sent) - 1) + [keyboard]
    assert [line for part, _ in replies.sent for line in part.split("\n")] == lines  # whole lines, in order
    assert all(len(part) <= 4096 for part, _ in replies.sent)

    short = _Replies()
    await reply_in_parts(short, "one line", keyboard)  # type: ignore[arg-type]
    assert short.sent == [("one line", keyboard)]
