"""Button payloads: every kind reads back as written, and nothing else is taken for one."""

from __future__ import annotations

import pytest

from handlers.buttons import ChooseModel, ConfirmSummary, StopAnswer, decode, encode, fits, pressed


@pytest.mark.parametrize(
    "data",
    [
        StopAnswer("AbC-12_x"),
        ChooseModel("kimi-k2-thinking"),
        ChooseModel("moonshot-v1-8k:with:colons"),
        ConfirmSummary("tok:en", go=True),
        ConfirmSummary("token", go=False),
    ],
)
def test_every_kind_reads_back_as_written(data):
    raw = encode(data)
    assert decode(raw) == data
    assert pressed(type(data))(raw)
    assert not any(
        pressed(kind)(raw) for kind in (StopAnswer, ChooseModel, ConfirmSummary) if kind is not type(data)
    )


def test_the_wire_format_stays_what_buttons_already_shown_carry():
    assert encode(StopAnswer("t")) == "stop:t"
    assert encode(ChooseModel("m")) == "model:m"
    assert encode(ConfirmSummary("t", go=True)) == "doc:yes:t"
    assert encode(ConfirmSummary("t", go=False)) == "doc:no:t"


@pytest.mark.parametrize("raw", [None, 42, "", "stop", "unknown:x", "models:x"])
def test_data_this_bot_never_wrote_is_no_button(raw):
    assert decode(raw) is None


def test_a_model_name_too_long_for_telegram_does_not_fit():
    assert fits(ChooseModel("m" * 58))
    assert not fits(ChooseModel("m" * 59))
