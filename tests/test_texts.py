"""The text catalog: both languages say the same things, with the same placeholders, and every
Kimi error has its entry."""

from __future__ import annotations

import string

import pytest

import bot.kimi.errors as kimi_errors
from bot.kimi import KimiError
from handlers import app  # noqa: F401 - imports every handler module, as the running bot does
from handlers.texts import _TEXTS, error_text, language_of, text


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def test_chinese_and_english_have_the_same_keys():
    assert set(_TEXTS) == {"en", "zh"}
    assert sorted(set(_TEXTS["en"]) - set(_TEXTS["zh"])) == []
    assert sorted(set(_TEXTS["zh"]) - set(_TEXTS["en"])) == []


@pytest.mark.parametrize("key", sorted(_TEXTS["en"]))
def test_each_text_has_the_same_placeholders_in_both_languages(key):
    assert _placeholders(_TEXTS["zh"][key]) == _placeholders(_TEXTS["en"][key]), key


def _error_classes(cls: type[KimiError]) -> list[type[KimiError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found += _error_classes(sub)
    return found


def test_every_kimi_error_has_its_text_in_both_languages():
    keys = {cls.text_key_name for cls in _error_classes(KimiError)}
    keys |= {
        kimi_errors.KimiFileLimit(kind=kind).text_key()
        for kind in ("too_large", "empty", "too_many", "total_size")
    }
    for key in keys:
        assert key in _TEXTS["en"] and key in _TEXTS["zh"], key
    assert error_text("zh", kimi_errors.KimiRateLimited()) == _TEXTS["zh"]["kimi_rate_limited"]


def test_the_language_is_chinese_for_any_chinese_code_and_english_otherwise():
    assert [language_of(code) for code in ("zh", "zh-hans", "ZH-TW", "en", "ru", "", None)] == [
        "zh",
        "zh",
        "zh",
        "en",
        "en",
        "en",
        "en",
    ]
    assert text("ru", "note_stopped") == text("en", "note_stopped")
