"""How a user message with pictures goes to Kimi: image parts for a model that sees, a short
placeholder for one that does not (Kimi answers 400 to image parts on a text-only model)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.images import data_url, stored_image_tokens
from bot.token_bound import register_part_bound
from storage import StoredImage


def placeholder(count: int) -> str:
    # Said to the model, not to the user: it explains why a follow-up cannot be about the pixels.
    if count == 1:
        return "[The user showed a picture here; the current model cannot see pictures.]"
    return f"[The user showed {count} pictures here; the current model cannot see pictures.]"


def user_content(text: str, images: Sequence[StoredImage], vision: bool) -> str | list[dict[str, Any]]:
    """The content of a user message: one image_url part per picture and the text last, or, for
    a model without vision, the text with a placeholder."""
    if not images:
        return text
    if not vision:
        return f"{placeholder(len(images))}\n{text}".strip()
    parts: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": data_url(image.mime, image.data)}} for image in images
    ]
    if text:
        parts.append({"type": "text", "text": text})
    return parts


def content_image_tokens(content: object) -> int:
    """An upper bound of the tokens of the image parts in a message's content."""
    if not isinstance(content, list):
        return 0
    return sum(
        image_part_bound(part)
        for part in content
        if isinstance(part, dict) and part.get("type") == "image_url"
    )


def image_part_bound(part: Mapping[str, Any]) -> int:
    """The guaranteed bound of one image_url part: by the picture's pixels, never its base64."""
    url = str((part.get("image_url") or {}).get("url", ""))
    _, _, encoded = url.partition(";base64,")
    return stored_image_tokens(encoded)


# The local token bound (bot/token_bound.py) refuses parts it has no bound for.
register_part_bound("image_url", image_part_bound)


def content_text(content: object) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""
