"""Properties that hold for any Markdown a model might write, checked on generated documents.

Generated with plain ``random`` and fixed seeds, so a failure reproduces. Every document is also
checked at many of its prefixes, because that is what streaming renders: half-open fences, links
and tables included.
"""

from __future__ import annotations

import random
import re

import pytest

from handlers.rendering import (
    RenderedMessage,
    plain_chunks,
    render_markdown,
    render_reasoning_preview,
    split_rendered,
    utf16_len,
)
from tests.test_rendering_checks import (
    assert_pieces_rebuild,
    assert_valid,
    utf16_boundaries,
)

WORDS = [
    "Kimi",
    "answer",
    "token",
    "模型",
    "你好世界",
    "上下文",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "🇨🇳",
    "naïve",
    "e\u0301",
    "x",
    "a_b",
    "snake_case",
    "1.5",
    "$5",
    "~approx",
    "<br>",
    "<b>",
    "</b>",
    "<T>",
    "List<String>",
    "&amp;",
    "\\(\\alpha\\)",
    "$x^2$",
    "|",
    "*",
    "**",
    "_",
    "`",
    "[",
    "]",
    "(",
    ")",
    "\\",
    "~~",
    "||",
    "#",
    ">",
    "<!--",
    "-->",
    "https://example.com/a_(b)",
]
INLINE = [
    "**{}**",
    "*{}*",
    "_{}_",
    "~~{}~~",
    "`{}`",
    "||{}||",
    "[{}](https://example.com/{})",
    "[{}](relative/{})",
    "[{}](https://ex.com",
    "**{} `code` {}**",
    "[`{}`](https://x.org)",
    "<b>{}</b>",
    "{}<br>{}",
    "$\\frac{{1}}{{2}}$ {}",
    "***{}***",
    "**{}",
    "{}**",
]
LANGUAGES = ["python", "js", "", "c++", "sh title=x", "{r}", "mermaid"]


def sentence(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 12)):
        word = rng.choice(WORDS)
        if rng.random() < 0.3:
            word = rng.choice(INLINE).format(word, rng.choice(WORDS))
        parts.append(word)
    return " ".join(parts)


def block(rng: random.Random, depth: int = 0) -> str:
    kind = rng.randrange(12)
    if kind == 0:
        return "#" * rng.randint(1, 6) + " " + sentence(rng)
    if kind == 1:
        marker = rng.choice(["-", "*", "1.", "2)", "- [ ]", "- [x]"])
        items = []
        for _ in range(rng.randint(1, 4)):
            item = f"{marker} {sentence(rng)}"
            if depth < 2 and rng.random() < 0.3:
                item += "\n" + "\n".join("   " + line for line in block(rng, depth + 1).splitlines())
            items.append(item)
        return "\n".join(items)
    if kind == 2:
        lang = rng.choice(LANGUAGES)
        lines = [
            rng.choice(["x = 1", "    return f(x)", "<br>", "**not bold**", "中文 😀", ""])
            for _ in range(rng.randint(0, 8))
        ]
        fence = rng.choice(["```", "~~~"])
        return f"{fence}{lang}\n" + "\n".join(lines) + f"\n{fence}"
    if kind == 3:
        inner = block(rng, depth + 1) if depth < 2 else sentence(rng)
        return "\n".join("> " + line for line in inner.splitlines())
    if kind == 4:
        cols = rng.randint(1, 4)
        rows = [" | ".join(sentence(rng)[:12] or "x" for _ in range(cols)) for _ in range(rng.randint(1, 4))]
        return "| " + rows[0] + " |\n" + "|---" * cols + "|\n" + "\n".join(f"| {r} |" for r in rows[1:])
    if kind == 5:
        return rng.choice(["---", "***", "$$\n\\sum_i x_i\n$$", "\\[ \\int_0^1 x \\, dx \\]"])
    if kind == 6:
        return f"<details>\n<summary>{sentence(rng)}</summary>\n{sentence(rng)}\n</details>"
    if kind == 7:
        return rng.choice(["<div>", "<!--", "<p>"]) + sentence(rng)
    return sentence(rng)


def document(rng: random.Random, blocks: int) -> str:
    separators = ["\n\n", "\n", "\n\n\n", "\n  \n"]
    return "".join(block(rng) + rng.choice(separators) for _ in range(blocks))


def entity_coverage(message: RenderedMessage, shift: int = 0) -> set[tuple[object, ...]]:
    """(kind, url, language, character index) for every non-space character an entity covers."""
    boundaries = utf16_boundaries(message.text)
    covered = set()
    for e in message.entities:
        start, end = boundaries.index(e.offset), boundaries.index(e.offset + e.length)
        key = ("blockquote" if "blockquote" in e.type else str(e.type), e.url, e.language)
        for i in range(start, end):
            if not message.text[i].isspace():
                covered.add((*key, i + shift))
    return covered


def check_split(whole: RenderedMessage, limit: int) -> None:
    pieces = split_rendered(whole, limit)
    for piece in pieces:
        assert_valid(piece, limit)
        assert piece.text.strip()
    starts = assert_pieces_rebuild(whole.text, [p.text for p in pieces])
    # Every formatted character keeps its formatting: the pieces dropped no entity, however many.
    pieces_coverage = set().union(*(entity_coverage(p, s) for p, s in zip(pieces, starts, strict=True)))
    assert pieces_coverage == entity_coverage(whole)


@pytest.mark.parametrize("seed", range(40))
def test_any_document_renders_valid_and_splits_without_loss(seed: int) -> None:
    rng = random.Random(seed)
    markdown = document(rng, rng.randint(1, 25))

    whole = render_markdown(markdown)

    assert_valid(whole, limit=None)
    for limit in (rng.randint(8, 60), rng.randint(60, 600), 4096):
        check_split(whole, limit)
    for limit in (rng.randint(2, 50), 4096):
        chunks = plain_chunks(markdown, limit)
        assert all(utf16_len(c) <= limit for c in chunks)
        assert_pieces_rebuild(markdown, chunks)


@pytest.mark.parametrize("seed", range(40, 60))
def test_every_prefix_of_a_streaming_answer_renders_valid(seed: int) -> None:
    rng = random.Random(seed)
    markdown = document(rng, 8)
    cut_points = sorted({rng.randrange(len(markdown) + 1) for _ in range(60)})

    for end in cut_points:
        whole = render_markdown(markdown[:end])
        assert_valid(whole, limit=None)
        check_split(whole, 300)


@pytest.mark.parametrize("seed", range(60, 70))
def test_random_characters_never_break_rendering(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "*_`[]()<>!|#~$\\-+=:.\n \t>1aZ中😀\u200d\ufe0f/"
    for _ in range(50):
        markdown = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200)))
        whole = render_markdown(markdown)
        assert_valid(whole, limit=None)
        check_split(whole, rng.randint(4, 80))


@pytest.mark.parametrize("seed", range(70, 80))
def test_reasoning_preview_always_fits(seed: int) -> None:
    rng = random.Random(seed)
    reasoning = document(rng, rng.randint(0, 30))
    answer = document(rng, rng.randint(0, 30)) if rng.random() < 0.7 else ""
    for limit in (rng.randint(60, 400), 4096):
        preview = render_reasoning_preview(reasoning, answer, limit, label=rng.choice(["💭", "思考中…"]))
        assert_valid(preview, limit)
        assert preview.text.strip()


def test_splitting_a_document_with_many_entities_keeps_each_piece_under_100() -> None:
    rng = random.Random(7)
    markdown = " ".join(rng.choice(["**b**", "*i*", "`c`", "[l](https://a.b)", "w"]) for _ in range(2000))
    whole = render_markdown(markdown)
    assert len(whole.entities) > 1000

    check_split(whole, 4096)


def test_generated_documents_exercise_the_interesting_cases() -> None:
    """Guards the generator: if it stopped producing these, the properties above would be hollow."""
    rng = random.Random(0)
    rendered = [render_markdown(document(rng, 20)) for _ in range(20)]
    kinds = {str(e.type) for m in rendered for e in m.entities}
    assert {"pre", "code", "bold", "italic", "text_link", "blockquote", "strikethrough"} <= kinds
    assert any(re.search("[\U00010000-\U0010ffff]", m.text) for m in rendered)
    assert any(len(split_rendered(m, 300)) > 3 for m in rendered)
