"""The fake Telegram driven by real python-telegram-bot: it must answer like Telegram does."""

import asyncio
import io

import aiohttp
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, MessageEntity, ReactionTypeEmoji, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken, RetryAfter
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fakes.telegram import BotApiError, FakeClock, FakeTelegram, FloodLimits, TelegramRules

pytestmark = [
    # Reading RetryAfter.retry_after as seconds is what we test; PTB warns about its future type.
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    # do_api_request("sendMessage", ...) is used on purpose to send markup PTB would not build.
    pytest.mark.filterwarnings("ignore:Please use 'Bot.sendMessage':telegram.warnings.PTBUserWarning"),
]


@pytest.fixture
async def tg():
    async with FakeTelegram() as fake:
        yield fake


def make_bot(tg: FakeTelegram, token: str | None = None) -> Bot:
    return Bot(token or tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)


@pytest.fixture
async def bot(tg):
    async with make_bot(tg) as client:
        yield client


@pytest.fixture
def alice(tg):
    user = tg.user(first_name="Alice", username="alice")
    tg.private_chat(user)
    return user


async def bad_request(coroutine) -> str:
    """Await a call that must fail with BadRequest; returns PTB's message lower-cased."""
    with pytest.raises(BadRequest) as error:
        await coroutine
    return str(error.value).lower()


# ---------------------------------------------------------------- sending and editing


async def test_send_and_edit_keep_what_the_user_saw_over_time(tg, bot, alice):
    sent = await bot.send_message(alice.id, "<b>Thinking</b>…", parse_mode=ParseMode.HTML)
    assert sent.text == "Thinking…"
    assert sent.from_user.id == bot.id and sent.chat.id == alice.id
    assert sent.entities == (MessageEntity(MessageEntity.BOLD, 0, 8),)

    edited = await bot.edit_message_text(
        "Done: <i>42</i>", alice.id, sent.message_id, parse_mode=ParseMode.HTML
    )
    assert edited.text == "Done: 42" and edited.edit_date is not None

    [message] = tg.messages(alice.id)
    assert message.text == "Done: 42"
    assert [v.html for v in message.versions] == ["<b>Thinking</b>…", "Done: <i>42</i>"]
    assert tg.visible_text(alice.id) == "Done: 42"


async def test_message_ids_increase_per_chat(tg, bot, alice):
    bob = tg.user(first_name="Bob")
    tg.private_chat(bob)
    first = await bot.send_message(alice.id, "one")
    second = await bot.send_message(alice.id, "two")
    other = await bot.send_message(bob.id, "hi")
    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)


async def test_edit_with_same_content_is_not_modified(bot, alice):
    sent = await bot.send_message(alice.id, "*same*", parse_mode=ParseMode.MARKDOWN_V2)
    message = await bad_request(
        bot.edit_message_text("same", alice.id, sent.message_id, entities=[MessageEntity("bold", 0, 4)])
    )
    assert message.startswith("message is not modified")
    # Trailing whitespace is trimmed by Telegram, so it does not make the text different either.
    message = await bad_request(
        bot.edit_message_text("*same*  \n", alice.id, sent.message_id, parse_mode="MarkdownV2")
    )
    assert "message is not modified" in message


async def test_edit_without_reply_markup_removes_the_keyboard(tg, bot, alice):
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop:1")]])
    sent = await bot.send_message(alice.id, "streaming", reply_markup=keyboard)
    await bot.edit_message_text("streaming", alice.id, sent.message_id)  # not "not modified"
    assert tg.messages(alice.id)[0].reply_markup is None


async def test_edit_errors(tg, bot, alice):
    user_message = await tg.send_text(alice, "hello bot")
    assert "message to edit not found" in await bad_request(bot.edit_message_text("x", alice.id, 999))
    assert "message can't be edited" in await bad_request(
        bot.edit_message_text("x", alice.id, user_message["message_id"])
    )


async def test_parse_errors_are_bad_requests(bot, alice):
    assert "can't parse entities: unsupported start tag" in await bad_request(
        bot.send_message(alice.id, "line<br>break", parse_mode=ParseMode.HTML)
    )
    assert "can't parse entities: character '.' is reserved" in await bad_request(
        bot.send_message(alice.id, "Hello.", parse_mode=ParseMode.MARKDOWN_V2)
    )
    assert "can't find end of the entity starting at byte offset 0" in await bad_request(
        bot.send_message(alice.id, "*bold", parse_mode=ParseMode.MARKDOWN)
    )


async def test_limit_is_4096_utf16_units_after_entity_parsing(tg, bot, alice):
    await bot.send_message(alice.id, "<b>" + "a" * 4096 + "</b>", parse_mode=ParseMode.HTML)
    await bot.send_message(alice.id, "😀" * 2048)  # 4096 units
    tg.flood.reset()
    assert "message is too long" in await bad_request(bot.send_message(alice.id, "😀" * 2048 + "a"))
    assert "message is too long" in await bad_request(bot.send_message(alice.id, "a" * 4097))


async def test_empty_text(bot, alice):
    assert "message text is empty" in await bad_request(bot.send_message(alice.id, ""))
    assert "text must be non-empty" in await bad_request(bot.send_message(alice.id, " \n "))
    assert "text must be non-empty" in await bad_request(
        bot.send_message(alice.id, "<b> </b>", parse_mode=ParseMode.HTML)
    )


async def test_explicit_entities_are_validated(tg, bot, alice):
    assert "entity beginning at utf-16 offset 0 ends after the end of the text" in await bad_request(
        bot.send_message(alice.id, "hello", entities=[MessageEntity("bold", 0, 100)])
    )
    assert "can't parse messageentity: unsupported type specified" in await bad_request(
        bot.send_message(alice.id, "hello", entities=[MessageEntity("sparkle", 0, 1)])
    )
    assert 'can\'t find field "url"' in await bad_request(
        bot.send_message(alice.id, "hello", entities=[MessageEntity("text_link", 0, 5)])
    )
    tg.flood.reset()
    assert "entity url 'not-a-url' is invalid" in await bad_request(
        bot.send_message(alice.id, "hello", entities=[MessageEntity("text_link", 0, 5, url="not-a-url")])
    )
    sent = await bot.send_message(alice.id, "😀 hi", entities=[MessageEntity("italic", 3, 2)])
    assert sent.entities[0].offset == 3


async def test_unknown_chat_and_blocked_user(tg, bot, alice):
    assert "chat not found" in await bad_request(bot.send_message(-100999, "x"))
    stranger = tg.user(first_name="Stranger")  # never started the bot
    with pytest.raises(Forbidden, match="initiate conversation"):
        await bot.send_message(stranger.id, "x")
    tg.block_bot(alice)
    with pytest.raises(Forbidden, match="blocked by the user"):
        await bot.send_message(alice.id, "x")


async def test_reply_markup_validation(bot, alice):
    too_long = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="x" * 65)]])
    assert "button_data_invalid" in await bad_request(bot.send_message(alice.id, "x", reply_markup=too_long))
    fits = InlineKeyboardMarkup([[InlineKeyboardButton("Go", callback_data="é" * 32)]])  # 64 bytes
    await bot.send_message(alice.id, "x", reply_markup=fits)
    text_only = {"inline_keyboard": [[{"text": "nothing"}]]}
    assert "text buttons are unallowed" in await bad_request(
        bot.do_api_request(
            "sendMessage", api_kwargs={"chat_id": alice.id, "text": "x", "reply_markup": text_only}
        )
    )


async def test_reply_to_a_missing_message(bot, alice):
    assert "message to be replied not found" in await bad_request(
        bot.send_message(alice.id, "x", reply_to_message_id=999)
    )


async def test_delete_message(tg, bot, alice):
    sent = await bot.send_message(alice.id, "bye")
    assert await bot.delete_message(alice.id, sent.message_id)
    assert tg.messages(alice.id) == []
    assert "message to delete not found" in await bad_request(bot.delete_message(alice.id, sent.message_id))


# ---------------------------------------------------------------- drafts


async def test_drafts_stream_in_private_chats_and_clear_on_send(tg, bot, alice):
    assert await bot.send_message_draft(alice.id, 7, "Hel")
    assert await bot.send_message_draft(alice.id, 7, "Hello <b>wor</b>", parse_mode=ParseMode.HTML)
    assert await bot.send_message_draft(alice.id, 7)  # empty: "Thinking…"
    assert [d.text for d in tg.drafts(alice.id)] == ["Hel", "Hello wor", ""]
    assert tg.current_draft(alice.id) is not None
    await bot.send_message(alice.id, "Hello world")
    assert tg.current_draft(alice.id) is None
    assert len(tg.draft_gaps(alice.id)) == 2


async def test_drafts_are_refused_in_groups_and_need_a_draft_id(tg, bot, alice):
    group = tg.group(title="Team")
    assert "textdraft_peer_invalid" in await bad_request(bot.send_message_draft(group.id, 1, "x"))
    assert "random_id_invalid" in await bad_request(bot.send_message_draft(alice.id, 0, "x"))
    assert "message is too long" in await bad_request(bot.send_message_draft(alice.id, 1, "a" * 4097))


async def test_draft_expires_after_30_seconds():
    clock = FakeClock()
    async with FakeTelegram(clock=clock) as tg, make_bot(tg) as bot:
        alice = tg.user()
        tg.private_chat(alice)
        await bot.send_message_draft(alice.id, 1, "partial")
        clock.advance(29)
        assert tg.current_draft(alice.id) is not None
        clock.advance(2)
        assert tg.current_draft(alice.id) is None


# ---------------------------------------------------------------- flood control


async def test_private_chat_allows_a_burst_then_one_per_second():
    clock = FakeClock()
    async with FakeTelegram(clock=clock) as tg, make_bot(tg) as bot:
        alice = tg.user()
        tg.private_chat(alice)
        for i in range(3):
            await bot.send_message(alice.id, f"burst {i}")
        with pytest.raises(RetryAfter) as error:
            await bot.send_message(alice.id, "one too many")
        assert error.value.retry_after == 1
        clock.advance(0.5)
        with pytest.raises(RetryAfter):  # still in penalty: every request gets 429
            await bot.edit_message_text("edit", alice.id, 1)
        clock.advance(0.6)
        await bot.send_message(alice.id, "after the pause")
        assert [e.reason for e in tg.flood_errors] == ["chat", "penalty"]
        # Chat actions, callback answers and (by default) drafts are not counted.
        for _ in range(10):
            await bot.send_chat_action(alice.id, "typing")
            await bot.send_message_draft(alice.id, 3, "draft")


async def test_edits_count_like_sends():
    clock = FakeClock()
    async with FakeTelegram(clock=clock) as tg, make_bot(tg) as bot:
        alice = tg.user()
        tg.private_chat(alice)
        sent = await bot.send_message(alice.id, "v0")
        await bot.edit_message_text("v1", alice.id, sent.message_id)
        await bot.edit_message_text("v2", alice.id, sent.message_id)
        with pytest.raises(RetryAfter):
            await bot.edit_message_text("v3", alice.id, sent.message_id)
        assert tg.messages(alice.id)[0].text == "v2"


async def test_group_limit_triggers_at_the_21st_message_in_a_minute():
    clock = FakeClock()
    async with FakeTelegram(clock=clock) as tg, make_bot(tg) as bot:
        group = tg.group(title="Team")
        for i in range(20):
            await bot.send_message(group.id, f"message {i}")
            clock.advance(2)  # slow enough for the per-chat rate
        with pytest.raises(RetryAfter) as error:
            await bot.send_message(group.id, "message 20")
        assert error.value.retry_after == 20  # the first message leaves the window at t=60
        assert tg.flood_errors[-1].reason == "group"
        clock.advance(20)
        await bot.send_message(group.id, "a minute later")


async def test_global_limit_of_30_messages_per_second():
    clock = FakeClock()
    async with FakeTelegram(clock=clock) as tg, make_bot(tg) as bot:
        users = [tg.user() for _ in range(31)]
        for user in users[:30]:
            tg.private_chat(user)
            await bot.send_message(user.id, "broadcast")
        tg.private_chat(users[30])
        with pytest.raises(RetryAfter):
            await bot.send_message(users[30].id, "broadcast")
        assert tg.flood_errors[-1].reason == "global"


async def test_flood_limits_are_parameters_and_can_be_switched_off():
    clock = FakeClock()
    async with FakeTelegram(clock=clock, flood_limits=FloodLimits(chat_burst=1)) as tg, make_bot(tg) as bot:
        alice = tg.user()
        tg.private_chat(alice)
        await bot.send_message(alice.id, "one")
        with pytest.raises(RetryAfter):
            await bot.send_message(alice.id, "two")
    async with FakeTelegram(flood_control=False) as tg, make_bot(tg) as bot:
        alice = tg.user()
        tg.private_chat(alice)
        for i in range(40):
            await bot.send_message(alice.id, str(i))
        tg.assert_no_flood()


async def test_forced_failures(tg, bot, alice):
    tg.flood_next("sendMessage", retry_after=7)
    with pytest.raises(RetryAfter) as error:
        await bot.send_message(alice.id, "x")
    assert error.value.retry_after == 7
    # As on Telegram, the chat is then in penalty: sending again at once is refused too.
    with pytest.raises(RetryAfter):
        await bot.send_message(alice.id, "again, at once")
    bob = tg.user(first_name="Bob")
    tg.private_chat(bob)
    tg.fail_next("sendMessage", "Bad Request: message is too long", status=400, times=2)
    for _ in range(2):
        assert "message is too long" in await bad_request(bot.send_message(bob.id, "short"))
    await bot.send_message(bob.id, "now it works")
    assert [e.reason for e in tg.flood_errors] == ["forced", "penalty"]


# ---------------------------------------------------------------- tokens and unknown methods


async def test_wrong_token_and_unknown_method(tg):
    with pytest.raises(InvalidToken):
        async with make_bot(tg, token="999:WRONG"):
            pass
    async with make_bot(tg) as bot:
        with pytest.raises(EndPointNotFound):  # PTB turns the 404 into this once initialised
            await bot.do_api_request("noSuchMethod")
        assert tg.calls("noSuchMethod")[0].status == 404


async def test_raw_http_answers_have_telegrams_shape(tg, alice):
    base = f"{tg.base_url}{tg.token}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/getMe") as response:
            assert (await response.json())["result"]["username"] == "kimi_test_bot"
        bold = [{"type": "bold", "offset": 0, "length": 2}]
        async with http.post(
            f"{base}/sendMessage", json={"chat_id": alice.id, "text": "hi", "entities": bold}
        ) as r:
            assert (await r.json())["result"]["entities"] == bold
        async with http.post(f"{base}/SENDMESSAGE", data={"chat_id": str(alice.id), "text": "123"}) as r:
            assert (await r.json())["result"]["text"] == "123"  # method names are case-insensitive
        async with http.post(f"{tg.base_url}999:WRONG/getMe") as r:
            assert r.status == 401
            assert await r.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        async with http.post(f"{base}/noSuchMethod") as r:
            assert r.status == 404
            assert await r.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        tg.flood_next("sendMessage", retry_after=3)
        async with http.post(f"{base}/sendMessage", data={"chat_id": str(alice.id), "text": "x"}) as r:
            assert r.status == 429
            assert await r.json() == {
                "ok": False,
                "error_code": 429,
                "description": "Too Many Requests: retry after 3",
                "parameters": {"retry_after": 3},
            }
    assert tg.calls("sendMessage")[0].params["entities"] == bold  # recorded decoded


# ---------------------------------------------------------------- files


async def test_file_download_and_the_20_mb_limit(tg, bot, alice):
    message = await tg.send_document(alice, b"%PDF-1.4 tiny", "paper.pdf", mime_type="application/pdf")
    file = await bot.get_file(message["document"]["file_id"])
    assert file.file_size == 13
    assert bytes(await file.download_as_bytearray()) == b"%PDF-1.4 tiny"

    big = await tg.send_document(alice, b"x", "big.pdf", file_size=21 * 1024 * 1024)
    assert "file is too big" in await bad_request(bot.get_file(big["document"]["file_id"]))
    assert "wrong file_id" in await bad_request(bot.get_file("nope"))


async def test_bot_uploads_a_document(tg, bot, alice):
    sent = await bot.send_document(
        alice.id, b"report body", filename="report.txt", caption="<b>Report</b>", parse_mode=ParseMode.HTML
    )
    assert sent.document.file_name == "report.txt" and sent.caption == "Report"
    file = await bot.get_file(sent.document.file_id)
    assert bytes(await file.download_as_bytearray()) == b"report body"
    assert tg.messages(alice.id)[0].html == "<b>Report</b>"
    assert "message caption is too long" in await bad_request(
        bot.send_document(alice.id, b"x", filename="a.txt", caption="c" * 1025)
    )


def png(width: int, height: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="PNG")
    return buffer.getvalue()


async def test_bot_uploads_a_photo_within_telegrams_limits(tg, bot, alice):
    sent = await bot.send_photo(alice.id, png(1000, 560), caption="Chart")
    assert sent.caption == "Chart"
    sizes = [(size.width, size.height) for size in sent.photo]
    assert sizes[0] == (90, 50) and sizes[-1] == (1000, 560)  # smallest first, the upload last
    file = await bot.get_file(sent.photo[-1].file_id)
    assert bytes(await file.download_as_bytearray()) == png(1000, 560)
    assert tg.messages(alice.id)[0].photo[-1]["width"] == 1000
    again = await bot.send_photo(alice.id, sent.photo[-1].file_id)  # re-sent by file_id
    assert again.photo[-1].width == 1000
    assert "image_process_failed" in await bad_request(bot.send_photo(alice.id, b"not an image"))
    assert "image_process_failed" in await bad_request(bot.send_photo(alice.id, png(50, 50)[:-20]))
    assert "photo_invalid_dimensions" in await bad_request(bot.send_photo(alice.id, png(2100, 100)))
    assert "message caption is too long" in await bad_request(
        bot.send_photo(alice.id, png(10, 10), caption="c" * 1025)
    )
    assert len(tg.messages(alice.id)) == 2 and not tg.unimplemented


# ---------------------------------------------------------------- commands, chats, reactions


async def test_commands_are_stored_per_language_and_scope(tg, bot):
    await bot.set_my_commands([("new", "Start a new conversation"), ("usage", "Show spending")])
    await bot.set_my_commands([("new", "开始新对话")], language_code="zh")
    assert [c.command for c in await bot.get_my_commands()] == ["new", "usage"]
    assert tg.commands("zh") == [{"command": "new", "description": "开始新对话"}]
    assert "bot_command_invalid" in await bad_request(bot.set_my_commands([("New", "Bad name")]))
    await bot.delete_my_commands(language_code="zh")
    assert tg.commands("zh") == []


async def test_get_chat_and_members(tg, bot, alice):
    group = tg.group(title="Team")
    tg.set_member(group, alice, "administrator")
    chat = await bot.get_chat(group.id)
    assert chat.title == "Team" and chat.type == "supergroup"
    member = await bot.get_chat_member(group.id, alice.id)
    assert member.status == "administrator"
    assert (await bot.get_chat_member(group.id, bot.id)).status == "member"
    assert [m.user.id for m in await bot.get_chat_administrators(group.id)] == [alice.id]
    for status in ("creator", "member", "restricted", "left", "kicked"):
        tg.set_member(group, alice, status)
        assert (await bot.get_chat_member(group.id, alice.id)).status == status


async def test_reactions(tg, bot, alice):
    message = await tg.send_text(alice, "nice")
    await bot.set_message_reaction(alice.id, message["message_id"], ReactionTypeEmoji("👍"))
    assert tg.message(alice.id, message["message_id"]).reactions == [{"type": "emoji", "emoji": "👍"}]
    assert "reaction_invalid" in await bad_request(
        bot.set_message_reaction(alice.id, message["message_id"], ReactionTypeEmoji("🍕"))
    )
    assert "message to react not found" in await bad_request(bot.set_message_reaction(alice.id, 999, "👍"))


async def test_leave_chat(tg, bot):
    group = tg.group(title="Team")
    assert await bot.leave_chat(group.id)
    with pytest.raises(Forbidden, match="not a member"):
        await bot.send_message(group.id, "still here?")


# ---------------------------------------------------------------- updates


async def test_get_updates_honours_offset_and_allowed_updates(tg, bot, alice):
    first = await tg.send_text(alice, "/start")
    assert [e["type"] for e in first["entities"]] == ["bot_command"]
    updates = await bot.get_updates(timeout=0)
    assert [u.message.text for u in updates] == ["/start"]
    await tg.send_text(alice, "second")
    updates = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert [u.message.text for u in updates] == ["second"]  # the first one was confirmed

    sent = await bot.send_message(
        alice.id, "pick", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("A", callback_data="a")]])
    )
    await tg.press_button(alice, tg.messages(alice.id)[-1], "a")
    only_messages = await bot.get_updates(
        offset=updates[-1].update_id + 1, timeout=0, allowed_updates=["message"]
    )
    assert only_messages == ()
    everything = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0, allowed_updates=[])
    assert everything[0].callback_query.message.message_id == sent.message_id


async def test_long_poll_waits_for_an_update(tg, bot, alice):
    async def later():
        await asyncio.sleep(0.2)
        await tg.send_text(alice, "hi")

    task = asyncio.create_task(later())
    loop = asyncio.get_running_loop()
    start = loop.time()
    updates = await bot.get_updates(timeout=5)
    assert [u.message.text for u in updates] == ["hi"]
    assert 0.1 < loop.time() - start < 2
    await task


async def test_privacy_mode_in_groups(tg, bot, alice):
    group = tg.group(title="Team")
    await tg.send_text(alice, "just chatting", chat=group)
    await tg.send_text(alice, "/ask@kimi_test_bot what is 2+2", chat=group)
    await tg.send_text(alice, "/other@some_other_bot", chat=group)
    await tg.send_text(alice, "hey @kimi_test_bot", chat=group)
    reply_target = await bot.send_message(group.id, "I am here")
    await tg.send_text(alice, "thanks", chat=group, reply_to=reply_target.message_id)
    texts = [u.message.text for u in await bot.get_updates(timeout=0)]
    assert texts == ["/ask@kimi_test_bot what is 2+2", "hey @kimi_test_bot", "thanks"]
    assert [m["text"] for m in tg.filtered_by_privacy] == ["just chatting", "/other@some_other_bot"]


async def test_bot_added_to_group_and_forum_topics(tg, bot, alice):
    group = tg.group(title="Forum", forum=True, bot_status="left")
    await tg.bot_added_to_group(group, alice)
    thread = await tg.create_topic(group, "Ideas", by=alice)
    await tg.send_text(alice, "/ask in a topic", chat=group, thread_id=thread)
    updates = await bot.get_updates(timeout=0)
    kinds = [next(k for k in u.to_dict() if k != "update_id") for u in updates]
    assert kinds == ["my_chat_member", "message", "message", "message"]
    assert updates[1].message.new_chat_members[0].id == bot.id
    topic_message = updates[3].message
    assert topic_message.is_topic_message and topic_message.message_thread_id == thread
    reply = await topic_message.reply_text("answer")  # PTB fills message_thread_id
    assert reply.message_thread_id == thread
    assert "message thread not found" in await bad_request(
        bot.send_message(group.id, "x", message_thread_id=999)
    )


# ---------------------------------------------------------------- a whole PTB application


async def start_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    context.bot_data.setdefault("seen", []).append(update.message.text)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Stop", callback_data="stop")]])
    await update.message.reply_text(f"Hello, {update.effective_user.first_name}!", reply_markup=keyboard)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    context.bot_data.setdefault("seen", []).append(update.message.text)
    await update.message.reply_text(update.message.text.upper())


async def count_document_bytes(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    data = await (await update.message.document.get_file()).download_as_bytearray()
    await update.message.reply_text(f"{len(data)} bytes")


async def stop_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.callback_query.answer("Stopped")
    await update.callback_query.edit_message_text("Stopped.")


async def test_application_polls_replies_and_handles_buttons():
    # The user acts at human pace: the fake's clock moves 5 s before each action, so the bot's
    # replies stay within flood limits (at machine pace four replies in a row would get a 429).
    clock = FakeClock()
    async with FakeTelegram(clock=clock) as tg:
        app = (
            ApplicationBuilder().token(tg.token).base_url(tg.base_url).base_file_url(tg.base_file_url).build()
        )
        app.add_handler(CommandHandler("start", start_command))
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
        app.add_handler(MessageHandler(filters.Document.ALL, count_document_bytes))
        app.add_handler(CallbackQueryHandler(stop_button, pattern="^stop$"))
        alice = tg.user(first_name="Alice")

        async with app:
            await app.updater.start_polling(poll_interval=0, timeout=1)
            await app.start()
            try:
                await tg.send_text(alice, "/start")
                greeting = await tg.wait_for_message(alice.id, timeout=5)
                assert greeting.text == "Hello, Alice!" and greeting.callback_data == ["stop"]

                clock.advance(5)
                query_id = await tg.press_button(alice, greeting, "stop")
                await tg.wait_until(lambda: greeting.text == "Stopped.", timeout=5)
                assert greeting.buttons == []
                assert tg.callback_answer(query_id)["text"] == "Stopped"

                clock.advance(5)
                await tg.send_text(alice, "shout")
                assert (await tg.wait_for_message(alice.id, timeout=5)).text == "SHOUT"

                clock.advance(5)
                await tg.send_document(alice, b"0123456789", "notes.txt", mime_type="text/plain")
                assert (await tg.wait_for_message(alice.id, timeout=5)).text == "10 bytes"
                await tg.wait_idle(quiet=0.2)
            finally:
                await app.updater.stop()
                await app.stop()

        assert app.bot_data["seen"] == ["/start", "shout"]  # each update handled once: offsets work
        assert tg.visible_text(alice.id) == "Stopped.\nSHOUT\n10 bytes"
        assert not tg.unimplemented
        tg.assert_no_flood()


async def test_rules_are_configurable():
    rules = TelegramRules(
        strict_html_ampersand=False, draft_group_error="Bad Request: draft can be sent only to private chats"
    )
    async with FakeTelegram(rules=rules) as tg, make_bot(tg) as bot:
        alice = tg.user()
        tg.private_chat(alice)
        sent = await bot.send_message(alice.id, "AT&T", parse_mode=ParseMode.HTML)
        assert sent.text == "AT&T"
        group = tg.group()
        assert "draft can be sent only to private chats" in await bad_request(
            bot.send_message_draft(group.id, 1, "x")
        )


async def test_a_button_press_answered_too_late_fails_like_telegram() -> None:
    clock = FakeClock()
    async with FakeTelegram(clock=clock) as tg:
        alice = tg.user()
        chat = tg.private_chat(alice)
        keyboard = {
            "inline_keyboard": [[{"text": "A", "callback_data": "a"}, {"text": "B", "callback_data": "b"}]]
        }
        sent = await tg.api.dispatch(
            "sendMessage", {"chat_id": chat.id, "text": "pick", "reply_markup": keyboard}
        )
        message = tg.message(chat, sent["message_id"])
        on_time = await tg.press_button(alice, message, "a")
        late = await tg.press_button(alice, message, "b")
        assert await tg.api.dispatch("answerCallbackQuery", {"callback_query_id": on_time}) is True
        clock.advance(15.5)
        try:
            await tg.api.dispatch("answerCallbackQuery", {"callback_query_id": late})
        except BotApiError as error:
            assert error.status == 400 and "query is too old" in error.description
        else:
            raise AssertionError("a 15.5 s old query was answered")
