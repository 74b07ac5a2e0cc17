"""Long answers continue in new messages: nothing lost, nothing shown twice, code reopened."""

from __future__ import annotations

from telegram import MessageEntity

from handlers.rendering import (
    RenderedMessage,
    plain_chunks,
    render_for_telegram,
    render_markdown,
    split_rendered,
    utf16_len,
)
from handlers.rendering.split import plan_cuts
from tests.test_rendering_checks import assert_pieces_rebuild, assert_valid, covered_text


def paragraph(n: int) -> str:
    return f"Paragraph {n}: **bold {n}** " + " ".join(f"word{n}x{i}" for i in range(60)) + "."


def test_ten_thousand_characters_give_three_messages_that_read_as_the_whole() -> None:
    markdown = "\n\n".join(paragraph(n) for n in range(18))
    whole = render_markdown(markdown)
    assert 10_000 <= len(whole.text) < 11_000

    pieces = render_for_telegram(markdown)

    assert len(pieces) == 3
    for piece in pieces:
        assert_valid(piece)
    assert_pieces_rebuild(whole.text, [p.text for p in pieces])
    # Cut at paragraph boundaries: every piece starts and ends with a whole paragraph.
    for piece in pieces:
        assert piece.text.startswith("Paragraph ") and piece.text.endswith(".")
    assert "\n\n".join(p.text for p in pieces) == whole.text


def test_a_code_block_cut_in_the_middle_is_reopened_with_its_language() -> None:
    code = "\n".join(f"    print('line {i}')  # {'x' * 20}" for i in range(200))
    markdown = f"Intro.\n\n```python\ndef main():\n{code}\n```\n\nOutro."
    whole = render_markdown(markdown)

    pieces = split_rendered(whole)

    assert len(pieces) == 3
    for piece in pieces:
        assert_valid(piece)
    assert_pieces_rebuild(whole.text, [p.text for p in pieces])
    second = pieces[1]
    (pre,) = second.entities
    assert (pre.type, pre.offset, pre.language) == ("pre", 0, "python")
    assert pre.length == second.utf16_length()  # the whole middle piece is code
    first_pre = pieces[0].entities[-1]
    assert first_pre.offset + first_pre.length == pieces[0].utf16_length()
    # Cut at line ends: every line of code arrives whole, in one message or the other.
    lines = [line for p in pieces for line in p.text.splitlines()]
    assert lines.count("    print('line 100')  # " + "x" * 20) == 1


def test_a_long_line_is_cut_at_a_space() -> None:
    text = " ".join(f"w{i:04d}" for i in range(2000))  # 12 000 characters, no line breaks

    chunks = plain_chunks(text)

    assert len(chunks) == 3
    assert all(utf16_len(c) <= 4096 for c in chunks)
    assert " ".join(chunks) == text


def test_chinese_without_spaces_is_cut_after_punctuation() -> None:
    sentence = "这是一个没有空格的很长的中文句子，用来测试切分。"
    text = sentence * 400

    chunks = plain_chunks(text)

    assert "".join(chunks) == text
    assert all(c.endswith(("。", "，")) for c in chunks[:-1])
    assert all(utf16_len(c) <= 4096 for c in chunks)


def test_hard_cut_never_splits_an_emoji() -> None:
    text = "😀" * 5000  # 10 000 UTF-16 units, no boundary anywhere

    chunks = plain_chunks(text)

    assert [utf16_len(c) for c in chunks] == [4096, 4096, 1808]
    assert "".join(chunks) == text


def test_hard_cut_keeps_emoji_sequences_together_where_it_can() -> None:
    family = "👨‍👩‍👧"  # 8 UTF-16 units
    text = family * 10

    chunks = plain_chunks(text, limit=20)

    assert "".join(chunks) == text
    assert all(c.replace(family, "") == "" for c in chunks)


def test_more_than_100_entities_are_spread_over_messages() -> None:
    markdown = " ".join(f"**b{i}**" for i in range(250))  # short text, 250 bold words
    whole = render_markdown(markdown)
    assert len(whole.entities) == 250 and whole.utf16_length() < 4096

    pieces = split_rendered(whole)

    assert len(pieces) == 3
    for piece in pieces:
        assert_valid(piece)
    assert sum(len(p.entities) for p in pieces) == 250  # none dropped
    assert_pieces_rebuild(whole.text, [p.text for p in pieces])


def test_entity_crossing_a_cut_continues_in_the_next_piece() -> None:
    text = "aaaa bbbb cccc dddd"
    message = RenderedMessage(text, (MessageEntity("bold", 5, 9),))  # "bbbb cccc"

    pieces = split_rendered(message, limit=10)

    assert [p.text for p in pieces] == ["aaaa bbbb", "cccc dddd"]
    assert [[(str(e.type), covered_text(p, e)) for e in p.entities] for p in pieces] == [
        [("bold", "bbbb")],
        [("bold", "cccc")],
    ]


def test_clipped_entity_that_would_cover_only_whitespace_is_dropped() -> None:
    text = "aaaa\n\n  bbbb"
    message = RenderedMessage(text, (MessageEntity("italic", 4, 4),))  # "\n\n  "

    pieces = split_rendered(message, limit=8)

    assert [p.text for p in pieces] == ["aaaa", "  bbbb"]
    assert all(p.entities == () for p in pieces)


def test_paragraph_break_is_preferred_over_a_later_line_break() -> None:
    text = "a" * 60 + "\n\n" + "b" * 20 + "\n" + "c" * 10 + "\n" + "d" * 30

    assert plain_chunks(text, limit=100) == ["a" * 60, "b" * 20 + "\n" + "c" * 10 + "\n" + "d" * 30]
    # ...but only in the last half of the window: too early, and a line break wins.
    text = "a" * 10 + "\n\n" + "b" * 60 + "\n" + "c" * 60
    assert plain_chunks(text, limit=100) == ["a" * 10 + "\n\n" + "b" * 60, "c" * 60]


def test_indentation_after_a_line_cut_is_kept() -> None:
    text = "x" * 70 + "\n    indented"
    assert plain_chunks(text, limit=80) == ["x" * 70, "    indented"]


def test_plan_cuts_separators_are_whitespace_only() -> None:
    text = "one two\n\n\nthree four five\nsix"
    cuts = plan_cuts(text, limit=9)
    pieces = [text[c.start : c.end] for c in cuts]
    assert pieces == ["one two", "three", "four five", "six"]
    for cut, following in zip(cuts, cuts[1:], strict=False):
        assert text[cut.end : following.start].isspace()


def test_short_message_is_returned_as_is_and_blank_one_dropped() -> None:
    message = RenderedMessage("hi", (MessageEntity("bold", 0, 2),))
    assert split_rendered(message) == [message]
    assert split_rendered(RenderedMessage(" \n ")) == []
    assert plain_chunks("   ") == []


def test_hard_cut_keeps_flags_and_keycaps_whole() -> None:
    for unit in ("🇨🇳", "1️⃣", "e\u0301"):  # a run of flags pairs up from its start
        text = unit * 40
        for limit in (5, 7, 9):
            chunks = plain_chunks(text, limit=limit)
            assert "".join(chunks) == text
            assert all(c.replace(unit, "") == "" for c in chunks), (unit, limit, chunks)


def test_while_streaming_a_full_message_keeps_its_text_as_more_arrives() -> None:
    """The streamer finalises pieces before the last one; they should not change afterwards."""
    section = (
        "## Step {n}\n\nFirst we **prepare** the data, then we call `run()` as shown "
        "in [the guide](https://example.com/guide). 这一步很重要，因为后面会用到。\n\n"
        "```python\n" + "\n".join(f"result_{{n}}_{i} = run(step={i})" for i in range(12)) + "\n```\n\n"
        "- check the output\n- compare with the table:\n\n| step | ok |\n|---|---|\n| {n} | ✅ |\n\n"
    )
    answer = "".join(section.format(n=n) for n in range(25))
    settled: dict[int, str] = {}
    for end in range(0, len(answer) + 40, 40):
        pieces = render_for_telegram(answer[:end])
        for index, piece in enumerate(pieces[:-1]):
            assert settled.setdefault(index, piece.text) == piece.text
    assert len(settled) >= 2
