"""The Bot API methods of the fake Telegram, with Telegram's validation and error texts.

Error texts come from Telegram itself where they are known: TDLib / telegram-bot-api sources and
live probes of api.telegram.org published by client libraries. The Bot API lower-cases the first
letter of a TDLib message unless it is an UPPER_CASE code ("BUTTON_DATA_INVALID" stays as is);
``_bad`` applies the same rule. Texts that could not be confirmed are marked "unconfirmed" and can
be overridden through TelegramRules where a test cares.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.telegram_flood import FloodControl, FloodError
from tests.fakes.telegram_markup import MarkupError, parse
from tests.fakes.telegram_models import (
    JSON,
    BotApiError,
    Chat,
    ChatActionRecord,
    DraftRecord,
    StoredMessage,
    UploadedFile,
    bad_request,
    forbidden,
    too_many_requests,
)
from tests.fakes.telegram_text import (
    AUTO_TYPES,
    KNOWN_TYPES,
    Entity,
    FormattedText,
    TextError,
    check_link,
    link_user_id,
    normalise,
    utf16_len,
)
from tests.fakes.telegram_world import World

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same as a "
    "current content and reply markup of the message"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
# Reactions a bot may set (Bot API ReactionTypeEmoji).
REACTION_EMOJI = frozenset(
    (
        "👍 👎 ❤ 🔥 🥰 👏 😁 🤔 🤯 😱 🤬 😢 🎉 🤩 🤮 💩 🙏 👌 🕊 🤡 🥱 🥴 😍 🐳 ❤\u200d🔥 🌚 🌭 💯 "
        "🤣 ⚡ 🍌 🏆 💔 🤨 😐 🍓 🍾 💋 🖕 😈 😴 😭 🤓 👻 👨\u200d💻 👀 🎃 🙈 😇 😨 🤝 ✍ 🤗 🫡 🎅 "
        "🎄 ☃ 💅 🤪 🗿 🆒 💘 🙉 🦄 😘 💊 🙊 😎 👾 🤷\u200d♂ 🤷 🤷\u200d♀ 😡"
    ).split()
)
COMMAND_SCOPES = frozenset(
    {
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    }
)


@dataclass
class TelegramRules:
    """Switches for behaviour that is unknown, undocumented or deliberately stricter than Telegram."""

    # Telegram's docs say a bare "&" must be escaped in HTML; TDLib accepts it. Strict by default.
    strict_html_ampersand: bool = True
    # Telegram adds url/mention/hashtag/bot_command/... entities to the messages a bot sends.
    detect_entities: bool = True
    # With privacy mode on (the default for bots) group messages reach the bot only when meant for it.
    privacy_mode: bool = True
    # sendMessageDraft outside private chats: observed as TEXTDRAFT_PEER_INVALID in forum groups.
    draft_group_error: str = "Bad Request: TEXTDRAFT_PEER_INVALID"
    draft_ttl: float = 30.0  # a draft disappears this many seconds after its last update
    max_text_length: int = 4096
    max_caption_length: int = 1024
    max_callback_data: int = 64
    max_buttons: int = 100  # unconfirmed: more buttons give "reply markup is too long"
    max_download_size: int = 20 * 1024 * 1024  # getFile refuses bigger files
    max_callback_answer_text: int = 200
    # sendPhoto: "at most 10 MB in size; width and height must not exceed 10000 in total; width
    # and height ratio must be at most 20" (the Bot API reference).
    max_photo_size: int = 10 * 1024 * 1024
    max_photo_dimensions_sum: int = 10000
    max_photo_ratio: float = 20.0
    largest_photo_side: int = 1280  # the biggest size Telegram keeps of a sent photo ("y")
    # Telegram refuses a webhook URL that is not HTTPS; tests deliver to http://127.0.0.1.
    webhook_requires_https: bool = True
    # A button press must be answered soon: later, answerCallbackQuery fails with QUERY_INVALID
    # ("query is too old..."). Telegram's clients give up after about 15 s.
    callback_answer_timeout: float = 15.0


def lower_first(message: str) -> str:
    """telegram-bot-api's fail_query_with_error: lower-case the first letter unless it is a code."""
    if len(message) >= 2 and (message[1] == "_" or message[1].isupper()):
        return message
    return message[:1].lower() + message[1:]


def _bad(message: str) -> BotApiError:
    return bad_request(lower_first(message))


def _int(value: Any) -> int | None:
    """An integer parameter as the Bot API reads it; garbage reads as 0 (td::to_integer)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except ValueError:
        return 0


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _json_field(value: Any, error: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(error) from None
    return value


class BotApi:
    def __init__(
        self,
        world: World,
        rules: TelegramRules,
        flood: FloodControl,
        on_flood: Callable[[FloodError], None],
    ) -> None:
        self.world = world
        self.rules = rules
        self.flood = flood
        self.on_flood = on_flood
        self.handlers: dict[str, Callable[[JSON], Awaitable[Any]]] = {
            name: getattr(self, name)
            for name in (
                "getMe",
                "logOut",
                "close",
                "getUpdates",
                "deleteWebhook",
                "setWebhook",
                "getWebhookInfo",
                "sendMessage",
                "editMessageText",
                "editMessageReplyMarkup",
                "sendMessageDraft",
                "deleteMessage",
                "sendChatAction",
                "answerCallbackQuery",
                "setMyCommands",
                "getMyCommands",
                "deleteMyCommands",
                "getFile",
                "sendDocument",
                "sendPhoto",
                "leaveChat",
                "getChat",
                "getChatMember",
                "getChatAdministrators",
                "setMessageReaction",
            )
        }

    async def dispatch(self, method: str, params: JSON) -> Any:
        return await self.handlers[method](params)

    # ================================================================ shared checks

    def _chat(self, params: JSON) -> Chat:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        if isinstance(raw, str) and raw.strip().startswith("@"):
            name = raw.strip()[1:].lower()
            chat = next((c for c in self.world.chats.values() if (c.username or "").lower() == name), None)
            if chat is None:
                raise bad_request("chat not found")
            return chat
        chat_id = _int(raw)
        chat = self.world.chats.get(chat_id or 0)
        if chat is None:
            if chat_id in self.world.users and chat_id != self.world.bot.id:
                raise forbidden("bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        return chat

    @staticmethod
    def _check_can_write(chat: Chat) -> None:
        if chat.type == "private":
            if chat.blocked:
                raise forbidden("bot was blocked by the user")
            return
        kind = "supergroup chat" if chat.type == "supergroup" else "group chat"
        if chat.bot_status == "kicked":
            raise forbidden(f"bot was kicked from the {kind}")
        if chat.bot_status == "left":
            raise forbidden(f"bot is not a member of the {kind}")

    def _limit(self, method: str, chat: Chat) -> None:
        refusal = self.flood.check(method, chat.id, chat.is_group)
        if refusal is None:
            return
        retry_after, reason = refusal
        self.on_flood(FloodError(self.world.clock(), method, chat.id, retry_after, reason))
        raise too_many_requests(retry_after)

    def _message_id(self, params: JSON) -> int:
        message_id = _int(params.get("message_id"))
        if not message_id:
            raise bad_request("message identifier is not specified")
        return message_id

    def _thread(self, params: JSON, chat: Chat) -> int | None:
        thread_id = _int(params.get("message_thread_id"))
        if not thread_id:
            return None
        if not chat.is_forum or thread_id not in chat.topics:
            raise bad_request("message thread not found")
        return thread_id

    # ---------------------------------------------------------------- text

    def _lookup_user(self, user_id: int) -> JSON | None:
        user = self.world.users.get(user_id)
        return user.to_dict() if user else None

    def _formatted(
        self,
        params: JSON,
        text_field: str,
        entities_field: str,
        *,
        allow_empty: bool,
        max_length: int,
        too_long: str,
    ) -> FormattedText:
        raw = params.get(text_field)
        text = "" if raw is None else str(raw)
        parse_mode = params.get("parse_mode")
        if parse_mode:
            try:
                text, entities = parse(
                    text,
                    str(parse_mode),
                    users=self._lookup_user,
                    strict_ampersand=self.rules.strict_html_ampersand,
                )
            except ValueError:
                raise bad_request("unsupported parse_mode") from None
            except MarkupError as error:
                if error.message == "User not found":
                    raise bad_request("user not found") from None
                raise bad_request(f"can't parse entities: {error.message}") from None
        else:
            entities = self._explicit_entities(params.get(entities_field))
        try:
            formatted = normalise(
                text, entities, allow_empty=allow_empty, detect_entities=self.rules.detect_entities
            )
        except TextError as error:
            raise _bad(error.description) from None
        if utf16_len(formatted.text) > max_length:
            raise bad_request(too_long)
        return formatted

    def _explicit_entities(self, raw: Any) -> list[Entity]:
        if raw is None or raw == "":
            return []
        value = _json_field(raw, "can't parse entities JSON object")
        if not isinstance(value, list):
            raise bad_request("can't parse entities JSON object")  # unconfirmed wording
        entities = []
        for item in value:
            try:
                entity = self._entity(item)
            except TextError as error:
                raise bad_request(f"can't parse MessageEntity: {error.description}") from None
            if entity is not None:
                entities.append(entity)
        return entities

    def _entity(self, item: Any) -> Entity | None:
        """One MessageEntity as telegram-bot-api's get_text_entity reads it."""
        if not isinstance(item, dict):
            raise TextError("expected an Object")
        result: Entity = {}
        for name in ("offset", "length"):
            if name not in item:
                raise TextError(f'Can\'t find field "{name}"')
            value = item[name]
            if isinstance(value, bool) or not (
                isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value))
            ):
                raise TextError(f'Field "{name}" must be a valid Number')
            result[name] = int(value)
        if "type" not in item:
            raise TextError('Can\'t find field "type"')
        kind = item["type"]
        if not isinstance(kind, str):
            raise TextError('Field "type" must be of type String')
        if not kind:
            raise TextError("Type is not specified")
        if kind not in KNOWN_TYPES:
            raise TextError("Unsupported type specified")
        if kind in AUTO_TYPES:
            return None  # Telegram finds these itself
        result["type"] = kind
        if kind == "text_link":
            url = self._string_field(item, "url")
            user_id = link_user_id(url)
            if user_id is not None:
                return self._mention(result, user_id)
            try:
                result["url"] = check_link(url)
            except TextError as error:
                raise _bad(f"Entity URL '{url}' is invalid: {error.description}") from None
        elif kind == "text_mention":
            if "user" not in item:
                raise TextError('Can\'t find field "user"')
            user = item["user"]
            if not isinstance(user, dict) or "id" not in user:
                raise TextError('Can\'t find field "id"')
            return self._mention(result, _int(user["id"]) or 0)
        elif kind == "custom_emoji":
            if "custom_emoji_id" not in item:
                raise TextError('Can\'t find field "custom_emoji_id"')
            value = str(item["custom_emoji_id"])
            if not re.fullmatch(r"-?\d+", value) or abs(int(value)) >= 2**63:
                raise TextError('Field "custom_emoji_id" must be a valid Number')
            if int(value) <= 0:
                raise bad_request("invalid custom emoji identifier specified")
            result["custom_emoji_id"] = value
        elif kind == "pre" and "language" in item:
            language = item["language"]
            if not isinstance(language, str):
                raise TextError('Field "language" must be of type String')
            if language:
                result["language"] = language
        elif kind == "date_time":
            if "unix_time" not in item:
                raise TextError('Can\'t find field "unix_time"')
            result["unix_time"] = _int(item["unix_time"])
            if "date_time_format" in item:
                result["date_time_format"] = str(item["date_time_format"])
        return result

    def _mention(self, result: Entity, user_id: int) -> Entity:
        user = self._lookup_user(user_id)
        if user is None:
            raise bad_request("user not found")
        return {"type": "text_mention", "offset": result["offset"], "length": result["length"], "user": user}

    @staticmethod
    def _string_field(item: JSON, name: str) -> str:
        if name not in item:
            raise TextError(f'Can\'t find field "{name}"')
        if not isinstance(item[name], str):
            raise TextError(f'Field "{name}" must be of type String')
        return item[name]

    # ---------------------------------------------------------------- keyboards and replies

    def _reply_markup(self, params: JSON) -> JSON | None:
        raw = params.get("reply_markup")
        if raw is None or raw == "":
            return None
        markup = _json_field(raw, "can't parse reply keyboard markup JSON object")
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
                raise bad_request('field "inline_keyboard" must be of type Array')
            count = 0
            for row in rows:
                for button in row:
                    self._inline_button(button)
                    count += 1
            if count > self.rules.max_buttons:
                raise bad_request("reply markup is too long")
            return {"inline_keyboard": [[dict(b) for b in row] for row in rows]}
        if "keyboard" in markup:
            if not isinstance(markup["keyboard"], list):
                raise bad_request('field "keyboard" must be of type Array')
        for flag in (
            "resize_keyboard",
            "one_time_keyboard",
            "is_persistent",
            "selective",
            "remove_keyboard",
            "force_reply",
        ):
            if flag in markup and not isinstance(markup[flag], bool):
                raise bad_request(f'field "{flag}" must be of type Boolean')
        return markup

    def _inline_button(self, button: Any) -> None:
        prefix = "can't parse inline keyboard button: "
        if not isinstance(button, dict):
            raise bad_request(prefix + "expected an Object")
        if "text" not in button:
            raise bad_request(prefix + 'Can\'t find field "text"')
        if not isinstance(button["text"], str):
            raise bad_request(prefix + 'Field "text" must be of type String')
        if button.get("pay") or "callback_game" in button:
            raise bad_request("BUTTON_TYPE_INVALID")
        if "url" in button:
            url = str(button["url"])
            try:
                check_link(url)
            except TextError as error:
                raise bad_request(
                    f"inline keyboard button URL '{url}' is invalid: {error.description}"
                ) from None
            return
        if "web_app" in button:
            url = str((button["web_app"] or {}).get("url", ""))
            if not url.lower().startswith("https://"):
                raise bad_request(
                    f"inline keyboard button Web App URL '{url}' is invalid: Only HTTPS links are allowed"
                )
            return
        if "copy_text" in button:
            text = str((button["copy_text"] or {}).get("text", ""))
            if not 1 <= len(text) <= 256:
                raise bad_request("BUTTON_COPY_TEXT_INVALID")
            return
        data = button.get("callback_data")
        if data not in (None, ""):
            if len(str(data).encode("utf-8")) > self.rules.max_callback_data:
                raise bad_request("BUTTON_DATA_INVALID")
            return
        actions = (
            "login_url",
            "switch_inline_query",
            "switch_inline_query_current_chat",
            "switch_inline_query_chosen_chat",
        )
        if not any(a in button for a in actions):
            raise bad_request(prefix + "Text buttons are unallowed in the inline keyboard")

    def _reply_parameters(self, params: JSON) -> tuple[int | None, bool]:
        raw = params.get("reply_parameters")
        if raw not in (None, ""):
            value = _json_field(raw, "can't parse reply parameters JSON object")
            if not isinstance(value, dict):
                raise bad_request("can't parse reply parameters JSON object")
            if "message_id" not in value:
                raise bad_request('can\'t find field "message_id"')
            return _int(value["message_id"]), _bool(value.get("allow_sending_without_reply", False))
        legacy = _int(params.get("reply_to_message_id"))
        return legacy, _bool(params.get("allow_sending_without_reply", False))

    def _resolve_reply(self, chat: Chat, reply: tuple[int | None, bool]) -> StoredMessage | None:
        message_id, allow_without = reply
        if not message_id:
            return None
        target = self.world.message(chat.id, message_id)
        if target is None and not allow_without:
            raise bad_request("message to be replied not found")
        return target

    # ================================================================ methods

    async def getMe(self, params: JSON) -> JSON:
        return {
            **self.world.bot.to_dict(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.rules.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def logOut(self, params: JSON) -> bool:
        return True

    async def close(self, params: JSON) -> bool:
        return True

    async def getUpdates(self, params: JSON) -> list[JSON]:
        allowed = params.get("allowed_updates")
        if allowed not in (None, ""):
            allowed = _json_field(allowed, "can't parse allowed_updates JSON object")
            if not isinstance(allowed, list):
                allowed = None
        else:
            allowed = None
        limit = _int(params.get("limit")) or 100
        limit = min(max(limit, 1), 100)
        try:  # PTB sends a timedelta as whole or fractional seconds
            timeout = max(0.0, float(params.get("timeout") or 0))
        except (TypeError, ValueError):
            timeout = 0.0
        return await self.world.get_updates(_int(params.get("offset")), limit, timeout, allowed)

    async def deleteWebhook(self, params: JSON) -> bool:
        self.world.set_webhook("", None, 40)
        self.world.webhook_deletes += 1
        if _bool(params.get("drop_pending_updates", False)):
            self.world.drop_pending_updates()
        return True

    async def setWebhook(self, params: JSON) -> bool:
        url = str(params.get("url") or "")
        if url and self.rules.webhook_requires_https and not url.lower().startswith("https://"):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if url and not url.lower().startswith(("http://", "https://")):
            raise bad_request("bad webhook: Wrong HTTP URL specified")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            raise bad_request("bad webhook: Secret token contains unallowed characters")
        max_connections = _int(params.get("max_connections")) or 40
        if not 1 <= max_connections <= 100:
            raise bad_request("bad webhook: Wrong max_connections specified")
        allowed = params.get("allowed_updates")
        if allowed not in (None, ""):
            allowed = _json_field(allowed, "can't parse allowed_updates JSON object")
            self.world.allowed_updates = list(allowed) if isinstance(allowed, list) else None
        self.world.set_webhook(url, None if secret is None else str(secret), max_connections)
        self.world.webhook_sets += 1
        if _bool(params.get("drop_pending_updates", False)):
            self.world.drop_pending_updates()
        return True

    async def getWebhookInfo(self, params: JSON) -> JSON:
        return {
            "url": self.world.webhook_url,
            "has_custom_certificate": False,
            "max_connections": self.world.webhook_max_connections,
            "pending_update_count": len(self.world.updates),
        }

    async def sendMessage(self, params: JSON) -> JSON:
        if params.get("text") in (None, ""):
            raise bad_request("message text is empty")
        chat = self._chat(params)
        formatted = self._formatted(
            params,
            "text",
            "entities",
            allow_empty=False,
            max_length=self.rules.max_text_length,
            too_long="message is too long",
        )
        markup = self._reply_markup(params)
        reply = self._reply_parameters(params)
        thread_id = self._thread(params, chat)
        self._check_can_write(chat)
        self._limit("sendMessage", chat)
        target = self._resolve_reply(chat, reply)
        message = self.world.new_message(
            chat,
            self.world.bot,
            text=formatted.text,
            entities=formatted.entities,
            reply_markup=markup,
            reply_to_message_id=target.message_id if target else None,
            thread_id=thread_id if thread_id is not None else (target.thread_id if target else None),
            is_topic_message=bool(thread_id or (target and target.is_topic_message)),
        )
        return self.world.message_dict(message)

    def _editable(self, chat: Chat, params: JSON) -> StoredMessage:
        message = self.world.message(chat.id, self._message_id(params))
        if message is None:
            raise bad_request("message to edit not found")
        if not message.from_bot:
            raise bad_request("message can't be edited")
        return message

    async def editMessageText(self, params: JSON) -> JSON:
        if params.get("text") in (None, ""):
            raise bad_request("message text is empty")
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")  # the fake has no inline messages
        chat = self._chat(params)
        self._message_id(params)
        formatted = self._formatted(
            params,
            "text",
            "entities",
            allow_empty=False,
            max_length=self.rules.max_text_length,
            too_long="message is too long",
        )
        markup = self._reply_markup(params)
        self._check_can_write(chat)
        self._limit("editMessageText", chat)
        message = self._editable(chat, params)
        if message.text is None:
            raise bad_request("there is no text in the message to edit")
        # Without reply_markup the edit removes the keyboard, as on Telegram.
        if (message.text, message.entities, message.reply_markup) == (
            formatted.text,
            formatted.entities,
            markup,
        ):
            raise bad_request(NOT_MODIFIED)
        message.text = formatted.text
        message.entities = formatted.entities
        message.reply_markup = markup
        message.edit_date = int(self.world.wall_clock())
        message.snapshot(self.world.clock())
        return self.world.message_dict(message)

    async def editMessageReplyMarkup(self, params: JSON) -> JSON:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._chat(params)
        self._message_id(params)
        markup = self._reply_markup(params)
        self._check_can_write(chat)
        self._limit("editMessageReplyMarkup", chat)
        message = self._editable(chat, params)
        if message.reply_markup == markup:
            raise bad_request(NOT_MODIFIED)
        message.reply_markup = markup
        message.edit_date = int(self.world.wall_clock())
        message.snapshot(self.world.clock())
        return self.world.message_dict(message)

    async def sendMessageDraft(self, params: JSON) -> bool:
        chat = self._chat(params)
        draft_id = _int(params.get("draft_id"))
        if not draft_id:
            raise bad_request("RANDOM_ID_INVALID")
        if chat.type != "private":
            raise BotApiError(400, self.rules.draft_group_error)
        formatted = self._formatted(
            params,
            "text",
            "entities",
            allow_empty=True,
            max_length=self.rules.max_text_length,
            too_long="message is too long",
        )
        thread_id = self._thread(params, chat)
        self._check_can_write(chat)
        self._limit("sendMessageDraft", chat)
        self.world.add_draft(
            DraftRecord(
                time=self.world.clock(),
                chat_id=chat.id,
                draft_id=draft_id,
                text=formatted.text,
                entities=tuple(formatted.entities),
                thread_id=thread_id,
            )
        )
        return True

    async def deleteMessage(self, params: JSON) -> bool:
        chat = self._chat(params)
        message_id = self._message_id(params)
        self._limit("deleteMessage", chat)
        message = self.world.message(chat.id, message_id)
        if message is None:
            raise bad_request("message to delete not found")
        if not message.from_bot and chat.is_group and chat.bot_status != "administrator":
            raise bad_request("message can't be deleted")
        message.deleted = True
        return True

    async def sendChatAction(self, params: JSON) -> bool:
        chat = self._chat(params)
        action = str(params.get("action") or "")
        if action not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        self._check_can_write(chat)
        self._limit("sendChatAction", chat)
        thread_id = self._thread(params, chat)
        self.world.chat_actions.append(ChatActionRecord(self.world.clock(), chat.id, action, thread_id))
        return True

    async def answerCallbackQuery(self, params: JSON) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        query = self.world.callback_queries.get(query_id)
        if query is None or query["answered"]:
            raise bad_request(QUERY_INVALID)
        if self.world.clock() - query["time"] > self.rules.callback_answer_timeout:
            raise bad_request(QUERY_INVALID)  # too old: the user's client stopped waiting
        text = params.get("text")
        if text is not None and len(str(text)) > self.rules.max_callback_answer_text:
            raise bad_request("MESSAGE_TOO_LONG")  # unconfirmed
        query["answered"] = True
        query["answer"] = {
            "text": text,
            "show_alert": _bool(params.get("show_alert", False)),
            "url": params.get("url"),
            "time": self.world.clock(),
        }
        return True

    # ---------------------------------------------------------------- commands

    def _command_key(self, params: JSON) -> tuple[str, str]:
        scope: Any = params.get("scope")
        if scope in (None, ""):
            scope = {"type": "default"}
        scope = _json_field(scope, "can't parse BotCommandScope JSON object")
        if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
            raise bad_request("unsupported bot command scope type specified")  # unconfirmed wording
        if scope["type"].startswith("chat"):
            self._chat(scope)
        language = str(params.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise bad_request("invalid language code specified")  # unconfirmed wording
        normalised = {k: scope[k] for k in ("type", "chat_id", "user_id") if k in scope}
        return json.dumps(normalised, sort_keys=True), language

    async def setMyCommands(self, params: JSON) -> bool:
        commands = _json_field(params.get("commands"), "can't parse commands JSON object")
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("BOT_COMMANDS_TOO_MUCH")
        stored = []
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand: expected an Object")
            name = command.get("command")
            description = command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name.lstrip("/")):
                raise bad_request("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description.strip()) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            stored.append({"command": name.lstrip("/"), "description": description})
        key = self._command_key(params)
        if stored:
            self.world.commands[key] = stored
        else:
            self.world.commands.pop(key, None)
        return True

    async def getMyCommands(self, params: JSON) -> list[JSON]:
        return [dict(c) for c in self.world.commands.get(self._command_key(params), [])]

    async def deleteMyCommands(self, params: JSON) -> bool:
        self.world.commands.pop(self._command_key(params), None)
        return True

    # ---------------------------------------------------------------- files

    async def getFile(self, params: JSON) -> JSON:
        file_id = str(params.get("file_id") or "")
        if not file_id:
            raise bad_request("invalid file_id")  # unconfirmed wording
        stored = self.world.files.get(file_id)
        if stored is None:
            raise bad_request("wrong file_id or the file is temporarily unavailable")
        if stored.size > self.rules.max_download_size:
            raise bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    async def sendDocument(self, params: JSON) -> JSON:
        chat = self._chat(params)
        document = params.get("document")
        if document in (None, ""):
            raise bad_request("there is no document in the request")
        caption = self._formatted(
            params,
            "caption",
            "caption_entities",
            allow_empty=True,
            max_length=self.rules.max_caption_length,
            too_long="message caption is too long",
        )
        markup = self._reply_markup(params)
        reply = self._reply_parameters(params)
        if isinstance(document, UploadedFile):
            stored = self.world.add_file(
                document.data,
                file_name=document.filename,
                mime_type=document.content_type,
                size=None,
                kind="documents",
            )
        elif isinstance(document, str) and document.lower().startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")  # the fake cannot fetch URLs
        else:
            found = self.world.files.get(str(document))
            if found is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            stored = found
        thread_id = self._thread(params, chat)
        self._check_can_write(chat)
        self._limit("sendDocument", chat)
        target = self._resolve_reply(chat, reply)
        document_dict: JSON = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        if stored.file_name:
            document_dict["file_name"] = stored.file_name
        if stored.mime_type:
            document_dict["mime_type"] = stored.mime_type
        message = self.world.new_message(
            chat,
            self.world.bot,
            document=document_dict,
            caption=caption.text or None,
            caption_entities=caption.entities,
            reply_markup=markup,
            reply_to_message_id=target.message_id if target else None,
            thread_id=thread_id if thread_id is not None else (target.thread_id if target else None),
            is_topic_message=bool(thread_id or (target and target.is_topic_message)),
        )
        return self.world.message_dict(message)

    async def sendPhoto(self, params: JSON) -> JSON:
        """A photo the bot uploads (multipart) or re-sends by file_id. The upload must be a real
        image within Telegram's limits; the message gets PhotoSizes, smallest first, each a file
        whose data is the upload (the fake does not rescale pixels, only the sizes it reports)."""
        chat = self._chat(params)
        photo = params.get("photo")
        if photo in (None, ""):
            raise bad_request("there is no photo in the request")
        caption = self._formatted(
            params,
            "caption",
            "caption_entities",
            allow_empty=True,
            max_length=self.rules.max_caption_length,
            too_long="message caption is too long",
        )
        markup = self._reply_markup(params)
        reply = self._reply_parameters(params)
        if isinstance(photo, UploadedFile):
            width, height = self._photo_dimensions(photo.data)
            data = photo.data
        elif isinstance(photo, str) and photo.lower().startswith(("http://", "https://")):
            raise bad_request("failed to get HTTP URL content")  # the fake cannot fetch URLs
        else:
            found = self.world.files.get(str(photo))
            if found is None:
                raise bad_request("wrong file identifier/HTTP URL specified")
            width, height = self._photo_dimensions(found.data)
            data = found.data
        thread_id = self._thread(params, chat)
        self._check_can_write(chat)
        self._limit("sendPhoto", chat)
        target = self._resolve_reply(chat, reply)
        message = self.world.new_message(
            chat,
            self.world.bot,
            photo=self._photo_sizes(data, width, height),
            caption=caption.text or None,
            caption_entities=caption.entities,
            reply_markup=markup,
            reply_to_message_id=target.message_id if target else None,
            thread_id=thread_id if thread_id is not None else (target.thread_id if target else None),
            is_topic_message=bool(thread_id or (target and target.is_topic_message)),
        )
        return self.world.message_dict(message)

    def _photo_dimensions(self, data: bytes) -> tuple[int, int]:
        from PIL import Image, UnidentifiedImageError

        if len(data) > self.rules.max_photo_size:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")  # unconfirmed wording for > 10 MB
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()  # a truncated or corrupt file fails here, as Telegram's processing does
                width, height = image.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
            raise bad_request("IMAGE_PROCESS_FAILED") from None
        if width + height > self.rules.max_photo_dimensions_sum or max(
            width, height
        ) > self.rules.max_photo_ratio * min(width, height):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        return width, height

    def _photo_sizes(self, data: bytes, width: int, height: int) -> list[JSON]:
        sizes = []
        longest = max(width, height)
        for side in (90, 320, 800, self.rules.largest_photo_side):
            scale = min(1.0, side / longest)
            stored = self.world.add_file(data, file_name=None, mime_type=None, size=None, kind="photos")
            sizes.append(
                {
                    "file_id": stored.file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": max(1, round(width * scale)),
                    "height": max(1, round(height * scale)),
                    "file_size": stored.size,
                }
            )
            if scale == 1.0:
                break
        return sizes

    # ---------------------------------------------------------------- chats

    async def leaveChat(self, params: JSON) -> bool:
        chat = self._chat(params)
        if chat.type == "private":
            raise bad_request("chat member status can't be changed in private chats")  # unconfirmed
        self._check_can_write(chat)
        old_status = chat.bot_status
        chat.bot_status = "left"
        self.world.push_update(
            "my_chat_member",
            {
                "chat": chat.to_dict(),
                "from": self.world.bot.to_dict(),
                "date": int(self.world.wall_clock()),
                "old_chat_member": self.member_dict(chat, self.world.bot.id, old_status),
                "new_chat_member": self.member_dict(chat, self.world.bot.id, "left"),
            },
        )
        return True

    async def getChat(self, params: JSON) -> JSON:
        chat = self._chat(params)
        return {
            **chat.to_dict(),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    def member_status(self, chat: Chat, user_id: int) -> str:
        if user_id == self.world.bot.id:
            return chat.bot_status if chat.is_group else "member"
        if chat.type == "private":
            return "member" if chat.user is not None and chat.user.id == user_id else "left"
        return chat.members.get(user_id, "left")

    def member_dict(self, chat: Chat, user_id: int, status: str | None = None) -> JSON:
        user = self.world.users[user_id].to_dict()
        status = status or self.member_status(chat, user_id)
        if status == "creator":
            return {"status": "creator", "user": user, "is_anonymous": False}
        if status == "administrator":
            rights = dict.fromkeys(
                (
                    "can_manage_chat",
                    "can_delete_messages",
                    "can_manage_video_chats",
                    "can_restrict_members",
                    "can_change_info",
                    "can_invite_users",
                    "can_post_stories",
                    "can_edit_stories",
                    "can_delete_stories",
                    "can_pin_messages",
                    "can_manage_topics",
                ),
                True,
            )
            return {
                "status": "administrator",
                "user": user,
                "can_be_edited": False,
                "is_anonymous": False,
                "can_promote_members": False,
                **rights,
            }
        if status == "kicked":
            return {"status": "kicked", "user": user, "until_date": 0}
        if status == "restricted":  # a member who may read but not write
            return {
                "status": "restricted",
                "user": user,
                "is_member": True,
                "until_date": 0,
                **dict.fromkeys(
                    (
                        "can_change_info",
                        "can_invite_users",
                        "can_pin_messages",
                        "can_send_messages",
                        "can_send_polls",
                        "can_send_other_messages",
                        "can_add_web_page_previews",
                        "can_manage_topics",
                        "can_send_audios",
                        "can_send_documents",
                        "can_send_photos",
                        "can_send_videos",
                        "can_send_video_notes",
                        "can_send_voice_notes",
                        "can_edit_tag",
                        "can_react_to_messages",
                    ),
                    False,
                ),
            }
        return {"status": status, "user": user}

    async def getChatMember(self, params: JSON) -> JSON:
        chat = self._chat(params)
        user_id = _int(params.get("user_id"))
        if not user_id:
            raise bad_request("invalid user_id specified")
        if user_id not in self.world.users:
            raise bad_request("user not found")
        return self.member_dict(chat, user_id)

    async def getChatAdministrators(self, params: JSON) -> list[JSON]:
        chat = self._chat(params)
        if chat.type == "private":
            raise bad_request("there are no administrators in the private chat")
        ids = [uid for uid, status in chat.members.items() if status in ("creator", "administrator")]
        if chat.bot_status == "administrator":
            ids.append(self.world.bot.id)
        return [self.member_dict(chat, uid) for uid in ids]

    async def setMessageReaction(self, params: JSON) -> bool:
        chat = self._chat(params)
        message_id = _int(params.get("message_id"))
        self._check_can_write(chat)
        self._limit("setMessageReaction", chat)
        message = self.world.message(chat.id, message_id or 0)
        if message is None or message.service:
            raise bad_request("message to react not found")
        raw = params.get("reaction")
        reactions = [] if raw in (None, "") else _json_field(raw, "can't parse reaction types JSON object")
        if not isinstance(reactions, list):
            raise bad_request("can't parse reaction types JSON object")
        if len(reactions) > 1:
            raise bad_request("REACTIONS_TOO_MUCH")
        for reaction in reactions:
            if not isinstance(reaction, dict) or reaction.get("type") != "emoji":
                raise bad_request("REACTION_INVALID")
            if reaction.get("emoji") not in REACTION_EMOJI:
                raise bad_request("REACTION_INVALID")
        message.reactions = [dict(r) for r in reactions]
        return True
