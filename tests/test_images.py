"""bot/images.py: what a picture becomes before it goes to Kimi, and its token bound."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import bot.vision  # noqa: F401 - registers the image part bound
from bot.images import (
    MAX_SIDE,
    MAX_STORED_BYTES,
    ImageRejected,
    data_url,
    image_token_bound,
    prepare_image,
    stored_image_tokens,
)
from bot.token_bound import content_bound
from tests.fakes.kimi import image_tokens


def encoded(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def test_a_small_jpeg_goes_as_it_is():
    data = encoded(Image.new("RGB", (320, 200), "red"), "JPEG")
    prepared = prepare_image(data)
    assert (prepared.mime, prepared.data, prepared.width, prepared.height) == ("image/jpeg", data, 320, 200)


def test_a_large_picture_is_scaled_down_and_a_bmp_becomes_a_format_kimi_reads():
    prepared = prepare_image(encoded(Image.new("RGB", (5000, 1000), "blue"), "BMP"))
    assert prepared.mime == "image/jpeg" and (prepared.width, prepared.height) == (MAX_SIDE, 410)
    assert len(prepared.data) <= MAX_STORED_BYTES


def test_transparency_is_kept_as_png():
    prepared = prepare_image(encoded(Image.new("RGBA", (3000, 3000), (0, 0, 0, 0)), "PNG"))
    assert prepared.mime == "image/png" and prepared.width == MAX_SIDE


def test_noise_too_big_to_keep_is_re_encoded_under_the_cap():
    noise = Image.frombytes("RGB", (2000, 2000), bytes(range(256)) * (2000 * 2000 * 3 // 256))
    prepared = prepare_image(encoded(noise, "PNG"))
    assert len(prepared.data) <= MAX_STORED_BYTES


def test_refusals():
    with pytest.raises(ImageRejected) as rejected:
        prepare_image(b"\x89PNG\r\n\x1a\n not a picture")
    assert rejected.value.reason == "unreadable"
    with pytest.raises(ImageRejected) as rejected:
        prepare_image(encoded(Image.new("1", (10_000, 6_000)), "PNG"))  # 60 megapixels
    assert rejected.value.reason == "too_large"


@pytest.mark.parametrize("size", [(1, 1), (14, 14), (15, 29), (640, 480), (2048, 1536), (2047, 13)])
def test_the_token_bound_is_never_below_the_tiles(size):
    picture = prepare_image(encoded(Image.new("RGB", size, "white"), "PNG"))
    url = data_url(picture.mime, picture.base64)
    tiles = image_tokens(url)  # the fake's count: a token per 14×14 tile
    assert image_token_bound(*size) >= tiles
    assert stored_image_tokens(picture.base64) == image_token_bound(*size)
    # The request bound counts the picture by its pixels, not by its base64 text.
    part = [{"type": "image_url", "image_url": {"url": url}}]
    assert content_bound(part) == image_token_bound(*size)


def test_a_large_jpeg_is_decoded_scaled_and_still_reaches_the_full_target_size():
    prepared = prepare_image(encoded(Image.new("RGB", (6000, 4000), "green"), "JPEG"))
    assert (prepared.mime, prepared.width, prepared.height) == ("image/jpeg", MAX_SIDE, 1365)
