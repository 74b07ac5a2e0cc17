"""Telegram's three parse modes, with its error messages, as TDLib implements them.

Each parser turns marked-up text into plain text plus Bot API entity dicts (UTF-16 offsets), or
raises MarkupError with the message Telegram puts after "Bad Request: can't parse entities: ".
The behaviour follows TDLib's parse_html, parse_markdown_v2 and parse_markdown (MessageEntity.cpp):
the same accepted syntax, the same byte offsets in errors, the same silent drops (an ``<a>`` with
an invalid href gives no entity; an empty entity gives none).

One deliberate extra, on by default because Telegram's documentation demands it: in HTML a bare
``&`` that does not start an entity is refused (TDLib itself lets it through as text). Pass
``strict_ampersand=False`` to get TDLib's leniency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tests.fakes.telegram_text import Entity, checked_link_or_none, link_user_id, sort_entities, utf8_offset

UserLookup = Callable[[int], dict | None]


class MarkupError(Exception):
    """The part after "can't parse entities: " in Telegram's error."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _Output:
    """Accumulates the plain text and tracks the UTF-16 offset as TDLib does."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.utf16 = 0

    def add(self, ch: str) -> None:
        self.chars.append(ch)
        self.utf16 += 2 if ord(ch) > 0xFFFF else 1

    def text_since(self, index: int) -> str:
        return "".join(self.chars[index:])

    def __len__(self) -> int:
        return len(self.chars)


def _link_entity(kind_offset: int, length: int, url: str, users: UserLookup | None) -> Entity | None:
    """A text_link (or text_mention for tg://user?id=N); None if Telegram would drop it."""
    user_id = link_user_id(url)
    if user_id is not None:
        user = users(user_id) if users else None
        if user is None:
            raise MarkupError("User not found")
        return {"type": "text_mention", "offset": kind_offset, "length": length, "user": user}
    checked = checked_link_or_none(url)
    if checked is None:
        return None
    return {"type": "text_link", "offset": kind_offset, "length": length, "url": checked}


# ---------------------------------------------------------------- HTML

_HTML_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)
_SIMPLE_HTML = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "u": "underline",
    "ins": "underline",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _is_space(ch: str) -> bool:
    # TDLib's is_space also treats the terminating NUL as space; callers check the end separately.
    return ch in " \t\r\n\f\v"


def decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Decode ``&lt;``, ``&gt;``, ``&amp;``, ``&quot;`` and ``&#NN;``/``&#xNN;`` at ``pos``.

    Like TDLib the trailing ";" is optional and other named entities are not entities at all.
    """
    end = pos + 1
    if end < len(text) and text[end] == "#":
        end += 1
        value = 0
        if end < len(text) and text[end] == "x":
            end += 1
            while end < len(text) and text[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(text[end], 16)
                end += 1
        else:
            while end < len(text) and text[end].isdigit() and text[end].isascii():
                value = value * 10 + int(text[end])
                end += 1
        if value == 0 or value >= 0x10FFFF or end - pos >= 10:
            return None
        if 0xD800 <= value <= 0xDFFF:
            raise MarkupError(
                "Text contains invalid Unicode characters after decoding HTML entities, check for "
                "unmatched surrogate code units"
            )
        ch = chr(value)
    else:
        while end < len(text) and text[end].isascii() and text[end].isalpha():
            end += 1
        name = text[pos + 1 : end]
        if name not in _NAMED:
            return None
        ch = _NAMED[name]
    if end < len(text) and text[end] == ";":
        end += 1
    return ch, end


@dataclass
class _Open:
    tag: str
    argument: str
    offset: int  # UTF-16 offset in the output
    begin: int  # index into the output characters
    expandable: bool = False


def parse_html(
    text: str, *, users: UserLookup | None = None, strict_ampersand: bool = True
) -> tuple[str, list[Entity]]:
    out = _Output()
    entities: list[Entity] = []
    stack: list[_Open] = []
    n = len(text)

    def at(index: int) -> str:
        return text[index] if index < n else "\0"

    def byte(index: int) -> int:
        return utf8_offset(text, index)

    i = 0
    while i < n:
        ch = text[i]
        if ch == "&":
            decoded = decode_html_entity(text, i)
            if decoded is not None:
                out.add(decoded[0])
                i = decoded[1]
                continue
            if strict_ampersand:
                # Not TDLib's behaviour (it keeps a bare "&"), but Telegram's documented rule.
                raise MarkupError(
                    f'Character "&" must be escaped as "&amp;" at byte offset {byte(i)} '
                    "(strict fake rule: Telegram's documentation requires it)"
                )
        if ch != "<":
            out.add(ch)
            i += 1
            continue

        begin = i
        i += 1
        if at(i) != "/":
            while at(i) != "\0" and not _is_space(at(i)) and at(i) != ">":
                i += 1
            if i >= n:
                raise MarkupError(f"Unclosed start tag at byte offset {byte(begin)}")
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise MarkupError(f'Unsupported start tag "{tag}" at byte offset {byte(begin)}')
            argument = ""
            expandable = False
            while at(i) != ">":
                while i < n and _is_space(at(i)):
                    i += 1
                if i >= n:
                    raise MarkupError(f"Unclosed start tag at byte offset {byte(begin)}")
                if at(i) == ">":
                    break
                attribute_begin = i
                while i < n and not _is_space(at(i)) and at(i) not in "=>":
                    i += 1
                attribute = text[attribute_begin:i]
                if not attribute:
                    raise MarkupError(f'Empty attribute name in the tag "{tag}" at byte offset {byte(begin)}')
                while i < n and _is_space(at(i)):
                    i += 1
                if i >= n:
                    raise MarkupError(f"Unclosed start tag at byte offset {byte(begin)}")
                if at(i) != "=":
                    if tag == "blockquote" and attribute.lower() == "expandable":
                        expandable = True
                        continue
                    raise MarkupError(
                        f'Expected equal sign in declaration of an attribute of the tag "{tag}" at '
                        f"byte offset {byte(begin)}"
                    )
                i += 1
                while i < n and _is_space(at(i)):
                    i += 1
                if i >= n:
                    raise MarkupError(f'Unclosed start tag "{tag}" at byte offset {byte(begin)}')
                if at(i) not in "'\"":
                    token_begin = i
                    while i < n and (at(i).isascii() and (at(i).isalnum() or at(i) in ".-")):
                        i += 1
                    value = text[token_begin:i].lower()
                    if i >= n or (not _is_space(at(i)) and at(i) != ">"):
                        if i >= n:
                            raise MarkupError(f"Unclosed start tag at byte offset {byte(begin)}")
                        raise MarkupError(f"Unexpected end of name token at byte offset {byte(token_begin)}")
                else:
                    quote = at(i)
                    i += 1
                    chars: list[str] = []
                    while i < n and at(i) != quote:
                        if at(i) == "&":
                            decoded = decode_html_entity(text, i)
                            if decoded is not None:
                                chars.append(decoded[0])
                                i = decoded[1]
                                continue
                        chars.append(at(i))
                        i += 1
                    if at(i) == quote:
                        i += 1
                    value = "".join(chars)
                    if i >= n:
                        raise MarkupError(f"Unclosed start tag at byte offset {byte(begin)}")
                name = attribute
                if tag == "a" and name == "href":
                    argument = value
                elif tag == "code" and name == "class" and value.startswith("language-"):
                    argument = value[len("language-") :]
                elif tag == "span" and name == "class" and value.startswith("tg-"):
                    argument = value[len("tg-") :]
                elif tag == "tg-emoji" and name == "emoji-id":
                    argument = value
                elif tag == "blockquote" and name == "expandable":
                    expandable = True
            if tag == "span" and argument != "spoiler":
                raise MarkupError(f'Tag "span" must have class "tg-spoiler" at byte offset {byte(begin)}')
            stack.append(_Open(tag, argument, out.utf16, len(out), expandable))
            i += 1  # past ">"
            continue

        # An end tag.
        if not stack:
            raise MarkupError(f"Unexpected end tag at byte offset {byte(begin)}")
        i += 1
        name_begin = i
        while i < n and not _is_space(at(i)) and at(i) != ">":
            i += 1
        end_tag = text[name_begin:i].lower()
        while i < n and _is_space(at(i)):
            i += 1
        if at(i) != ">":
            raise MarkupError(f"Unclosed end tag at byte offset {byte(begin)}")
        i += 1
        opened = stack.pop()
        if end_tag and end_tag != opened.tag:
            raise MarkupError(
                f'Unmatched end tag at byte offset {byte(begin)}, expected "</{opened.tag}>", '
                f'found "</{end_tag}>"'
            )
        length = out.utf16 - opened.offset
        if length <= 0:
            continue
        entity = _html_entity(opened, length, entities, out, users)
        if entity is not None:
            entities.append(entity)
    if stack:
        raise MarkupError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)  # only pre keeps a language
    return "".join(out.chars), sort_entities(entities)


def _html_entity(
    opened: _Open, length: int, entities: list[Entity], out: _Output, users: UserLookup | None
) -> Entity | None:
    offset = opened.offset
    if opened.tag in _SIMPLE_HTML:
        return {"type": _SIMPLE_HTML[opened.tag], "offset": offset, "length": length}
    if opened.tag == "tg-emoji":
        if not opened.argument.isdigit() or int(opened.argument) == 0 or int(opened.argument) >= 2**63:
            raise MarkupError("Invalid custom emoji identifier specified")
        return {
            "type": "custom_emoji",
            "offset": offset,
            "length": length,
            "custom_emoji_id": opened.argument,
        }
    if opened.tag == "a":
        url = opened.argument or out.text_since(opened.begin)
        return _link_entity(offset, length, url, users)
    if opened.tag == "blockquote":
        kind = "expandable_blockquote" if opened.expandable else "blockquote"
        return {"type": kind, "offset": offset, "length": length}
    last = entities[-1] if entities else None
    same_range = last is not None and last["offset"] == offset and last["length"] == length
    if opened.tag == "pre":
        if same_range and last["type"] == "code" and last.get("language"):
            last["type"] = "pre"  # <pre><code class="language-x">: the code becomes the pre
            return None
        return {"type": "pre", "offset": offset, "length": length}
    # code
    if same_range and last["type"] == "pre" and opened.argument:
        last["language"] = opened.argument
        return None
    entity: Entity = {"type": "code", "offset": offset, "length": length}
    if opened.argument:
        entity["language"] = opened.argument  # kept only if a pre takes it over
    return entity


# ---------------------------------------------------------------- MarkdownV2

_V2_RESERVED = "_*[]()~`>#+-=|{}.!\n"
# TDLib's names for entity types in "Can't find end of ... entity" errors.
_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "pre_code": "PreCode",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
    "blockquote": "BlockQuote",
}


@dataclass
class _V2Open:
    kind: str  # a key of _TYPE_NAMES
    offset: int
    start: int  # index of the opening markup in the input, reported as a byte offset on error
    begin: int
    argument: str = ""
    extra: dict = field(default_factory=dict)


def _reserved_error(ch: str) -> MarkupError:
    return MarkupError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")


def parse_markdown_v2(text: str, *, users: UserLookup | None = None) -> tuple[str, list[Entity]]:
    out = _Output()
    entities: list[Entity] = []
    stack: list[_V2Open] = []
    n = len(text)
    have_quote = False

    def at(index: int) -> str:
        return text[index] if index < n else "\0"

    def byte(index: int) -> int:
        return utf8_offset(text, index)

    def open_quote(index: int) -> None:
        """A ">" (or "**>" for an expandable quote) at the start of a line."""
        nonlocal have_quote
        expandable = text.startswith("**>", index)
        stack.append(_V2Open("blockquote", out.utf16, index, len(out), extra={"expandable": expandable}))
        have_quote = True

    def close_quote() -> None:
        nonlocal have_quote
        opened = stack.pop()
        have_quote = False
        length = out.utf16 - opened.offset
        if length > 0:
            kind = "expandable_blockquote" if opened.extra.get("expandable") else "blockquote"
            entities.append({"type": kind, "offset": opened.offset, "length": length})

    i = 0
    if text.startswith("**>"):
        open_quote(0)
        i = 3
    while i < n:
        ch = text[i]
        if ch == "\\" and 0 < ord(at(i + 1)) <= 126 and i + 1 < n:
            out.add(text[i + 1])
            i += 2
            continue
        top = stack[-1] if stack else None
        reserved = "`" if top is not None and top.kind in ("code", "pre", "pre_code") else _V2_RESERVED
        if ch not in reserved:
            out.add(ch)
            i += 1
            continue

        # "||" closing an expandable quote at the end of its last line.
        if (
            top is not None
            and top.kind == "blockquote"
            and top.extra.get("expandable")
            and text.startswith("||", i)
            and (i + 2 == n or at(i + 2) == "\n")
        ):
            i += 2
            continue

        is_end = False
        if top is not None:
            if have_quote and ch == "\n" and (i + 1 == n or at(i + 1) != ">"):
                is_end = True
            elif top.kind == "bold":
                is_end = ch == "*"
            elif top.kind == "italic":
                is_end = ch == "_" and at(i + 1) != "_"
            elif top.kind == "code":
                is_end = ch == "`"
            elif top.kind in ("pre", "pre_code"):
                is_end = text.startswith("```", i)
            elif top.kind in ("text_link", "custom_emoji"):
                is_end = ch == "]"
            elif top.kind == "underline":
                is_end = text.startswith("__", i)
            elif top.kind == "strikethrough":
                is_end = ch == "~"
            elif top.kind == "spoiler":
                is_end = text.startswith("||", i)

        if not is_end:
            start = i
            if ch == "_":
                if at(i + 1) == "_":
                    stack.append(_V2Open("underline", out.utf16, start, len(out)))
                    i += 2
                else:
                    stack.append(_V2Open("italic", out.utf16, start, len(out)))
                    i += 1
            elif ch == "*":
                stack.append(_V2Open("bold", out.utf16, start, len(out)))
                i += 1
            elif ch == "~":
                stack.append(_V2Open("strikethrough", out.utf16, start, len(out)))
                i += 1
            elif ch == "|":
                if at(i + 1) != "|":
                    raise _reserved_error(ch)
                stack.append(_V2Open("spoiler", out.utf16, start, len(out)))
                i += 2
            elif ch == "[":
                stack.append(_V2Open("text_link", out.utf16, start, len(out)))
                i += 1
            elif ch == "`":
                if text.startswith("```", i):
                    i += 3
                    language_end = i
                    while (
                        language_end < n and not _is_space(text[language_end]) and text[language_end] != "`"
                    ):
                        language_end += 1
                    kind, language = "pre", ""
                    if i != language_end and language_end < n and text[language_end] != "`":
                        kind, language = "pre_code", text[i:language_end]
                        i = language_end
                    if at(i) in "\r\n" and i < n:
                        if at(i + 1) in "\r\n" and i + 1 < n and at(i) != at(i + 1):
                            i += 2
                        else:
                            i += 1
                    stack.append(_V2Open(kind, out.utf16, start, len(out), language))
                else:
                    stack.append(_V2Open("code", out.utf16, start, len(out)))
                    i += 1
            elif ch == "!":
                if at(i + 1) != "[":
                    raise _reserved_error(ch)
                stack.append(_V2Open("custom_emoji", out.utf16, start, len(out)))
                i += 2
            elif ch == "\n":
                out.add("\n")
                i += 1
                if at(i) == ">" and i < n:
                    i += 1
                    if not have_quote:
                        open_quote(i - 1)
                elif text.startswith("**>", i) and not have_quote:
                    open_quote(i)
                    i += 3
            elif ch == ">" and i == 0:
                open_quote(0)
                i += 1
            else:
                raise _reserved_error(ch)
            continue

        # End of the entity on top of the stack.
        opened = stack[-1]
        if ch == "\n" and opened.kind != "blockquote":
            raise MarkupError(
                f"Can't find end of {_TYPE_NAMES[opened.kind]} entity at byte offset {byte(opened.start)}"
            )
        if opened.kind == "blockquote":
            out.add("\n")
            i += 1
            close_quote()
            continue
        stack.pop()
        skip = out.utf16 == opened.offset
        entity: Entity | None = None
        if opened.kind in ("bold", "italic", "code", "strikethrough"):
            i += 1
            entity = {"type": opened.kind, "offset": opened.offset, "length": out.utf16 - opened.offset}
        elif opened.kind in ("underline", "spoiler"):
            i += 2
            entity = {"type": opened.kind, "offset": opened.offset, "length": out.utf16 - opened.offset}
        elif opened.kind in ("pre", "pre_code"):
            i += 3
            entity = {"type": "pre", "offset": opened.offset, "length": out.utf16 - opened.offset}
            if opened.kind == "pre_code":
                entity["language"] = opened.argument
        elif opened.kind == "text_link":
            i += 1
            if at(i) != "(" or i >= n:
                url = out.text_since(opened.begin)
            else:
                i += 1
                url_begin = i
                url, i = _v2_url(text, i)
                if i >= n:
                    raise MarkupError(f"Can't find end of a URL at byte offset {byte(url_begin)}")
                i += 1
            if not skip:
                entity = _link_entity(opened.offset, out.utf16 - opened.offset, url, users)
        else:  # custom_emoji
            i += 1
            if at(i) != "(" or i >= n:
                raise MarkupError("Custom emoji entity must contain a tg://emoji URL")
            i += 1
            url_begin = i
            url, i = _v2_url(text, i)
            if i >= n:
                raise MarkupError(f"Can't find end of a custom emoji URL at byte offset {byte(url_begin)}")
            i += 1
            entity = {
                "type": "custom_emoji",
                "offset": opened.offset,
                "length": out.utf16 - opened.offset,
                "custom_emoji_id": _custom_emoji_id(url),
            }
        if entity is not None and not skip:
            entities.append(entity)
    if have_quote and stack and stack[-1].kind == "blockquote":
        close_quote()
    if stack:
        top = stack[-1]
        raise MarkupError(
            f"Can't find end of {_TYPE_NAMES[top.kind]} entity at byte offset {byte(top.start)}"
        )
    return "".join(out.chars), sort_entities(entities)


def _v2_url(text: str, i: int) -> tuple[str, int]:
    """Read a link target up to ")" with backslash escapes; returns (url, index of ")" or len)."""
    chars: list[str] = []
    n = len(text)
    while i < n and text[i] != ")":
        if text[i] == "\\" and i + 1 < n and 0 < ord(text[i + 1]) <= 126:
            chars.append(text[i + 1])
            i += 2
            continue
        chars.append(text[i])
        i += 1
    return "".join(chars), i


def _custom_emoji_id(url: str) -> str:
    prefix = "tg://emoji?id="
    if not url.lower().startswith(prefix):
        raise MarkupError("Custom emoji URL must have scheme tg and host emoji")
    value = url[len(prefix) :]
    if not value.isdigit() or int(value) == 0 or int(value) >= 2**63:
        raise MarkupError("Invalid custom emoji identifier specified")
    return value


# ---------------------------------------------------------------- legacy Markdown


def parse_markdown(text: str, *, users: UserLookup | None = None) -> tuple[str, list[Entity]]:
    """Legacy Markdown: ``*bold*``, ``_italic_``, ```code```, fenced pre and ``[text](url)``,
    no nesting, escapes only for ``_ * ` [``."""
    out = _Output()
    entities: list[Entity] = []
    n = len(text)
    i = 0

    def at(index: int) -> str:
        return text[index] if index < n else "\0"

    while i < n:
        ch = text[i]
        if ch == "\\" and at(i + 1) in "_*`[" and i + 1 < n:
            out.add(text[i + 1])
            i += 2
            continue
        if ch not in "_*`[":
            out.add(ch)
            i += 1
            continue
        begin = i
        end_char = "]" if ch == "[" else ch
        i += 1
        is_pre = False
        language = ""
        if ch == "`" and text.startswith("``", i):
            i += 2
            is_pre = True
            language_end = i
            while language_end < n and not _is_space(text[language_end]) and text[language_end] != "`":
                language_end += 1
            if i != language_end and language_end < n and text[language_end] != "`":
                language = text[i:language_end]
                i = language_end
            if i < n and at(i) in "\r\n":
                if i + 1 < n and at(i + 1) in "\r\n" and at(i) != at(i + 1):
                    i += 2
                else:
                    i += 1
        offset = out.utf16
        content_begin = len(out)
        while i < n and (text[i] != end_char or (is_pre and not text.startswith("``", i + 1))):
            out.add(text[i])
            i += 1
        if i >= n:
            raise MarkupError(
                f"Can't find end of the entity starting at byte offset {utf8_offset(text, begin)}"
            )
        length = out.utf16 - offset
        if length > 0:
            if ch == "_":
                entities.append({"type": "italic", "offset": offset, "length": length})
            elif ch == "*":
                entities.append({"type": "bold", "offset": offset, "length": length})
            elif ch == "[":
                if at(i + 1) == "(" and i + 1 < n:
                    i += 2
                    url_chars = []
                    while i < n and text[i] != ")":
                        url_chars.append(text[i])
                        i += 1
                    url = "".join(url_chars)
                else:
                    url = out.text_since(content_begin)
                entity = _link_entity(offset, length, url, users)
                if entity is not None:
                    entities.append(entity)
            elif is_pre:
                entity = {"type": "pre", "offset": offset, "length": length}
                if language:
                    entity["language"] = language
                entities.append(entity)
            else:
                entities.append({"type": "code", "offset": offset, "length": length})
        if is_pre:
            i += 2
        i += 1
    return "".join(out.chars), sort_entities(entities)


def parse(
    text: str, parse_mode: str, *, users: UserLookup | None = None, strict_ampersand: bool = True
) -> tuple[str, list[Entity]]:
    """Parse according to a Bot API parse_mode (case-insensitive). Raises ValueError if unknown."""
    mode = parse_mode.lower()
    if mode == "html":
        return parse_html(text, users=users, strict_ampersand=strict_ampersand)
    if mode == "markdownv2":
        return parse_markdown_v2(text, users=users)
    if mode == "markdown":
        return parse_markdown(text, users=users)
    raise ValueError(parse_mode)
