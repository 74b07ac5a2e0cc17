"""Pictures end to end: photos, albums and image documents go to a vision model as image parts (the
fake Kimi decodes every one and refuses image parts on a text-only model), follow-up questions see
the picture again, a text-only model gets the text in the picture and the answer names a vision
model, and pictures that are too large are refused or scaled down."""

from __future__ import annotations

import io
import sqlite3
from typing import Any

from PIL import Image

from tests.fakes.kimi import FakeKimi, Reply, decode_data_url_image, image_tokens
from tests.fakes.telegram import FakeTelegram
from tests.test_e2e_documents_helpers import (
    every_uploaded_file_is_deleted,  # noqa: F401 (autouse)
    file_requests,
    finished,
    ledger,
    stored_messages,
)


def picture(width: int = 64, height: int = 48, colour: str = "red", kind: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, kind)
    return buffer.getvalue()


def image_urls(message: dict[str, Any]) -> list[str]:
    content = message["content"]
    if not isinstance(content, list):
        return []
    return [part["image_url"]["url"] for part in content if part["type"] == "image_url"]


def text_of(message: dict[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content)


async def test_a_photo_and_a_follow_up_on_a_vision_model(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    bot = await start_bot(default_model="kimi-k2.6")
    amy = tg.user(first_name="Amy")
    fake_kimi.script(Reply(content="A red rectangle."))
    await tg.send_photo(amy, picture(640, 480, "red"), caption="What is this?")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "A red rectangle."), timeout=15)

    question = fake_kimi.chat_requests[-1].json["messages"][-1]
    [url] = image_urls(question)
    assert url.startswith("data:image/jpeg;base64,") and decode_data_url_image(url) == (640, 480)
    assert question["content"][-1] == {"type": "text", "text": "What is this?"}
    assert file_requests(fake_kimi) == {"upload": 0, "content": 0, "delete": 0}  # no OCR detour
    # The reservation covered the picture (by its pixels); the charge is Kimi's usage.
    price = bot.services.prices.get("kimi-k2.6")
    assert price is not None
    held = _reservations(bot)[-1]
    assert held >= price.cost_micro(image_tokens(url), 0) + price.cost_micro(0, 4096)
    assert ledger(bot, amy.id)[-1]["prompt_tokens"] > image_tokens(url)

    fake_kimi.script(Reply(content="It is red."))
    await tg.send_text(amy, "Which colour was it?")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "It is red."), timeout=15)
    messages = fake_kimi.chat_requests[-1].json["messages"]
    assert image_urls(messages[-3]) == [url]  # the earlier picture, sent again
    assert messages[-1] == {"role": "user", "content": "Which colour was it?"}

    cost = await _reply_to(tg, amy, "/cost")
    assert "kimi-k2.6" in cost


def _reservations(bot) -> list[int]:  # noqa: ANN001
    path = bot.services.store.database_url.database
    with sqlite3.connect(path) as connection:
        return [row[0] for row in connection.execute("SELECT amount_micro FROM reservations ORDER BY id")]


async def _reply_to(tg: FakeTelegram, user, command: str) -> str:  # noqa: ANN001
    await tg.send_text(user, command)
    return (await tg.wait_for_message(user.id, timeout=10)).text


async def test_an_album_is_one_turn_with_every_picture(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot(default_model="kimi-k2.5")
    li = tg.user(first_name="Li", language_code="zh-hans")
    fake_kimi.script(Reply(content="第一张是红色，第二张是蓝色。"))
    await tg.send_album(li, [picture(colour="red"), picture(colour="blue"), picture(colour="green")])
    await tg.wait_for_message(li.id, finished(tg, li.id, "第一张"), timeout=15)
    assert len(fake_kimi.chat_requests) == 1
    question = fake_kimi.chat_requests[-1].json["messages"][-1]
    assert len(image_urls(question)) == 3
    assert text_of(question) == "描述这些图片。"  # no caption: the default, in Li's language

    await tg.send_album(li, [picture(colour="red"), picture(colour="blue")], caption="哪张更亮？")
    fake_kimi.script(Reply(content="蓝色那张。"))
    await tg.wait_for_message(li.id, finished(tg, li.id, "蓝色那张"), timeout=15)
    question = fake_kimi.chat_requests[-1].json["messages"][-1]
    assert len(image_urls(question)) == 2 and text_of(question) == "哪张更亮？"
    assert len(fake_kimi.chat_requests) == 2


async def test_an_image_document_is_scaled_down(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot(default_model="kimi-k2.6")
    amy = tg.user(first_name="Amy")
    fake_kimi.script(Reply(content="A big green field."))
    await tg.send_document(amy, picture(4000, 3000, "green", "PNG"), "field.png", mime_type="image/png")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "green field"), timeout=20)
    question = fake_kimi.chat_requests[-1].json["messages"][-1]
    [url] = image_urls(question)
    assert decode_data_url_image(url) == (2048, 1536)  # not 4000 × 3000: pixels no one sees
    assert text_of(question) == "Describe this picture."


async def test_a_picture_too_large_is_refused(start_bot, tg: FakeTelegram, fake_kimi: FakeKimi):
    await start_bot(default_model="kimi-k2.6")
    li = tg.user(first_name="Li", language_code="zh")
    await tg.send_document(li, picture(), "huge.jpg", mime_type="image/jpeg", file_size=25 * 1024 * 1024)
    reply = await tg.wait_for_message(li.id, timeout=10)
    assert "太大" in reply.text
    amy = tg.user(first_name="Amy")
    await tg.send_document(amy, b"\x89PNG\r\n\x1a\nnot really", "broken.png", mime_type="image/png")
    reply = await tg.wait_for_message(amy.id, timeout=10)
    assert "couldn't open this picture" in reply.text
    assert fake_kimi.chat_requests == []


async def test_a_text_only_model_reads_the_text_and_names_a_vision_model(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot()  # kimi-k2-0905-preview sees no pictures
    amy = tg.user(first_name="Amy")
    fake_kimi.extractions["photo.jpg"] = "MENU: dumplings 12, noodles 18"
    fake_kimi.script(Reply(content="Noodles cost 18."))
    await tg.send_photo(amy, picture(), caption="How much are the noodles?")
    reply = await tg.wait_for_message(amy.id, finished(tg, amy.id, "Noodles cost"), timeout=15)
    assert "kimi-k2.6" in reply.visible_text.splitlines()[-1]  # one line naming a vision model
    messages = fake_kimi.chat_requests[-1].json["messages"]
    assert not any(image_urls(m) for m in messages)
    assert "noodles 18" in messages[-2]["content"]

    li = tg.user(first_name="Li", language_code="zh")
    fake_kimi.extractions["photo.jpg"] = "菜单：饺子 12"
    fake_kimi.script(Reply(content="饺子 12 元。"))
    await tg.send_photo(li, picture(colour="blue"), caption="饺子多少钱？")
    reply = await tg.wait_for_message(li.id, finished(tg, li.id, "饺子 12 元"), timeout=15)
    assert "视觉模型" in reply.visible_text and "kimi-k2.6" in reply.visible_text


async def test_after_switching_to_a_text_only_model_pictures_become_placeholders(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    bot = await start_bot(default_model="kimi-k2.6")
    amy = tg.user(first_name="Amy")
    fake_kimi.script(Reply(content="A cat."))
    await tg.send_photo(amy, picture(colour="orange"), caption="What animal?")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "A cat."), timeout=15)
    await _reply_to(tg, amy, "/model kimi-k2-0905-preview")

    fake_kimi.script(Reply(content="I can't see it any more."))
    await tg.send_text(amy, "What colour was the cat?")
    await tg.wait_for_message(amy.id, finished(tg, amy.id, "any more"), timeout=15)
    messages = fake_kimi.chat_requests[-1].json["messages"]
    assert fake_kimi.chat_requests[-1].json["model"] == "kimi-k2-0905-preview"
    assert not any(image_urls(m) for m in messages)  # Kimi would answer 400
    assert messages[-3]["content"].startswith("[The user showed a picture here")

    # /reset ends the conversation, and the kept picture with it.
    assert any(row["content"] == "What animal?" for row in stored_messages(bot))
    await _reply_to(tg, amy, "/reset")
    store = bot.services.store
    conversation = await store.active_conversation(amy.id, amy.id)
    assert await store.conversation_messages(conversation.id) == []
    old = await store.conversation_messages(conversation.id - 1)
    assert old and all(message.images == () for message in old)


async def test_a_group_picture_mentioning_the_bot_and_a_reply_to_a_picture(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(default_model="kimi-k2.6")
    group = tg.group()
    amy = tg.user(first_name="Amy")
    fake_kimi.script(Reply(content="A yellow square."))
    await tg.send_photo(amy, picture(colour="yellow"), caption=f"@{tg.bot.username} what is it?", chat=group)
    await tg.wait_for_message(group.id, finished(tg, group.id, "yellow square"), timeout=15)
    question = fake_kimi.chat_requests[-1].json["messages"][-1]
    assert len(image_urls(question)) == 1 and text_of(question) == "what is it?"

    ben = tg.user(first_name="Ben")
    photo = await tg.send_photo(ben, picture(colour="purple"), chat=group)  # not for the bot
    fake_kimi.script(Reply(content="Purple."))
    await tg.send_text(amy, f"@{tg.bot.username} which colour?", chat=group, reply_to=photo)
    await tg.wait_for_message(group.id, finished(tg, group.id, "Purple."), timeout=15)
    question = fake_kimi.chat_requests[-1].json["messages"][-1]
    assert len(image_urls(question)) == 1 and text_of(question) == "which colour?"
    assert len(fake_kimi.chat_requests) == 2


async def test_a_group_album_mentioning_the_bot_and_a_picture_replying_to_it(
    start_bot, tg: FakeTelegram, fake_kimi: FakeKimi
):
    await start_bot(default_model="kimi-k2.6")
    group = tg.group(bot_status="administrator")  # an admin bot sees every picture of an album
    li = tg.user(first_name="Li", language_code="zh")
    fake_kimi.script(Reply(content="两只猫。"))
    await tg.send_album(
        li,
        [picture(colour="gray"), picture(colour="white")],
        caption=f"@{tg.bot.username} 这是什么？",
        chat=group,
    )
    answer = await tg.wait_for_message(group.id, finished(tg, group.id, "两只猫"), timeout=15)
    question = fake_kimi.chat_requests[-1].json["messages"][-1]
    assert len(image_urls(question)) == 2 and text_of(question) == "这是什么？"

    # An album nobody addressed to the bot is not answered, even though an admin bot sees it.
    await tg.send_album(li, [picture(colour="red"), picture(colour="blue")], chat=group)
    # A picture sent in reply to the bot's answer is for the bot, without a mention.
    fake_kimi.script(Reply(content="这只是黑色的。"))
    await tg.send_photo(li, picture(colour="black"), caption="这只呢？", chat=group, reply_to=answer)
    await tg.wait_for_message(group.id, finished(tg, group.id, "黑色"), timeout=15)
    question = fake_kimi.chat_requests[-1].json["messages"][-1]
    assert len(image_urls(question)) == 1 and text_of(question) == "这只呢？"
    assert len(fake_kimi.chat_requests) == 2
