"""The parts of an update that a handler's registration guarantees, typed as present.

A command or message handler only ever receives updates with a message, a sender and a chat (PTB's
filters see to that), but `Update` types each as optional; these say so once instead of asserting
in every handler.
"""

from __future__ import annotations

from telegram import Chat, Message, Update, User


def message_of(update: Update) -> Message:
    message = update.effective_message
    if message is None:
        raise LookupError(f"update {update.update_id} has no message")
    return message


def sender_of(update: Update) -> User:
    user = update.effective_user
    if user is None:
        raise LookupError(f"update {update.update_id} has no sender")
    return user


def chat_of(update: Update) -> Chat:
    chat = update.effective_chat
    if chat is None:
        raise LookupError(f"update {update.update_id} has no chat")
    return chat
