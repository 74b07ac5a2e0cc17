"""Kimi's Markdown as a reader sees it in Telegram: examples of each construct."""

from __future__ import annotations

import pytest

import handlers.rendering.markdown as rendering_markdown
from handlers.rendering import RenderedMessage, render_for_telegram, render_markdown, utf16_len
from tests.test_rendering_checks import assert_valid, covered_text


def kinds(message: RenderedMessage) -> list[tuple[str, str]]:
    """(type, covered text) of every entity, in order."""
    return [(str(e.type), covered_text(message, e)) for e in message.entities]


def rendered(markdown: str) -> RenderedMessage:
    message = render_markdown(markdown)
    assert_valid(message, limit=None)
    return message


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("abc") == 3
    assert utf16_len("中文") == 2
    assert utf16_len("😀") == 2
    assert utf16_len("👨‍👩‍👧") == 8  # three astral people joined by two ZWJ
    assert RenderedMessage("a😀").utf16_length() == 3


def test_code_block_keeps_its_language_and_exact_content() -> None:
    message = rendered("Run this:\n\n```python\ndef f(x):\n    return x * 2\n```\n\nDone.")
    assert message.text == "Run this:\n\ndef f(x):\n    return x * 2\n\nDone."
    (pre,) = message.entities
    assert (pre.type, pre.language) == ("pre", "python")
    assert covered_text(message, pre) == "def f(x):\n    return x * 2"


def test_fence_info_string_is_reduced_to_a_language_name() -> None:
    (pre,) = rendered("```js title=app.js\nlet a = 1\n```").entities
    assert pre.language == "js"
    (pre,) = rendered("```{r, echo=FALSE}\nx <- 1\n```").entities
    assert pre.language is None


def test_table_becomes_a_monospaced_block() -> None:
    message = rendered("| Model | Price |\n|---|---|\n| k2 | 4 |\n| k2-thinking | 16 |")
    assert kinds(message) == [("pre", message.text)]
    assert [line.rstrip() for line in message.text.splitlines()] == [
        "Model       | Price",
        "------------+------",
        "k2          | 4",
        "k2-thinking | 16",
    ]


def test_nested_lists_are_indented_with_markers() -> None:
    message = rendered("- fruit\n  - apple\n    1. red\n    2. green\n- [x] done\n- [ ] todo")
    assert message.text == "⦁ fruit\n  ⦁ apple\n    1. red\n    2. green\n✅ done\n☑ todo"


def test_headings_are_bold() -> None:
    message = rendered("# Title\n\nText\n\n### Section")
    assert ("bold", "Title") in kinds(message)
    assert ("bold", "Section") in kinds(message)


def test_absolute_link_becomes_text_link_and_relative_link_plain_text() -> None:
    message = rendered("See [the docs](https://platform.moonshot.cn/docs) or [README](./README.md).")
    assert message.text == "See the docs or README."
    (link,) = message.entities
    assert (link.type, link.url) == ("text_link", "https://platform.moonshot.cn/docs")
    assert covered_text(message, link) == "the docs"


@pytest.mark.parametrize("url", ["javascript:alert(1)", "tg://user?id=1", "mailto:a@b.c", "#anchor"])
def test_links_telegram_might_refuse_stay_plain_text(url: str) -> None:
    message = rendered(f"[click]({url})")
    assert message.text == "click"
    assert message.entities == ()


def test_chinese_text_offsets() -> None:
    message = rendered("这是**粗体**和`代码`。")
    assert message.text == "这是粗体和代码。"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [
        ("bold", 2, 2),
        ("code", 5, 2),
    ]


def test_emoji_count_two_utf16_units_in_offsets() -> None:
    message = rendered("😀👍 **bold** 👨‍👩‍👧 *it*")
    assert message.text == "😀👍 bold 👨‍👩‍👧 it"
    assert [(e.type, e.offset, e.length) for e in message.entities] == [
        ("bold", 5, 4),
        ("italic", 19, 2),
    ]


def test_bold_around_inline_code_is_cut_around_the_code() -> None:
    # Bot API: bold "can contain and can be part of any other entities, except pre and code".
    message = rendered("**call `f()` now**")
    assert kinds(message) == [("bold", "call "), ("code", "f()"), ("bold", " now")]


def test_code_inside_a_link_keeps_the_link() -> None:
    message = rendered("[`pip`](https://pypi.org)")
    assert kinds(message) == [("text_link", "pip")]


def test_nested_blockquotes_become_one_quote() -> None:
    message = rendered("> outer\n> > inner\n> outer again")
    assert kinds(message) == [("blockquote", "outer\ninner\nouter again")]


def test_code_block_inside_a_quote_is_allowed() -> None:
    message = rendered("> ```sh\n> ls\n> ```")
    assert sorted(kinds(message)) == [("blockquote", "ls"), ("pre", "ls")]


def test_long_quote_is_expandable() -> None:
    message = rendered("> " + "word " * 60)
    assert [str(e.type) for e in message.entities] == ["expandable_blockquote"]


def test_latex_becomes_unicode() -> None:
    message = rendered(r"Euler: \(e^{i\pi} + 1 = 0\) and $\alpha \leq \beta$, costs $10 and $20.")
    assert "π" in message.text and "α ≤ β" in message.text
    assert message.text.endswith("costs $10 and $20.")


@pytest.mark.parametrize(
    ("markdown", "text"),
    [
        ("**unclosed bold", "**unclosed bold"),
        ("a [half link](htt", "a [half link](htt"),
        ("a [half link](https://exa", "a [half link](https://exa"),
        ("*it", "*it"),
        ("`code", "`code"),
        ("| a | b |\n|--", "| a | b |\n|--"),
        ("1. one\n2.", "1. one\n2."),
        ("$x^", "$x^"),
        ("<details>\n<summ", "<summ"),
    ],
)
def test_unclosed_markdown_while_streaming_renders_literally(markdown: str, text: str) -> None:
    message = rendered(markdown)
    assert message.text == text
    assert message.entities == ()


def test_unclosed_code_fence_is_already_a_code_block() -> None:
    message = rendered("Here:\n\n```python\nfor i in range(3):\n    print(i")
    assert kinds(message)[-1] == ("pre", "for i in range(3):\n    print(i")
    assert message.entities[-1].language == "python"


def test_table_being_written_renders_each_step() -> None:
    table = "| a | b |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |"
    for end in range(1, len(table) + 1):
        rendered(table[:end])


def test_html_br_in_table_cell_becomes_a_space() -> None:
    message = rendered("| a | b |\n|---|---|\n| one<br>two | x |")
    assert "one two" in message.text


def test_html_br_in_a_paragraph_is_a_line_break_but_not_in_code() -> None:
    message = rendered("first<br>second<br/>third `a<br>b`")
    assert message.text == "first\nsecond\nthird a<br>b"


def test_details_block_keeps_its_content() -> None:
    message = rendered(
        "<details>\n<summary>Show the proof</summary>\nIt follows from **Lemma 2**.\n</details>\n\nDone."
    )
    assert message.text == "Show the proof\n\nIt follows from Lemma 2.\n\nDone."
    assert ("bold", "Lemma 2") in kinds(message)


def test_text_that_only_looks_like_html_stays_visible() -> None:
    message = rendered("Use List<String> or Vec<T>; a <b>bold</b> word<!-- hidden -->.")
    assert message.text == "Use List<String> or Vec<T>; a bold word."


def test_multiline_html_comment_is_removed() -> None:
    message = rendered("<!--\nnote to self\n-->\nVisible")
    assert message.text == "Visible"


def test_spoiler() -> None:
    assert kinds(rendered("the end: ||he lives||")) == [("spoiler", "he lives")]


def test_blank_input_renders_empty_and_splits_to_nothing() -> None:
    assert render_markdown("  \n ") == RenderedMessage("")
    assert render_for_telegram("\n\n") == []
    assert render_for_telegram("<!-- only a comment -->") == []


def test_whitespace_around_the_answer_is_trimmed() -> None:
    message = rendered("\n\n  **hi**  \n\n")
    assert kinds(message) == [("bold", "hi")]
    assert message.text == "hi"


def test_lone_surrogates_are_replaced() -> None:
    message = rendered("bad \ud800 char **b**")
    message.text.encode("utf-8")  # would raise on a lone surrogate
    assert "\ufffd" in message.text


def test_converter_failure_falls_back_to_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("converter bug")

    monkeypatch.setattr(rendering_markdown, "convert", broken)
    assert render_markdown(" **still** shown ") == RenderedMessage("**still** shown")
