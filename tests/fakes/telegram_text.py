"""Text rules of the fake Telegram: UTF-16 lengths, links, and entity normalisation.

Telegram measures offsets and lengths in UTF-16 code units, cleans the text it is given and then
normalises the entities the way TDLib's ``fix_formatted_text`` does (MessageEntity.cpp). The
returned message carries the normalised text and entities, so a fake that stores the input verbatim
would let the bot believe its own copy matches what users see. The rules below follow TDLib:

* control characters become spaces, ``\\r`` and a few invisible marks are removed;
* entities must lie inside the text (errors with TDLib's wording), empty ones are dropped;
* nested or overlapping "continuous" entities (code, pre, links, ...) keep only the outer one,
  blockquotes can't nest, bold/italic/... are merged and split at the boundaries of the others and
  never live inside ``pre``;
* entities that cover only whitespace vanish, leading whitespace is moved out of them;
* the text is trimmed of leading and trailing spaces and newlines;
* at most 100 entities are kept (Telegram drops the rest silently, splittable ones first);
* links, mentions, hashtags, cashtags, bot commands and e-mails are detected automatically.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Entity = dict[str, Any]


# Telegram's description of why text was refused; the caller adds the "Bad Request: " prefix.
class TextError(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


SPLITTABLE = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
BLOCKQUOTES = frozenset({"blockquote", "expandable_blockquote"})
# Entities whose content is data the user does not see: they survive covering only whitespace.
HIDDEN_DATA = frozenset({"text_link", "text_mention", "custom_emoji", "date_time"})
# Types Telegram finds by itself; when a bot sends them explicitly the Bot API ignores them.
AUTO_TYPES = frozenset(
    {"mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number", "bank_card_number"}
)
USER_TYPES = frozenset(
    {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
        "date_time",
    }
)
KNOWN_TYPES = AUTO_TYPES | USER_TYPES

# TDLib's MessageEntity::get_type_priority: the tie-breaker when two entities share a range.
_PRIORITY = {
    "mention": 50,
    "hashtag": 50,
    "bot_command": 50,
    "url": 50,
    "email": 50,
    "bold": 90,
    "italic": 91,
    "code": 20,
    "pre": 11,
    "text_link": 49,
    "text_mention": 49,
    "cashtag": 50,
    "phone_number": 50,
    "underline": 92,
    "strikethrough": 93,
    "blockquote": 0,
    "expandable_blockquote": 0,
    "bank_card_number": 50,
    "spoiler": 94,
    "custom_emoji": 99,
    "date_time": 50,
}

MAX_ENTITIES = 100  # TDLib MAX_USER_ENTITY_COUNT, "server-side limit"


# ---------------------------------------------------------------- UTF-16


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: what Telegram counts. An emoji outside the BMP counts 2."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le", "surrogatepass")
    return data[2 * offset : 2 * (offset + length)].decode("utf-16-le", "surrogatepass")


def utf8_offset(text: str, index: int) -> int:
    """Byte offset of code point ``index``: Telegram's parse errors report byte offsets."""
    return len(text[:index].encode("utf-8", "surrogatepass"))


def _unit_starts(text: str) -> list[int]:
    """UTF-16 offset where each code point starts, plus the total length at the end."""
    starts = [0] * (len(text) + 1)
    unit = 0
    for index, ch in enumerate(text):
        starts[index] = unit
        unit += 2 if ord(ch) > 0xFFFF else 1
    starts[len(text)] = unit
    return starts


# ---------------------------------------------------------------- links

_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$", re.IGNORECASE)
_TG_USER = re.compile(r"^tg://user\?id=(\d+)$", re.IGNORECASE)


def check_link(url: str) -> str:
    """Validate and normalise a link like TDLib's LinkManager::check_link.

    Returns the normalised URL (scheme added, lower-case host, "/" for an empty path) or raises
    TextError with TDLib's reason: "URL host is empty", "Wrong HTTP URL", "Unsupported URL protocol".
    """
    url = url.strip()
    if not url:
        raise TextError("URL host is empty")
    lowered = url.lower()
    if lowered.startswith(("tg:", "ton:")):
        if lowered.startswith("tg:") and not re.match(r"^tg:(//)?[a-z0-9_-]+", lowered):
            raise TextError("Wrong tg URL")
        return url
    scheme = "http"
    rest = url
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", url)
    if match:
        scheme = match.group(1).lower()
        rest = url[match.end() :]
        if scheme not in ("http", "https"):
            raise TextError("Unsupported URL protocol")
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:[^0-9]", url) and not url.lower().startswith("localhost:"):
        raise TextError("Unsupported URL protocol")
    split = re.search(r"[/?#]", rest)
    authority, tail = (rest[: split.start()], rest[split.start() :]) if split else (rest, "")
    host = authority.rsplit("@", 1)[-1]
    port = ""
    if re.search(r":\d*$", host):
        host, port = host.rsplit(":", 1)
        port = ":" + port
    if not host:
        raise TextError("URL host is empty")
    labels = host.split(".")
    if len(labels) < 2 or not all(_HOST_LABEL.match(label) for label in labels):
        raise TextError("Wrong HTTP URL")
    if not re.match(r"^([a-z]{2,}|xn--[a-z0-9-]+|\d{1,3})$", labels[-1], re.IGNORECASE):
        raise TextError("Wrong HTTP URL")
    if not tail.startswith("/"):
        tail = "/" + tail
    return f"{scheme}://{host.lower()}{port}{tail}"


def checked_link_or_none(url: str) -> str | None:
    try:
        return check_link(url)
    except TextError:
        return None


def link_user_id(url: str) -> int | None:
    """The user id of a tg://user?id=N link, which becomes a text_mention."""
    match = _TG_USER.match(url.strip())
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------- ordering and fixing


def sort_key(entity: Entity) -> tuple[int, int, int]:
    return (entity["offset"], -entity["length"], _PRIORITY.get(entity["type"], 50))


def sort_entities(entities: Iterable[Entity]) -> list[Entity]:
    return sorted(entities, key=sort_key)


def _remove_intersecting(entities: list[Entity]) -> list[Entity]:
    """Keep an entity only if it starts after the previous kept one ended (nested ones go too)."""
    kept: list[Entity] = []
    last_end = 0
    for entity in entities:
        if entity["offset"] >= last_end:
            kept.append(entity)
            last_end = entity["offset"] + entity["length"]
    return kept


def _crosses(entity: Entity, quote: Entity) -> bool:
    start, end = entity["offset"], entity["offset"] + entity["length"]
    q_start, q_end = quote["offset"], quote["offset"] + quote["length"]
    inside = q_start <= start and end <= q_end
    outside = end <= q_start or start >= q_end
    contains = start <= q_start and q_end <= end
    return not (inside or outside or contains)


def fix_entities(entities: Iterable[Entity]) -> list[Entity]:
    """TDLib's fix_entities: resolve overlaps the way Telegram does before storing a message."""
    entities = sort_entities(e for e in entities if e["length"] > 0)
    continuous = [e for e in entities if e["type"] not in SPLITTABLE and e["type"] not in BLOCKQUOTES]
    quotes = [e for e in entities if e["type"] in BLOCKQUOTES]
    splittable = [e for e in entities if e["type"] in SPLITTABLE]

    continuous = _remove_intersecting(continuous)
    if quotes:
        quotes = _remove_intersecting(quotes)
        continuous = [e for e in continuous if not any(_crosses(e, q) for q in quotes)]
    others = sort_entities(continuous + quotes)

    boundaries = sorted({b for e in others for b in (e["offset"], e["offset"] + e["length"])})
    pre_ranges = [(e["offset"], e["offset"] + e["length"]) for e in others if e["type"] == "pre"]
    pieces: list[Entity] = []
    for kind in sorted({e["type"] for e in splittable}):
        for start, end in _merge_ranges(
            (e["offset"], e["offset"] + e["length"]) for e in splittable if e["type"] == kind
        ):
            cuts = [start] + [b for b in boundaries if start < b < end] + [end]
            for piece_start, piece_end in zip(cuts, cuts[1:], strict=False):
                if any(p_start <= piece_start and piece_end <= p_end for p_start, p_end in pre_ranges):
                    continue  # nothing is formatted inside a pre block
                pieces.append({"type": kind, "offset": piece_start, "length": piece_end - piece_start})
    return sort_entities(others + pieces)


def _merge_ranges(ranges: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# ---------------------------------------------------------------- cleaning and trimming


def _cleaned_char(ch: str) -> str | None:
    """What TDLib's clean_input_string makes of one character (None: removed)."""
    code = ord(ch)
    if code == 13:
        return None
    if code < 32 and code != 10:
        return " "  # including tab
    if 0x2028 <= code <= 0x202E:
        return None  # line/paragraph separators and bidi embedding marks
    if code in (0x0333, 0x033F, 0x030A):
        return None  # "vertical lines" TDLib strips
    return ch


def clean_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Clean the text and move the entities with it; errors as clean_input_string_with_entities."""
    starts = _unit_starts(text)
    total = starts[-1]
    unit_to_index = {unit: index for index, unit in enumerate(starts)}
    for entity in sorted(entities, key=sort_key):
        offset, end = entity["offset"], entity["offset"] + entity["length"]
        if offset > total:
            raise TextError(f"Entity begins after the end of the text at UTF-16 offset {offset}")
        if end > total:
            raise TextError(
                f"Entity beginning at UTF-16 offset {offset} ends after the end of the text at "
                f"UTF-16 offset {end}"
            )
        if offset not in unit_to_index:
            byte = utf8_offset(text, unit_to_index[offset + 1])
            raise TextError(f"Entity begins in a middle of a UTF-16 symbol at byte offset {byte}")
        if end not in unit_to_index:
            byte = utf8_offset(text, unit_to_index[end + 1])
            raise TextError(
                f"Entity beginning at UTF-16 offset {offset} ends in a middle of a UTF-16 symbol at "
                f"byte offset {byte}"
            )
    new_units = [0] * (len(text) + 1)
    out: list[str] = []
    unit = 0
    for index, ch in enumerate(text):
        new_units[index] = unit
        cleaned = _cleaned_char(ch)
        if cleaned is not None:
            out.append(cleaned)
            unit += 2 if ord(cleaned) > 0xFFFF else 1
    new_units[len(text)] = unit
    moved = []
    for entity in entities:
        start = new_units[unit_to_index[entity["offset"]]]
        end = new_units[unit_to_index[entity["offset"] + entity["length"]]]
        if end > start:
            moved.append({**entity, "offset": start, "length": end - start})
    return "".join(out), moved


def _units(text: str) -> list[str]:
    """One element per UTF-16 code unit: a character, or "" for the second half of a pair."""
    units: list[str] = []
    for ch in text:
        units.append(ch)
        if ord(ch) > 0xFFFF:
            units.append("")
    return units


def remove_whitespace_entities(text: str, entities: list[Entity]) -> list[Entity]:
    """TDLib's remove_invalid_entities: entities showing only spaces/newlines go, and visible
    entities do not start with whitespace."""
    units = _units(text)
    result = []
    for entity in entities:
        offset, length = entity["offset"], entity["length"]
        content = units[offset : offset + length]
        if entity["type"] not in HIDDEN_DATA:
            while length > 0 and content and content[0] in (" ", "\n"):
                content = content[1:]
                offset += 1
                length -= 1
        if length <= 0:
            continue
        if entity["type"] not in HIDDEN_DATA and all(u in (" ", "\n") for u in content):
            continue
        result.append({**entity, "offset": offset, "length": length})
    return result


def trim(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Strip leading/trailing spaces and newlines; entities are clamped and shifted."""
    units = _units(text)
    end = len(units)
    while end > 0 and units[end - 1] in (" ", "\n"):
        end -= 1
    first_entity = min((e["offset"] for e in entities), default=end)
    start = 0
    while start < min(end, first_entity) and units[start] in (" ", "\n"):
        start += 1
    trimmed = []
    for entity in entities:
        e_start, e_end = max(entity["offset"], start), min(entity["offset"] + entity["length"], end)
        if e_end > e_start:
            trimmed.append({**entity, "offset": e_start - start, "length": e_end - e_start})
    return "".join(units[start:end]), sort_entities(trimmed)


def limit_entities(entities: list[Entity]) -> list[Entity]:
    """Keep at most 100 entities like Telegram's server: continuous ones first, then splittable
    ones; custom emoji are not counted. The rest is dropped without an error."""
    kept: list[Entity] = []
    count = 0
    for group in (
        [e for e in entities if e["type"] not in SPLITTABLE],
        [e for e in entities if e["type"] in SPLITTABLE],
    ):
        for entity in group:
            if entity["type"] == "custom_emoji":
                kept.append(entity)
            elif count < MAX_ENTITIES:
                kept.append(entity)
                count += 1
    return sort_entities(kept)


# ---------------------------------------------------------------- automatic entities

_URL = re.compile(r"(?<![\w@/.])(?:https?://|www\.|t\.me/)[^\s<>\"']+", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w])")
_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")
_MENTION = re.compile(r"(?<!\w)@[A-Za-z0-9_]{2,32}(?!\w)")
_HASHTAG = re.compile(r"(?<![\w\u200c])#[\w\u200c]{1,256}(?![\w\u200c]*#)")
_CASHTAG = re.compile(r"(?<![\w$])\$(?:1INCH|[A-Z]{1,8})(?![\w$])")


def find_auto_entities(text: str) -> list[Entity]:
    """Entities Telegram detects by itself (TDLib find_entities, simplified: URLs need a scheme,
    "www." or "t.me/"; bare domains are not detected)."""
    starts = _unit_starts(text)
    found: list[tuple[int, int, str]] = []

    def add(start: int, end: int, kind: str) -> None:
        if not any(start < f_end and f_start < end for f_start, f_end, _ in found):
            found.append((start, end, kind))

    for match in _URL.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in ".,;:!?)]}'\"":
            end -= 1
        add(match.start(), end, "url")
    for match in _EMAIL.finditer(text):
        add(match.start(), match.end(), "email")
    for pattern, kind in ((_BOT_COMMAND, "bot_command"), (_MENTION, "mention"), (_CASHTAG, "cashtag")):
        for match in pattern.finditer(text):
            add(match.start(), match.end(), kind)
    for match in _HASHTAG.finditer(text):
        if any(ch.isalpha() for ch in match.group(0)[1:]):
            add(match.start(), match.end(), "hashtag")
    return [
        {"type": kind, "offset": starts[start], "length": starts[end] - starts[start]}
        for start, end, kind in found
    ]


def merge_auto_entities(entities: list[Entity], auto: list[Entity]) -> list[Entity]:
    """Detected entities are added where they do not collide with the given continuous ones."""
    blocking = [e for e in entities if e["type"] not in SPLITTABLE and e["type"] not in BLOCKQUOTES]
    quotes = [e for e in entities if e["type"] in BLOCKQUOTES]
    merged = list(entities)
    for candidate in auto:
        start, end = candidate["offset"], candidate["offset"] + candidate["length"]
        if any(start < b["offset"] + b["length"] and b["offset"] < end for b in blocking):
            continue
        if any(_crosses(candidate, q) for q in quotes):
            continue
        merged.append(candidate)
    return sort_entities(merged)


# ---------------------------------------------------------------- the whole pipeline


@dataclass(frozen=True)
class FormattedText:
    text: str
    entities: list[Entity]


def normalise(
    text: str,
    entities: list[Entity],
    *,
    allow_empty: bool = False,
    detect_entities: bool = True,
) -> FormattedText:
    """TDLib's fix_formatted_text, as applied to text a bot sends.

    Raises TextError("Text must be non-empty") when nothing visible is left and allow_empty is off.
    """
    for entity in entities:
        if not 0 <= entity["offset"] <= 1_000_000:
            raise TextError(f"Receive an entity with incorrect offset {entity['offset']}")
        if not 0 <= entity["length"] <= 1_000_000:
            raise TextError(f"Receive an entity with incorrect length {entity['length']}")
    text, entities = clean_text(text, [e for e in entities if e["length"] > 0])
    entities = fix_entities(entities)
    entities = remove_whitespace_entities(text, entities)
    entities = fix_entities(entities)
    text, entities = trim(text, entities)
    if not text.strip(" \n"):
        if allow_empty:
            return FormattedText("", [])
        raise TextError("Text must be non-empty")
    entities = limit_entities(entities)
    if detect_entities:
        entities = merge_auto_entities(entities, find_auto_entities(text))
    entities = remove_whitespace_entities(text, entities)
    return FormattedText(text, sort_entities(entities))


# ---------------------------------------------------------------- rendering for assertions

_OPEN: dict[str, Callable[[Entity], str]] = {
    "bold": lambda e: "<b>",
    "italic": lambda e: "<i>",
    "underline": lambda e: "<u>",
    "strikethrough": lambda e: "<s>",
    "spoiler": lambda e: "<tg-spoiler>",
    "code": lambda e: "<code>",
    "pre": lambda e: (
        f'<pre><code class="language-{html.escape(e["language"])}">' if e.get("language") else "<pre>"
    ),
    "text_link": lambda e: f'<a href="{html.escape(e.get("url", ""))}">',
    "text_mention": lambda e: f'<a href="tg://user?id={e.get("user", {}).get("id", 0)}">',
    "blockquote": lambda e: "<blockquote>",
    "expandable_blockquote": lambda e: "<blockquote expandable>",
    "custom_emoji": lambda e: f'<tg-emoji emoji-id="{e.get("custom_emoji_id", "")}">',
}
_CLOSE: dict[str, Callable[[Entity], str]] = {
    "bold": lambda e: "</b>",
    "italic": lambda e: "</i>",
    "underline": lambda e: "</u>",
    "strikethrough": lambda e: "</s>",
    "spoiler": lambda e: "</tg-spoiler>",
    "code": lambda e: "</code>",
    "pre": lambda e: "</code></pre>" if e.get("language") else "</pre>",
    "text_link": lambda e: "</a>",
    "text_mention": lambda e: "</a>",
    "blockquote": lambda e: "</blockquote>",
    "expandable_blockquote": lambda e: "</blockquote>",
    "custom_emoji": lambda e: "</tg-emoji>",
}


def render_html(text: str, entities: Iterable[Entity], *, escape: bool = True) -> str:
    """Render text + entities as Telegram HTML, e.g. bold → ``<b>…</b>``, for readable assertions.

    Automatic entities (url, mention, hashtag, ...) are not rendered. Overlapping entities are
    closed and reopened so the output is always well nested (and parses back in parse_mode HTML).
    """
    shown = [e for e in sort_entities(entities) if e["type"] in _OPEN and e["length"] > 0]
    units = _units(text)
    out: list[str] = []
    stack: list[Entity] = []
    pending = list(shown)

    def end_of(entity: Entity) -> int:
        return entity["offset"] + entity["length"]

    for position in range(len(units) + 1):
        # Close everything ending here; entities above one that ends are closed and reopened.
        if any(end_of(e) == position for e in stack):
            reopen: list[Entity] = []
            while any(end_of(e) == position for e in stack):
                top = stack.pop()
                out.append(_CLOSE[top["type"]](top))
                if end_of(top) != position:
                    reopen.append(top)
            for entity in reversed(reopen):
                out.append(_OPEN[entity["type"]](entity))
                stack.append(entity)
        starting = [e for e in pending if e["offset"] == position]
        for entity in starting:  # sorted longest first, so outer entities open first
            pending.remove(entity)
            out.append(_OPEN[entity["type"]](entity))
            stack.append(entity)
        if position < len(units):
            unit = units[position]
            out.append(html.escape(unit, quote=False) if escape else unit)
    return "".join(out)
