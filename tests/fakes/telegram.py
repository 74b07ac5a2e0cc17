"""A fake Telegram Bot API server, strict like the real one, for end-to-end tests over loopback.

Start it, point python-telegram-bot at it, play the user, and look at what the bot did::

    async with FakeTelegram() as tg:
        app = (
            ApplicationBuilder().token(tg.token)
            .base_url(tg.base_url).base_file_url(tg.base_file_url).build()
        )
        ...  # add handlers
        async with app:
            await app.updater.start_polling(poll_interval=0, timeout=1)
            await app.start()
            alice = tg.user(first_name="Alice")
            await tg.send_text(alice, "/start")
            reply = await tg.wait_for_message(alice.id)
            assert "Hello" in reply.text
            await app.updater.stop()
            await app.stop()

What makes it strict: Telegram's limits and error texts (4096 UTF-16 units after entity parsing,
"can't parse entities" from real HTML / MarkdownV2 / Markdown parsers, "message is not modified",
flood control with 429 and retry_after, drafts only in private chats, 64-byte callback data, 20 MB
downloads, privacy mode in groups). See telegram_methods.TelegramRules and
telegram_flood.FloodLimits for the knobs; ``flood_control=False`` switches flood control off.
"""

# The waiting helpers take ``timeout=`` on purpose: it is the test-facing API (ASYNC109).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.telegram_flood import PENALISED_METHODS, FakeClock, FloodControl, FloodError, FloodLimits
from tests.fakes.telegram_methods import BotApi, TelegramRules
from tests.fakes.telegram_models import (
    JSON,
    BotApiError,
    Call,
    Chat,
    ChatActionRecord,
    DraftRecord,
    StoredFile,
    StoredMessage,
    UploadedFile,
    User,
    too_many_requests,
)
from tests.fakes.telegram_text import normalise, render_html, utf16_slice
from tests.fakes.telegram_webhook import WebhookDelivery
from tests.fakes.telegram_world import World
from tests.waiting import WAIT_CEILING

__all__ = [
    "BotApiError",
    "Call",
    "Chat",
    "ChatActionRecord",
    "DraftRecord",
    "FakeClock",
    "FakeTelegram",
    "FloodError",
    "FloodLimits",
    "StoredFile",
    "StoredMessage",
    "TelegramRules",
    "User",
    "render_html",
]

log = logging.getLogger("fake_telegram")

# How PTB encodes parameters: strings raw, everything else JSON. Decoding goes by field name so a
# text of "123" stays a string (see the Bot API reference digest, section 4).
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "reply_parameters",
        "link_preview_options",
        "allowed_updates",
        "commands",
        "scope",
        "reaction",
        "message_ids",
        "media",
    }
)
_INT_FIELDS = frozenset(
    {
        "chat_id",
        "message_id",
        "draft_id",
        "message_thread_id",
        "offset",
        "limit",
        "timeout",
        "user_id",
        "reply_to_message_id",
        "from_chat_id",
        "cache_time",
    }
)
_BOOL_FIELDS = frozenset(
    {
        "disable_notification",
        "protect_content",
        "show_alert",
        "drop_pending_updates",
        "is_big",
        "allow_sending_without_reply",
        "disable_web_page_preview",
        "disable_content_type_detection",
        "allow_paid_broadcast",
    }
)
# Real Bot API methods the fake does not implement: answered with 500 and listed in
# FakeTelegram.unimplemented, so a test notices instead of getting a misleading 404.
_UNIMPLEMENTED = frozenset(
    {
        "sendAudio",
        "sendVideo",
        "sendVoice",
        "sendAnimation",
        "sendSticker",
        "sendVideoNote",
        "sendMediaGroup",
        "sendLocation",
        "sendVenue",
        "sendContact",
        "sendPoll",
        "sendDice",
        "copyMessage",
        "copyMessages",
        "forwardMessage",
        "forwardMessages",
        "editMessageCaption",
        "editMessageMedia",
        "deleteMessages",
        "pinChatMessage",
        "unpinChatMessage",
        "unpinAllChatMessages",
        "getUserProfilePhotos",
        "banChatMember",
        "unbanChatMember",
        "restrictChatMember",
        "promoteChatMember",
        "setChatTitle",
        "setChatDescription",
        "getChatMemberCount",
        "answerInlineQuery",
        "setMyName",
        "getMyName",
        "setMyDescription",
        "getMyDescription",
        "setMyShortDescription",
        "getMyShortDescription",
        "setChatMenuButton",
        "getChatMenuButton",
        "createForumTopic",
        "editForumTopic",
        "closeForumTopic",
        "deleteForumTopic",
        "stopPoll",
        "setMyDefaultAdministratorRights",
        "getMyDefaultAdministratorRights",
        "exportChatInviteLink",
        "sendRichMessage",
        "sendRichMessageDraft",
        "getBusinessConnection",
        "getUserChatBoosts",
    }
)
_MAX_REQUEST_BYTES = 50 * 1024 * 1024 + 64 * 1024  # 50 MB uploads plus the form around them


DROPPED = -1  # the status of a call whose connection drop_next() cut
_ALBUM_IDS = itertools.count(13_000_000_001)  # media_group_id values, unique per run


@dataclass
class _ForcedFailure:
    method: str
    error: BotApiError
    remaining: int
    chat_id: int | None


def _decode_params(raw: dict[str, Any]) -> JSON:
    params: JSON = {}
    for name, value in raw.items():
        if isinstance(value, str):
            if name in _JSON_FIELDS:
                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # the method reports the parse error with Telegram's words
            elif name in _INT_FIELDS and value.strip().lstrip("-").isdigit():
                value = int(value)
            elif name in _BOOL_FIELDS and value.strip().lower() in ("true", "false"):
                value = value.strip().lower() == "true"
        params[name] = value
    return params


_MEDIA_KINDS = frozenset(
    {
        "video",
        "voice",
        "audio",
        "video_note",
        "sticker",
        "animation",
        "location",
        "venue",
        "contact",
        "poll",
        "dice",
        "game",
    }
)
_CAPTIONED_KINDS = frozenset({"video", "voice", "audio", "animation"})


class FakeTelegram:
    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "kimi_test_bot",
        *,
        bot_first_name: str = "Kimi",
        flood_control: bool = True,
        flood_limits: FloodLimits | None = None,
        rules: TelegramRules | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.rules = rules or TelegramRules()
        self.clock = clock
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.bot = User(id=bot_id, first_name=bot_first_name, username=bot_username, is_bot=True)
        self.world = World(self.bot, clock, wall_clock)
        self.flood_limits = flood_limits or FloodLimits()
        self.flood_limits.enabled = self.flood_limits.enabled and flood_control
        self.flood = FloodControl(self.flood_limits, clock)
        self.flood_errors: list[FloodError] = []
        self.api = BotApi(self.world, self.rules, self.flood, self.flood_errors.append)
        self._methods = {name.lower(): name for name in self.api.handlers}
        self._unimplemented = {name.lower(): name for name in _UNIMPLEMENTED}
        self.unimplemented: list[Call] = []
        self.filtered_by_privacy: list[JSON] = []  # group messages privacy mode kept from the bot
        self._calls: list[Call] = []
        self._forced: list[_ForcedFailure] = []
        self._drops: list[_ForcedFailure] = []
        self._changed_event = asyncio.Event()
        self._last_activity = 0.0
        self._next_user_id = 1_000_001
        self._next_group_id = -1_001_000_000_001
        self._runner: web.AppRunner | None = None
        self.port = 0
        # Webhook mode: once the bot calls setWebhook, updates are POSTed to it instead of polled.
        self.webhook = WebhookDelivery(self.world, self._changed)

    # ================================================================ server

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.webhook.start()

    async def stop(self) -> None:
        self.world.close()  # long polls return at once
        await self.webhook.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        """For ApplicationBuilder.base_url (PTB appends the token)."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._json(BotApiError(401, "Unauthorized").body(), 401)
        name = request.match_info["method"]
        method = self._methods.get(name.lower())
        try:
            params = await self._read_params(request)
        except BotApiError as error:
            return self._json(error.body(), error.status)
        call = Call(method=method or name, params=params, time=self.clock())
        self._calls.append(call)  # logged on arrival; status and response follow with the answer
        if method is None:
            if name.lower() in self._unimplemented:
                call.method = self._unimplemented[name.lower()]
                log.error("the fake Telegram does not implement %s", call.method)
                self.unimplemented.append(call)
                error = BotApiError(
                    500, f"Internal Server Error: the fake Telegram does not implement {name}"
                )
            else:
                error = BotApiError(404, "Not Found")
            self._record(call, error.status, error.body())
            return self._json(error.body(), error.status)

        self._record(call, 0, None)  # a long poll shows up while it waits
        if self._take_drop(method, params):
            self._record(call, DROPPED, None)
            if request.transport is not None:
                request.transport.abort()  # the client sees the connection reset, no answer
            return self._json(BotApiError(500, "dropped").body(), 500)
        try:
            forced = self._take_forced(method, params)
            if forced is not None:
                raise forced
            result = await self.api.dispatch(method, params)
            status, body = 200, {"ok": True, "result": result}
        except BotApiError as error:
            status, body = error.status, error.body()
        self._record(call, status, body)
        return self._json(body, status)

    async def _read_params(self, request: web.Request) -> JSON:
        raw: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            try:
                if request.content_type == "application/json":
                    body = await request.json()
                    if isinstance(body, dict):
                        raw.update(body)
                else:
                    form = await request.post()
                    for key, value in form.items():
                        if isinstance(value, web.FileField):
                            raw[key] = UploadedFile(value.filename, value.content_type, value.file.read())
                        else:
                            raw[key] = value
            except web.HTTPRequestEntityTooLarge:
                raise BotApiError(413, "Request Entity Too Large") from None
            except ValueError:
                raise BotApiError(400, "Bad Request: can't parse JSON encoded request") from None
        return _decode_params(raw)

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return self._json(BotApiError(401, "Unauthorized").body(), 401)
        stored = self.world.file_by_path(request.match_info["path"])
        if stored is None:
            return self._json(BotApiError(404, "Not Found").body(), 404)
        content_type = (stored.mime_type or "application/octet-stream").split(";")[0].strip()
        return web.Response(body=stored.data, content_type=content_type)

    @staticmethod
    def _json(body: JSON, status: int) -> web.Response:
        return web.Response(
            text=json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
        )

    def _record(self, call: Call, status: int, body: JSON | None) -> None:
        call.status, call.response = status, body
        if call.method != "getUpdates":
            self._last_activity = asyncio.get_running_loop().time()
        self._changed()

    def _changed(self) -> None:
        self._changed_event.set()
        self._changed_event = asyncio.Event()

    def _take_forced(self, method: str, params: JSON) -> BotApiError | None:
        for forced in self._forced:
            if forced.method != method or forced.remaining <= 0:
                continue
            if forced.chat_id is not None and params.get("chat_id") != forced.chat_id:
                continue
            forced.remaining -= 1
            if forced.error.status == 429:
                retry_after = int((forced.error.parameters or {}).get("retry_after", 1))
                chat_id = params.get("chat_id") if isinstance(params.get("chat_id"), int) else None
                self.flood_errors.append(FloodError(self.clock(), method, chat_id, retry_after, "forced"))
                if chat_id is not None and method in PENALISED_METHODS:
                    self.flood.penalise(chat_id, retry_after)
            return forced.error
        return None

    # ================================================================ forcing failures

    def fail_next(
        self,
        method: str,
        description: str = "Internal Server Error",
        *,
        status: int = 500,
        times: int = 1,
        chat_id: int | None = None,
        parameters: JSON | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail with exactly this answer, e.g.
        ``tg.fail_next("editMessageText", "Bad Request: message to edit not found", status=400)``."""
        self._forced.append(
            _ForcedFailure(method, BotApiError(status, description, parameters), times, chat_id)
        )

    def stop_failing(self) -> None:
        """Forget every failure and drop still planned (fail_next, flood_next, drop_next)."""
        self._forced.clear()
        self._drops.clear()

    def drop_next(self, method: str, *, times: int = 1, chat_id: int | None = None) -> None:
        """Cut the connection of the next ``times`` calls of ``method`` without answering (a network
        error for the client; Telegram did not process them). Their calls show status DROPPED."""
        self._drops.append(_ForcedFailure(method, BotApiError(0, "dropped"), times, chat_id))

    def _take_drop(self, method: str, params: JSON) -> bool:
        for drop in self._drops:
            if drop.method == method and drop.remaining > 0:
                if drop.chat_id is None or params.get("chat_id") == drop.chat_id:
                    drop.remaining -= 1
                    return True
        return False

    def flood_next(
        self, method: str, retry_after: int = 5, *, times: int = 1, chat_id: int | None = None
    ) -> None:
        """Make the next ``times`` calls of ``method`` get 429 "retry after N" (PTB: RetryAfter)."""
        self._forced.append(_ForcedFailure(method, too_many_requests(retry_after), times, chat_id))

    # ================================================================ the people and chats

    def user(
        self,
        id: int | None = None,
        first_name: str = "Alice",
        language_code: str | None = "en",
        username: str | None = None,
        last_name: str | None = None,
        is_bot: bool = False,
    ) -> User:
        if id is None:
            id = self._next_user_id
            self._next_user_id += 1
        user = User(id, first_name, last_name, username, language_code, is_bot)
        self.world.users[id] = user
        return user

    def private_chat(self, user: User) -> Chat:
        """The private chat of the bot with ``user`` (created as if the user pressed Start)."""
        self.world.users.setdefault(user.id, user)
        chat = self.world.chats.get(user.id)
        if chat is None:
            chat = Chat(id=user.id, type="private", user=user)
            self.world.chats[user.id] = chat
        return chat

    def group(
        self,
        id: int | None = None,
        title: str = "Test group",
        forum: bool = False,
        *,
        type: str | None = None,
        username: str | None = None,
        bot_status: str = "member",
    ) -> Chat:
        """A group with the bot in it (``bot_status="left"`` for one it has not joined yet).

        Ids starting with -100 are supergroups, other negative ids basic groups; forums are
        supergroups."""
        if id is None:
            id = self._next_group_id
            self._next_group_id -= 1
        if id >= 0:
            raise ValueError("group ids are negative")
        kind = type or ("supergroup" if forum or str(id).startswith("-100") else "group")
        chat = Chat(id=id, type=kind, title=title, is_forum=forum, username=username, bot_status=bot_status)
        self.world.chats[id] = chat
        return chat

    def set_member(self, chat: Chat | int, user: User, status: str = "member") -> None:
        """Set a user's status in a group: member, administrator, creator, left or kicked."""
        self._chat(chat).members[user.id] = status
        self.world.users.setdefault(user.id, user)

    def block_bot(self, user: User, blocked: bool = True) -> None:
        """The user blocks the bot: sends to them fail with 403 "bot was blocked by the user"."""
        self.private_chat(user).blocked = blocked

    async def create_topic(self, group: Chat | int, name: str, by: User | None = None) -> int:
        """Create a forum topic; returns its message_thread_id (the id of the service message)."""
        chat = self._chat(group)
        if not chat.is_forum:
            raise ValueError("topics exist only in forum groups")
        sender = by or self.user(first_name="Admin")
        self.set_member(chat, sender, chat.members.get(sender.id, "member"))
        message = self.world.new_message(
            chat,
            sender,
            service={"forum_topic_created": {"name": name, "icon_color": 7322096}},
        )
        message.thread_id = message.message_id
        message.is_topic_message = True
        chat.topics[message.message_id] = name
        self._deliver(chat, message)
        return message.message_id

    # ================================================================ the user acts

    async def send_text(
        self,
        user: User,
        text: str,
        chat: Chat | int | None = None,
        reply_to: StoredMessage | JSON | int | None = None,
        thread_id: int | None = None,
        entities: list[JSON] | None = None,
    ) -> JSON:
        """The user writes ``text`` (in their private chat with the bot unless ``chat`` is given).

        Entities Telegram detects (bot_command, mention, url, hashtag, ...) are added like Telegram
        does. Returns the Message dict; whether the bot receives it depends on privacy mode in groups.
        """
        target = self._chat(chat) if chat is not None else self.private_chat(user)
        formatted = normalise(text, list(entities or []), detect_entities=True)
        message = self._user_message(
            target, user, reply_to, thread_id, text=formatted.text, entities=formatted.entities
        )
        return self._deliver(target, message)

    async def send_document(
        self,
        user: User,
        data: bytes,
        file_name: str,
        mime_type: str | None = None,
        caption: str | None = None,
        chat: Chat | int | None = None,
        reply_to: StoredMessage | JSON | int | None = None,
        file_size: int | None = None,
        thread_id: int | None = None,
        same_file_as: JSON | None = None,
    ) -> JSON:
        """The user sends a file. ``file_size`` overrides the size Telegram reports (and getFile
        checks against 20 MB) without allocating that much. ``same_file_as`` (a message returned by
        an earlier send_document) sends that file again, as a forward or a re-upload of the same
        file does: Telegram keeps its file_id and file_unique_id (``data`` is then ignored)."""
        target = self._chat(chat) if chat is not None else self.private_chat(user)
        if same_file_as is not None:
            stored = self.world.files[same_file_as["document"]["file_id"]]
        else:
            stored = self.register_file(data, file_name=file_name, mime_type=mime_type, file_size=file_size)
        document: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "file_size": stored.size,
        }
        if mime_type:
            document["mime_type"] = mime_type
        caption_text = normalise(caption, [], allow_empty=True) if caption else None
        message = self._user_message(
            target,
            user,
            reply_to,
            thread_id,
            document=document,
            caption=caption_text.text if caption_text else None,
            caption_entities=caption_text.entities if caption_text else [],
        )
        return self._deliver(target, message)

    async def send_photo(
        self,
        user: User,
        data: bytes,
        caption: str | None = None,
        chat: Chat | int | None = None,
        reply_to: StoredMessage | JSON | int | None = None,
        thread_id: int | None = None,
        media_group_id: str | None = None,
    ) -> JSON:
        """The user sends a photo: Telegram delivers it in several sizes, smallest first, each a file
        of its own (the thumbnail here is a stand-in of a few bytes)."""
        target = self._chat(chat) if chat is not None else self.private_chat(user)
        thumbnail = self.world.add_file(data[:64], file_name=None, mime_type=None, size=None, kind="photos")
        full = self.world.add_file(data, file_name=None, mime_type=None, size=None, kind="photos")
        sizes = [
            {
                "file_id": f.file_id,
                "file_unique_id": f.file_unique_id,
                "width": w,
                "height": h,
                "file_size": f.size,
            }
            for f, w, h in ((thumbnail, 90, 60), (full, 1280, 853))
        ]
        caption_text = normalise(caption, [], allow_empty=True) if caption else None
        message = self._user_message(
            target,
            user,
            reply_to,
            thread_id,
            photo=sizes,
            media_group_id=media_group_id,
            caption=caption_text.text if caption_text else None,
            caption_entities=caption_text.entities if caption_text else [],
        )
        return self._deliver(target, message)

    async def send_media(
        self,
        user: User,
        kind: str,
        caption: str | None = None,
        chat: Chat | int | None = None,
        reply_to: StoredMessage | JSON | int | None = None,
        thread_id: int | None = None,
    ) -> JSON:
        """The user sends a message of another kind: video, voice, audio, video_note, sticker,
        location, venue, contact, poll, dice, animation or game, with the fields Telegram sends.
        An animation carries a ``document`` too and a venue a ``location``, as in the Bot API; only
        videos, voice, audio, animations and documents can have a caption."""
        if kind not in _MEDIA_KINDS:
            raise ValueError(f"unknown message kind {kind!r}; one of {sorted(_MEDIA_KINDS)}")
        if caption is not None and kind not in _CAPTIONED_KINDS:
            raise ValueError(f"a {kind} has no caption in Telegram")
        target = self._chat(chat) if chat is not None else self.private_chat(user)
        media = self._media_fields(kind)
        caption_text = normalise(caption, [], allow_empty=True) if caption else None
        message = self._user_message(
            target,
            user,
            reply_to,
            thread_id,
            media=media,
            caption=caption_text.text if caption_text else None,
            caption_entities=caption_text.entities if caption_text else [],
        )
        return self._deliver(target, message)

    def _media_fields(self, kind: str) -> JSON:
        def file(name: str | None, mime: str | None, **extra: Any) -> JSON:
            stored = self.world.add_file(
                b"\0" * 256, file_name=name, mime_type=mime, size=None, kind=kind + "s"
            )
            fields: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
            fields.update(extra)
            fields["file_size"] = stored.size
            if name:
                fields["file_name"] = name
            if mime:
                fields["mime_type"] = mime
            return fields

        location = {"latitude": 31.2304, "longitude": 121.4737}
        match kind:
            case "video":
                return {"video": file("clip.mp4", "video/mp4", width=640, height=360, duration=5)}
            case "voice":
                return {"voice": file(None, "audio/ogg", duration=3)}
            case "audio":
                return {"audio": file("song.mp3", "audio/mpeg", duration=180, performer="Band", title="Song")}
            case "video_note":
                return {"video_note": file(None, None, length=240, duration=4)}
            case "sticker":
                sticker = file(None, None, type="regular", width=512, height=512, is_animated=False)
                sticker.update(is_video=False, emoji="👍")
                return {"sticker": sticker}
            case "animation":
                animation = file("cat.gif.mp4", "video/mp4", width=320, height=240, duration=2)
                document = {k: animation[k] for k in ("file_id", "file_unique_id", "file_name", "mime_type")}
                return {"animation": animation, "document": document}
            case "location":
                return {"location": location}
            case "venue":
                venue = {"location": location, "title": "The Bund", "address": "Zhongshan East 1st Rd"}
                return {"venue": venue, "location": location}
            case "contact":
                return {"contact": {"phone_number": "+8613800000000", "first_name": "Bo", "user_id": 777}}
            case "poll":
                # Bot API 9.6 gave every option a persistent_id (PTB 22.8 requires it).
                options = [
                    {"text": t, "voter_count": 0, "persistent_id": str(n)}
                    for n, t in enumerate(("Tea", "Coffee"))
                ]
                poll = {"id": "5000000000000000001", "question": "Tea or coffee?", "options": options}
                poll.update(total_voter_count=0, is_closed=False, is_anonymous=True, type="regular")
                # Required since Bot API 9.6 / 10.0 (PTB 22.8 refuses a poll without them).
                poll.update(allows_multiple_answers=False, allows_revoting=True, members_only=False)
                return {"poll": poll}
            case "dice":
                return {"dice": {"emoji": "🎲", "value": 4}}
            case "game":
                photo = [{"file_id": "AgACAgame", "file_unique_id": "AQADgame", "width": 640, "height": 360}]
                return {"game": {"title": "Snake", "description": "Eat the apples", "photo": photo}}
        raise AssertionError(kind)

    async def send_album(
        self,
        user: User,
        photos: list[bytes],
        caption: str | None = None,
        chat: Chat | int | None = None,
        reply_to: StoredMessage | JSON | int | None = None,
    ) -> list[JSON]:
        """The user sends several photos at once: Telegram delivers one message per photo, all
        with the same media_group_id, the caption on the first (each may reach the bot on its own)."""
        group_id = str(next(_ALBUM_IDS))
        sent = []
        for index, data in enumerate(photos):
            sent.append(
                await self.send_photo(
                    user,
                    data,
                    caption=caption if index == 0 else None,
                    chat=chat,
                    reply_to=reply_to,
                    media_group_id=group_id,
                )
            )
        return sent

    async def edit_text(self, message: StoredMessage | JSON, text: str) -> JSON:
        """The user edits one of their messages: the bot gets an edited_message update."""
        stored = self._stored(message)
        formatted = normalise(text, [], detect_entities=True)
        stored.text, stored.entities = formatted.text, formatted.entities
        stored.edit_date = int(self.world.wall_clock())
        stored.snapshot(self.clock())
        payload = self.world.message_dict(stored)
        chat = self.world.chats[stored.chat_id]
        if self._bot_sees(chat, stored):
            self.world.push_update("edited_message", payload)
        self._changed()
        await asyncio.sleep(0)
        return payload

    async def press_button(
        self,
        user: User,
        message: StoredMessage | JSON | int,
        callback_data: str,
        chat: Chat | int | None = None,
    ) -> str:
        """The user presses the inline button carrying ``callback_data`` under ``message``.

        Only buttons that are currently shown can be pressed. Returns the callback query id."""
        stored = self._stored(message, chat)
        if callback_data not in stored.callback_data:
            raise AssertionError(
                f"message {stored.message_id} shows no button with callback_data {callback_data!r}; "
                f"it has {stored.callback_data}"
            )
        query_id = self.world.new_callback_query_id()
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "message": self.world.message_dict(stored),
            "chat_instance": str(abs(stored.chat_id) * 7919 % 10**18),
            "data": callback_data,
        }
        self.world.callback_queries[query_id] = {
            "query": query,
            "answered": False,
            "answer": None,
            "time": self.clock(),  # answerCallbackQuery fails once rules.callback_answer_timeout passed
        }
        self.world.push_update("callback_query", query)
        self._changed()
        await asyncio.sleep(0)
        return query_id

    async def press_stale_button(
        self,
        user: User,
        message: StoredMessage | JSON | int,
        callback_data: str,
        chat: Chat | int | None = None,
    ) -> str:
        """A press with ``callback_data`` the message does not (or no longer) show: a client that
        kept an old keyboard, or a button of an earlier version of the bot. Returns the query id."""
        stored = self._stored(message, chat)
        query_id = self.world.new_callback_query_id()
        query = {
            "id": query_id,
            "from": user.to_dict(),
            "message": self.world.message_dict(stored),
            "chat_instance": str(abs(stored.chat_id) * 7919 % 10**18),
            "data": callback_data,
        }
        self.world.callback_queries[query_id] = {
            "query": query,
            "answered": False,
            "answer": None,
            "time": self.clock(),
        }
        self.world.push_update("callback_query", query)
        self._changed()
        await asyncio.sleep(0)
        return query_id

    async def bot_added_to_group(self, group: Chat | int, by_user: User, *, as_admin: bool = False) -> None:
        """``by_user`` adds the bot to ``group``: my_chat_member and new_chat_members updates."""
        chat = self._chat(group)
        old = chat.bot_status if chat.bot_status in ("left", "kicked") else "left"
        chat.bot_status = "administrator" if as_admin else "member"
        self.set_member(chat, by_user, chat.members.get(by_user.id, "member"))
        self._push_my_chat_member(chat, by_user, old, chat.bot_status)
        message = self.world.new_message(chat, by_user, service={"new_chat_members": [self.bot.to_dict()]})
        self.world.push_update("message", self.world.message_dict(message))
        self._changed()
        await asyncio.sleep(0)

    async def bot_removed_from_group(self, group: Chat | int, by_user: User) -> None:
        chat = self._chat(group)
        old = chat.bot_status
        chat.bot_status = "kicked"
        self._push_my_chat_member(chat, by_user, old, "kicked")
        self._changed()
        await asyncio.sleep(0)

    def register_file(
        self,
        data: bytes,
        *,
        file_name: str | None = None,
        mime_type: str | None = None,
        file_size: int | None = None,
    ) -> StoredFile:
        """A file on Telegram's servers that getFile and the download route know."""
        return self.world.add_file(
            data, file_name=file_name, mime_type=mime_type, size=file_size, kind="documents"
        )

    # ================================================================ what happened

    def calls(self, method: str | None = None, *, include_polling: bool = False) -> list[Call]:
        """Recorded requests (without getUpdates unless asked), oldest first."""
        return [
            c
            for c in self._calls
            if (method is None or c.method == method) and (include_polling or c.method != "getUpdates")
        ]

    def mark(self) -> int:
        """A position in the call log, for ``wait_for(..., since=tg.mark())``."""
        return len(self._calls)

    def messages(
        self, chat: Chat | int, *, include_user: bool = False, include_deleted: bool = False
    ) -> list[StoredMessage]:
        """Current state of the bot's messages in a chat (text, entities, keyboard, versions)."""
        return [
            m
            for m in self.world.chat_messages(self._chat_id(chat))
            if (include_user or m.from_bot) and (include_deleted or not m.deleted)
        ]

    def message(self, chat: Chat | int, message_id: int) -> StoredMessage:
        found = self.world.messages.get(self._chat_id(chat), {}).get(message_id)
        if found is None:
            raise KeyError(f"no message {message_id} in chat {self._chat_id(chat)}")
        return found

    def bot_texts(self, chat: Chat | int) -> list[str]:
        """The final text (or caption) of each bot message still in the chat, in order."""
        return [m.visible_text for m in self.messages(chat)]

    def visible_text(self, chat: Chat | int) -> str:
        """What a user reads from the bot in this chat: its messages' final texts, joined by newlines."""
        return "\n".join(self.bot_texts(chat))

    def drafts(self, chat: Chat | int) -> list[DraftRecord]:
        """Every draft the bot streamed to the chat, with times (Telegram drops a draft 30 s after
        its last update, so gaps above 30 s while streaming mean the user lost the preview)."""
        return list(self.world.drafts.get(self._chat_id(chat), []))

    def current_draft(self, chat: Chat | int, thread_id: int | None = None) -> DraftRecord | None:
        """The draft the user sees now: cleared by a bot message, gone after ``draft_ttl``."""
        draft = self.world.active_drafts.get((self._chat_id(chat), thread_id))
        if draft is None or self.clock() - draft.time > self.rules.draft_ttl:
            return None
        return draft

    def draft_gaps(self, chat: Chat | int) -> list[float]:
        """Seconds between consecutive draft updates in the chat."""
        times = [d.time for d in self.drafts(chat)]
        return [b - a for a, b in zip(times, times[1:], strict=False)]

    def chat_actions(self, chat: Chat | int) -> list[ChatActionRecord]:
        chat_id = self._chat_id(chat)
        return [a for a in self.world.chat_actions if a.chat_id == chat_id]

    def commands(self, language_code: str | None = None, scope: JSON | None = None) -> list[JSON]:
        """The bot's command menu for a scope (default scope) and language ("" / None: all)."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True), language_code or ""
        return [dict(c) for c in self.world.commands.get(key, [])]

    def callback_answer(self, query_id: str) -> JSON | None:
        """How the bot answered a button press (text, show_alert), or None if it did not."""
        return self.world.callback_queries[query_id]["answer"]

    @property
    def updates_delivered(self) -> list[JSON]:
        return list(self.world.delivered_updates)

    def update_ids(self, *, after: int = 0) -> list[int]:
        """The ids of every update queued for the bot (above ``after``), oldest first."""
        return [u for u in self.world.pushed_update_ids if u > after]

    @property
    def confirmed_update_id(self) -> int:
        """The highest update id the bot confirmed with a later getUpdates offset (0: none yet).

        Confirmed means fetched for good (Telegram will not send it again), not handled: the
        bot's own signal for that is tests.harness.RunningBot.caught_up."""
        return self.world.confirmed_update_id

    async def wait_confirmed(self, update_id: int | None = None, timeout: float = 10.0) -> None:
        """Wait until the bot confirmed ``update_id`` (default: every update queued so far)."""
        wanted = update_id if update_id is not None else max(self.world.pushed_update_ids, default=0)
        await self.wait_until(
            lambda: self.world.confirmed_update_id >= wanted, timeout, f"getUpdates offset > {wanted}"
        )

    def assert_no_flood(self) -> None:
        if self.flood_errors:
            raise AssertionError(f"the bot hit flood control: {self.flood_errors}")

    @staticmethod
    def render(message: StoredMessage | DraftRecord) -> str:
        """A message's text with its formatting as Telegram HTML (``<b>``, ``<i>``, ``<a>``...)."""
        return message.html

    # ================================================================ waiting

    async def wait_until(
        self,
        condition: Callable[[], Any],
        timeout: float = 10.0,
        description: str = "",
    ) -> Any:
        """Wait until ``condition()`` returns something truthy (checked on every change).

        ``timeout`` is a ceiling for a broken bot, never below WAIT_CEILING: see there."""
        timeout = max(timeout, WAIT_CEILING)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = condition()
            if result:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                recent = "\n  ".join(repr(c) for c in self.calls()[-12:])
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {description or condition}; "
                    f"recent calls:\n  {recent}"
                )
            event = self._changed_event
            try:
                await asyncio.wait_for(event.wait(), min(remaining, 0.25))
            except TimeoutError:
                pass

    async def wait_for(
        self,
        predicate: Callable[[Call], bool],
        timeout: float = 10.0,
        since: int = 0,
    ) -> Call:
        """Wait for a finished call (answered, successfully or not) matching ``predicate``."""
        try:
            description = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            description = repr(predicate)

        def find() -> Call | None:
            return next((c for c in self._calls[since:] if c.status and predicate(c)), None)

        return await self.wait_until(find, timeout, description)

    async def wait_for_message(
        self,
        chat: Chat | int,
        predicate: Callable[[StoredMessage], bool] | None = None,
        timeout: float = 10.0,
    ) -> StoredMessage:
        """Wait for a bot message in the chat that came after the user's latest message (at the
        time of the call) and satisfies ``predicate`` in its current state (edits included)."""
        chat_id = self._chat_id(chat)
        baseline = max((m.message_id for m in self.world.chat_messages(chat_id) if not m.from_bot), default=0)

        def find() -> StoredMessage | None:
            for message in self.world.chat_messages(chat_id):
                if message.from_bot and not message.deleted and message.message_id > baseline:
                    if predicate is None or predicate(message):
                        return message
            return None

        return await self.wait_until(find, timeout, f"a bot message in chat {chat_id}")

    async def wait_idle(self, quiet: float = 0.3, timeout: float = 10.0) -> None:
        """Wait until the bot made no call (other than getUpdates) for ``quiet`` seconds.

        Never use it before asserting that something did NOT happen: updates are handled
        concurrently and a handler may be busy without calling Telegram. Wait for the event
        instead (tests.harness.RunningBot.caught_up: every update handled)."""
        timeout = max(timeout, WAIT_CEILING)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            idle_for = loop.time() - self._last_activity
            if idle_for >= quiet:
                return
            if loop.time() >= deadline:
                raise AssertionError(f"the bot was still busy after {timeout}s")
            await asyncio.sleep(min(quiet - idle_for, max(0.0, deadline - loop.time())) + 0.001)

    # ================================================================ helpers

    def _chat(self, chat: Chat | int | JSON) -> Chat:
        chat_id = self._chat_id(chat)
        if chat_id not in self.world.chats:
            raise KeyError(f"unknown chat {chat_id}")
        return self.world.chats[chat_id]

    @staticmethod
    def _chat_id(chat: Chat | int | JSON | User) -> int:
        if isinstance(chat, (Chat, User)):
            return chat.id
        if isinstance(chat, dict):
            return int(chat["id"])
        return int(chat)

    def _stored(self, message: StoredMessage | JSON | int, chat: Chat | int | None = None) -> StoredMessage:
        if isinstance(message, StoredMessage):
            return message
        if isinstance(message, dict):
            return self.message(message["chat"]["id"], message["message_id"])
        if chat is None:
            raise ValueError("give the chat when passing a message id")
        return self.message(chat, message)

    def _user_message(
        self,
        chat: Chat,
        user: User,
        reply_to: StoredMessage | JSON | int | None,
        thread_id: int | None,
        **fields: Any,
    ) -> StoredMessage:
        self.world.users.setdefault(user.id, user)
        if chat.is_group and chat.members.get(user.id) in (None, "left", "kicked"):
            chat.members[user.id] = "member"
        reply_id = None
        if reply_to is not None:
            reply_id = self._stored(reply_to, chat).message_id if not isinstance(reply_to, int) else reply_to
        if thread_id is not None:
            if thread_id not in chat.topics:
                raise ValueError(f"chat {chat.id} has no topic {thread_id}")
            if reply_id is None:
                reply_id = thread_id  # in a topic every message replies to the topic's first message
        elif reply_id is not None:
            replied = self.world.message(chat.id, reply_id)
            thread_id = replied.thread_id if replied else None
        return self.world.new_message(
            chat,
            user,
            reply_to_message_id=reply_id,
            thread_id=thread_id,
            is_topic_message=thread_id is not None,
            **fields,
        )

    def _deliver(self, chat: Chat, message: StoredMessage) -> JSON:
        payload = self.world.message_dict(message)
        if self._bot_sees(chat, message):
            self.world.push_update("message", payload)
        else:
            self.filtered_by_privacy.append(payload)
        self._changed()
        return payload

    def _bot_sees(self, chat: Chat, message: StoredMessage) -> bool:
        """Privacy mode (Bots FAQ): in groups the bot gets commands, mentions of it, replies to
        its messages and service messages, or everything if it is an admin or privacy is off."""
        if chat.type == "private":
            return not chat.blocked
        if chat.bot_status in ("left", "kicked"):
            return False
        if not self.rules.privacy_mode or chat.bot_status == "administrator" or message.service:
            return True
        username = (self.bot.username or "").lower()
        for entity in message.visible_entities:
            part = utf16_slice(message.visible_text, entity["offset"], entity["length"])
            if entity["type"] == "bot_command":
                return "@" not in part or part.split("@", 1)[1].lower() == username
            if entity["type"] == "mention" and part[1:].lower() == username:
                return True
            if entity["type"] == "text_mention" and entity.get("user", {}).get("id") == self.bot.id:
                return True
        if message.reply_to_message_id is not None and message.reply_to_message_id != message.thread_id:
            replied = self.world.messages.get(chat.id, {}).get(message.reply_to_message_id)
            return bool(replied and replied.from_bot)
        return False

    def _push_my_chat_member(self, chat: Chat, by_user: User, old: str, new: str) -> None:
        self.world.push_update(
            "my_chat_member",
            {
                "chat": chat.to_dict(),
                "from": by_user.to_dict(),
                "date": int(self.world.wall_clock()),
                "old_chat_member": self.api.member_dict(chat, self.bot.id, old),
                "new_chat_member": self.api.member_dict(chat, self.bot.id, new),
            },
        )
