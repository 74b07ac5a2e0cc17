"""Pictures for Kimi's vision models: checked, downscaled, and bounded in tokens.

Kimi reads png, jpeg, webp and gif, given as a base64 `data:` URL in an `image_url` part. It bills
an image by its resolution (14×14-pixel tiles on k2.5/k2.6), so a 12-megapixel phone photo costs
far more than the same picture at 2048 pixels, where nothing a person asks about is lost: larger
pictures are scaled down before sending, and that smaller copy is what the conversation keeps.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

# Pillow (~3 MB of memory) is imported by the functions that read a picture, when the first one
# comes: most bots never see one, and an idle process should not carry it.

# Telegram lets a bot download at most 20 MB, and Kimi's request would carry it as base64 (a
# third larger again): larger pictures are refused with a short reply.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Decoding a picture takes width × height × 4 bytes of memory; beyond this it is refused (it is
# also Pillow's guard against decompression bombs).
MAX_IMAGE_PIXELS = 50_000_000
# The longest side sent to Kimi; larger pictures are scaled down to it.
MAX_SIDE = 2048
# A kept picture stays under this size (it is re-encoded smaller if it is not).
MAX_STORED_BYTES = 1024 * 1024
JPEG_QUALITY = 85

# Tokens: one per 14×14 tile (k2.5/k2.6), with each side rounded up and a tile's worth extra per
# side for the encoder's padding, plus a fixed allowance for the image's own markers. Kimi's help
# centre also speaks of a flat 1,024 tokens per image on its vision models: never less than that.
TILE = 14
IMAGE_OVERHEAD_TOKENS = 64
FLAT_IMAGE_TOKENS = 1024

HEADER_PREFIX_CHARS = 64 * 1024  # base64 characters (48 KB) read to find a kept picture's size

_KIMI_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class ImageRejected(Exception):
    """The picture cannot be sent; reason is "too_large" or "unreadable"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PreparedImage:
    mime: str
    data: bytes
    width: int
    height: int

    @property
    def base64(self) -> str:
        return base64.b64encode(self.data).decode("ascii")


def prepare_image(data: bytes) -> PreparedImage:
    """The picture as it goes to Kimi: a format Kimi reads, at most MAX_SIDE on its longest side
    and MAX_STORED_BYTES in size. Raises ImageRejected."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRejected("too_large")
    from PIL import Image, UnidentifiedImageError  # see the top of the module

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageRejected("too_large")
            mime = _KIMI_FORMATS.get(image.format or "")
            fits = max(width, height) <= MAX_SIDE and len(data) <= MAX_STORED_BYTES
            if mime is not None and fits:
                image.verify()  # the bytes go as they are, so they must decode
                return PreparedImage(mime, data, width, height)
            if image.format == "JPEG" and max(width, height) > MAX_SIDE:
                # Let the JPEG decoder scale down by 1/2, 1/4… while decoding (never below the
                # target): a 24 MP photo is then decoded at a quarter of the pixels.
                scale = MAX_SIDE / max(width, height)
                image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
            image.load()
            return _reencode(image)
    except ImageRejected:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError):
        raise ImageRejected("unreadable") from None


def _reencode(image: Image.Image) -> PreparedImage:
    from PIL import Image  # see the top of the module

    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # an animation: its first frame
    scale = min(1.0, MAX_SIDE / max(image.size))
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        encoded = _encode(image.convert("RGBA"), "PNG")
        if len(encoded) <= MAX_STORED_BYTES:
            return PreparedImage("image/png", encoded, image.width, image.height)
    rgb = image.convert("RGB")
    quality = JPEG_QUALITY
    encoded = _encode(rgb, "JPEG", quality=quality)
    while len(encoded) > MAX_STORED_BYTES and quality > 40:
        quality -= 15
        encoded = _encode(rgb, "JPEG", quality=quality)
    while len(encoded) > MAX_STORED_BYTES:
        rgb = rgb.resize((max(1, rgb.width * 3 // 4), max(1, rgb.height * 3 // 4)), Image.Resampling.LANCZOS)
        encoded = _encode(rgb, "JPEG", quality=quality)
    return PreparedImage("image/jpeg", encoded, rgb.width, rgb.height)


def _encode(image: Image.Image, kind: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind, **options)
    return buffer.getvalue()


def image_token_bound(width: int, height: int) -> int:
    """An upper bound of what Kimi counts for a picture of this size."""
    tiles = (math.ceil(width / TILE) + 1) * (math.ceil(height / TILE) + 1)
    return max(tiles, FLAT_IMAGE_TOKENS) + IMAGE_OVERHEAD_TOKENS


def data_url(mime: str, base64_data: str) -> str:
    return f"data:{mime};base64,{base64_data}"


def stored_image_tokens(base64_data: str) -> int:
    """The token bound of a kept picture, from its size in its header (no full decode). An
    unreadable one counts as the largest picture that is ever sent."""
    # Called for every kept picture on every turn: the header is near the start, so a prefix is
    # decoded first (a multiple of 4 base64 characters), the whole picture only if that fails.
    from PIL import Image, UnidentifiedImageError  # see the top of the module

    for prefix in (base64_data[:HEADER_PREFIX_CHARS], base64_data):
        try:
            with Image.open(io.BytesIO(base64.b64decode(prefix))) as image:
                return image_token_bound(*image.size)
        except (UnidentifiedImageError, OSError, ValueError):
            continue
    return image_token_bound(MAX_SIDE, MAX_SIDE)
