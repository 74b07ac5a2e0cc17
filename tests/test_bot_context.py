"""context.incoming: who, where, which language and which conversation, from the update alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from telegram import Chat, Message, Update, User

from bot.settings import GroupContext
from bot.turn import ConversationKey
from handlers.bot_context import Incoming

ALICE = User(7, "Alice", is_bot=False, language_code="zh-hans")


def _update(chat: Chat, thread: int | None = None) -> Update:
    message = Message(
        42,
        datetime.now(UTC),
        chat,
        from_user=ALICE,
        text="hi",
        message_thread_id=thread,
        is_topic_message=thread is not None,
    )
    return Update(1, message=message)


def test_a_private_message_continues_the_users_conversation_in_their_language():
    incoming = Incoming.of(_update(Chat(7, Chat.PRIVATE)), GroupContext.SHARED)
    assert incoming.key == ConversationKey(7, 7)
    assert (incoming.language, incoming.sender, incoming.thread_id) == ("zh", ALICE, None)


@pytest.mark.parametrize(
    ("mode", "key"),
    [
        (GroupContext.PER_USER, ConversationKey(-100, 7)),
        (GroupContext.SHARED, ConversationKey(-100, None)),
        (GroupContext.PER_TOPIC, ConversationKey(-100, None, 5)),
    ],
)
def test_a_group_message_continues_the_conversation_group_context_says(mode, key):
    incoming = Incoming.of(_update(Chat(-100, Chat.SUPERGROUP, is_forum=True), thread=5), mode)
    assert incoming.key == key and incoming.thread_id == 5


def test_an_update_without_a_message_continues_nothing():
    incoming = Incoming.of(Update(2), GroupContext.PER_USER)
    assert incoming.key is None and incoming.language == "en"
    with pytest.raises(LookupError):
        _ = incoming.conversation
