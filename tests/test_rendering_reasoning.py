"""While a thinking model streams: its reasoning folded in a quote, never inside the answer."""

from __future__ import annotations

from handlers.rendering import (
    DEFAULT_REASONING_LABEL,
    render_markdown,
    render_reasoning_preview,
    utf16_len,
)
from tests.test_rendering_checks import assert_valid, covered_text


def test_reasoning_is_an_expandable_quote_under_the_label() -> None:
    preview = render_reasoning_preview("The user asks about **pricing**.\nLet me check.", "")

    assert_valid(preview)
    assert preview.text == "💭\nThe user asks about **pricing**.\nLet me check."
    (quote,) = preview.entities
    assert quote.type == "expandable_blockquote"
    assert covered_text(preview, quote) == "The user asks about **pricing**.\nLet me check."


def test_caller_chooses_the_label() -> None:
    preview = render_reasoning_preview("thinking about it", "", label="💭 思考中…")
    assert preview.text.startswith("💭 思考中…\n")
    assert DEFAULT_REASONING_LABEL == "💭"


def test_long_reasoning_keeps_its_end_and_fits() -> None:
    reasoning = " ".join(f"step{i}" for i in range(3000)) + " so the answer is 42"

    preview = render_reasoning_preview(reasoning, "", limit=4096)

    assert_valid(preview)
    assert preview.utf16_length() <= 4096
    assert preview.utf16_length() > 4000  # uses the room it has
    (quote,) = preview.entities
    shown = covered_text(preview, quote)
    assert shown.startswith("…step")  # cut at a word boundary, marked as cut
    assert shown.endswith("so the answer is 42")


def test_truncation_never_splits_an_emoji() -> None:
    reasoning = "🤔" * 3000

    preview = render_reasoning_preview(reasoning, "", limit=101)

    assert_valid(preview, limit=101)
    assert preview.text == "💭\n…" + "🤔" * 48  # 2 + 1 + 1 + 96 = 100: a 49th would not fit


def test_answer_follows_the_quote_with_its_own_formatting() -> None:
    preview = render_reasoning_preview("Thought it through.", "The answer is **42** 😀.")

    assert_valid(preview)
    assert preview.text == "💭\nThought it through.\n\nThe answer is 42 😀."
    assert [(e.type, covered_text(preview, e)) for e in preview.entities] == [
        ("expandable_blockquote", "Thought it through."),
        ("bold", "42"),
    ]


def test_answer_has_priority_over_the_reasoning() -> None:
    answer = "Final answer. " * 280  # about 3900 units
    preview = render_reasoning_preview("r " * 5000, answer, limit=4096)

    assert_valid(preview)
    assert preview.text.endswith(render_markdown(answer).text)
    quote = preview.entities[0]
    assert quote.type == "expandable_blockquote"
    assert covered_text(preview, quote).startswith("…")


def test_an_answer_too_long_for_one_message_shows_its_last_piece() -> None:
    answer = "\n\n".join(f"Paragraph {i} " + "text " * 100 for i in range(20))

    preview = render_reasoning_preview("reasoning", answer, limit=4096)

    assert_valid(preview)
    whole = render_markdown(answer).text
    assert len(whole) > 4096
    assert preview.text.startswith("💭\nreasoning\n\nParagraph ")  # a piece starts at a paragraph
    assert preview.text.endswith(whole[-500:])


def test_nothing_yet_shows_the_label_alone() -> None:
    assert render_reasoning_preview("", "").text == "💭"
    assert render_reasoning_preview("   ", "", label="  ").text == "💭"


def test_the_preview_stays_within_100_entities() -> None:
    answer = " ".join(f"**{i}**" for i in range(150))
    preview = render_reasoning_preview("thinking", answer)

    assert_valid(preview)
    assert preview.entities[0].type == "expandable_blockquote"  # the quote outranks bold
    assert utf16_len(preview.text) <= 4096
