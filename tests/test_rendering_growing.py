"""A streaming answer's progress is rendered a block at a time, and looks like the whole render."""

from __future__ import annotations

import random

import pytest

from bench.answer import realistic_answer
from handlers.rendering import GrowingRender, render_for_telegram
from handlers.rendering import growing as growing_module
from handlers.rendering.growing import block_ends
from tests.test_rendering_checks import assert_valid
from tests.test_rendering_properties import document


def as_tuples(pieces):
    return [(piece.text, piece.entities) for piece in pieces]


def test_at_every_line_the_progress_is_the_whole_render():
    markdown = realistic_answer(12_000)
    growing = GrowingRender()
    line_ends = [index + 1 for index, char in enumerate(markdown) if char == "\n"]
    for end in line_ends:
        prefix = markdown[:end]
        assert as_tuples(growing.render(prefix)) == as_tuples(render_for_telegram(prefix)), end


@pytest.mark.parametrize("seed", range(20))
def test_any_prefix_of_any_document_renders_valid(seed: int):
    rng = random.Random(seed)
    markdown = document(rng, 12)
    growing = GrowingRender()
    for end in range(1, len(markdown) + 1, 7):
        pieces = growing.render(markdown[:end], 300)
        for piece in pieces:
            assert_valid(piece, 300)
        # Something shows whenever the whole render shows something (a draft is never blank).
        assert bool(pieces) == bool(render_for_telegram(markdown[:end], 300))


def test_each_finished_block_is_rendered_once(monkeypatch: pytest.MonkeyPatch):
    rendered: list[str] = []
    real = growing_module.render_spans

    def counting(markdown: str):
        rendered.append(markdown)
        return real(markdown)

    monkeypatch.setattr(growing_module, "render_spans", counting)
    paragraphs = [f"Paragraph {n} with **bold** words and `code`." for n in range(50)]
    growing = GrowingRender()
    answer = ""
    for paragraph in paragraphs:
        answer += paragraph + "\n\n"
        growing.render(answer + "and more")
    # Linear, not quadratic: each paragraph as a finished block once, and once in the tail (it is
    # only known finished when the next line is complete); a whole render each time is ~25x.
    assert sum(len(text) for text in rendered) < 3 * len(answer)


def test_a_blank_line_inside_fenced_code_is_no_block_end():
    markdown = "Intro\n\n```python\na = 1\n\nb = 2\n```\n\nAfter\n\n$$\nx\n\ny\n$$\n\nEnd\nmore"
    starts = [markdown[end:].split("\n", 1)[0] for end in block_ends(markdown)]
    assert starts == ["```python", "After", "$$", "End"]


def test_an_indented_line_may_continue_a_list_item():
    markdown = "- item\n\n    still the item\n\nNext paragraph\nmore"
    assert [markdown[end:].split("\n", 1)[0] for end in block_ends(markdown)] == ["Next paragraph"]


def test_the_last_line_decides_nothing_while_it_grows():
    # "``" may become a fence: the block before it is cut only once the line is complete.
    assert block_ends("Intro\n\n``") == []
    assert block_ends("Intro\n\n```\n") == [len("Intro\n\n")]


def test_a_text_that_does_not_grow_starts_afresh():
    growing = GrowingRender()
    growing.render("First answer.\n\nSecond paragraph.\n\nThird")
    other = "Something else entirely.\n\nWith *emphasis*."
    assert as_tuples(growing.render(other)) == as_tuples(render_for_telegram(other))


def test_the_entities_of_finished_blocks_are_built_once():
    growing = GrowingRender()
    first = growing.render("A **bold** start.\n\nThen `code`.\n\nAnd")
    later = growing.render("A **bold** start.\n\nThen `code`.\n\nAnd *more* text")
    bold_then, code_then = first[0].entities
    assert later[0].entities[0] is bold_then and later[0].entities[1] is code_then
    assert [e.type for e in later[0].entities] == ["bold", "code", "italic"]
