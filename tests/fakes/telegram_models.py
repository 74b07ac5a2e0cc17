"""Data of the fake Telegram: users, chats, stored messages, drafts, recorded calls, API errors."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.telegram_text import Entity, render_html

JSON = dict[str, Any]


class BotApiError(Exception):
    """An error answer of the Bot API: HTTP status and Telegram's exact description."""

    def __init__(self, status: int, description: str, parameters: JSON | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(description: str) -> BotApiError:
    """400 with the "Bad Request: " prefix Telegram puts in front (PTB strips it again)."""
    return BotApiError(400, f"Bad Request: {description}")


def forbidden(description: str) -> BotApiError:
    return BotApiError(403, f"Forbidden: {description}")


def too_many_requests(retry_after: int) -> BotApiError:
    return BotApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


@dataclass
class User:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    is_bot: bool = False

    def to_dict(self) -> JSON:
        data: JSON = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        if self.last_name:
            data["last_name"] = self.last_name
        if self.username:
            data["username"] = self.username
        if self.language_code:
            data["language_code"] = self.language_code
        return data


@dataclass
class Chat:
    id: int
    type: str  # "private", "group" or "supergroup"
    title: str | None = None
    user: User | None = None  # the other side of a private chat
    is_forum: bool = False
    username: str | None = None
    bot_status: str = "member"  # in groups: "member", "administrator", "left" or "kicked"
    blocked: bool = False  # a private chat whose user blocked the bot
    members: dict[int, str] = field(default_factory=dict)  # user id -> status
    topics: dict[int, str] = field(default_factory=dict)  # message_thread_id -> topic name

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    def to_dict(self) -> JSON:
        data: JSON = {"id": self.id, "type": self.type}
        if self.type == "private" and self.user is not None:
            data["first_name"] = self.user.first_name
            if self.user.last_name:
                data["last_name"] = self.user.last_name
            if self.user.username:
                data["username"] = self.user.username
        else:
            data["title"] = self.title or ""
            if self.username:
                data["username"] = self.username
            if self.is_forum:
                data["is_forum"] = True
        return data


@dataclass(frozen=True)
class MessageVersion:
    """What a message looked like from one moment on (its text or caption and keyboard)."""

    time: float
    text: str | None
    entities: tuple[JSON, ...]
    reply_markup: JSON | None

    @property
    def html(self) -> str:
        return render_html(self.text or "", self.entities)


@dataclass
class StoredMessage:
    chat_id: int
    message_id: int
    sender: User
    date: int
    text: str | None = None
    entities: list[Entity] = field(default_factory=list)
    caption: str | None = None
    caption_entities: list[Entity] = field(default_factory=list)
    document: JSON | None = None
    photo: list[JSON] | None = None  # PhotoSize dicts, smallest first
    media: JSON = field(default_factory=dict)  # any other content: {"video": {...}}, {"poll": {...}}...
    media_group_id: str | None = None  # items of one album share it
    reply_markup: JSON | None = None
    reply_to_message_id: int | None = None
    thread_id: int | None = None
    is_topic_message: bool = False
    edit_date: int | None = None
    deleted: bool = False
    service: JSON = field(default_factory=dict)  # e.g. {"forum_topic_created": {...}}
    reactions: list[JSON] = field(default_factory=list)  # the bot's reaction to this message
    versions: list[MessageVersion] = field(default_factory=list)
    from_bot: bool = False

    @property
    def visible_text(self) -> str:
        """The text, or the caption of a document."""
        return self.text if self.text is not None else (self.caption or "")

    @property
    def visible_entities(self) -> list[Entity]:
        return self.entities if self.text is not None else self.caption_entities

    @property
    def html(self) -> str:
        """Text with its formatting as Telegram HTML (``<b>``, ``<i>``, ``<a href>``, ...)."""
        return render_html(self.visible_text, self.visible_entities)

    @property
    def buttons(self) -> list[list[JSON]]:
        return list((self.reply_markup or {}).get("inline_keyboard", []))

    @property
    def callback_data(self) -> list[str]:
        return [b["callback_data"] for row in self.buttons for b in row if "callback_data" in b]

    def snapshot(self, time: float) -> None:
        self.versions.append(
            MessageVersion(
                time=time,
                text=self.visible_text,
                entities=tuple(self.visible_entities),
                reply_markup=self.reply_markup,
            )
        )


@dataclass(frozen=True)
class DraftRecord:
    """One sendMessageDraft call that Telegram accepted."""

    time: float
    chat_id: int
    draft_id: int
    text: str
    entities: tuple[JSON, ...]
    thread_id: int | None = None

    @property
    def html(self) -> str:
        return render_html(self.text, self.entities)


@dataclass(frozen=True)
class ChatActionRecord:
    time: float
    chat_id: int
    action: str
    thread_id: int | None = None


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    size: int
    file_name: str | None = None
    mime_type: str | None = None


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str | None
    content_type: str | None
    data: bytes

    def __repr__(self) -> str:
        return f"UploadedFile({self.filename!r}, {len(self.data)} bytes)"


@dataclass
class Call:
    """One request the bot made, with the answer it got."""

    method: str
    params: JSON
    time: float
    status: int = 0
    response: JSON | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def result(self) -> Any:
        return (self.response or {}).get("result")

    @property
    def description(self) -> str | None:
        return (self.response or {}).get("description")

    @property
    def chat_id(self) -> Any:
        return self.params.get("chat_id")

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.params.items() if k not in ("reply_markup",)}
        text = json.dumps(shown, ensure_ascii=False, default=repr)
        if len(text) > 160:
            text = text[:157] + "..."
        outcome = "ok" if self.ok else f"{self.status} {self.description}"
        return f"<{self.method} {text} -> {outcome}>"
