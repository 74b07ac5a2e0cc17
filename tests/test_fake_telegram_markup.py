"""The fake Telegram's text rules: parse modes, UTF-16 counting and entity normalisation."""

import pytest

from tests.fakes.telegram_markup import MarkupError, parse, parse_html, parse_markdown, parse_markdown_v2
from tests.fakes.telegram_text import TextError, check_link, normalise, render_html, utf16_len


def entities_of(text: str, mode: str) -> list[tuple[str, int, int]]:
    return [(e["type"], e["offset"], e["length"]) for e in parse(text, mode)[1]]


# ---------------------------------------------------------------- UTF-16


def test_utf16_length_counts_emoji_outside_the_bmp_twice():
    assert utf16_len("abc") == 3
    assert utf16_len("😀") == 2
    assert utf16_len("中文") == 2
    assert utf16_len("👨‍💻") == 5  # man + ZWJ + laptop


def test_entity_offsets_are_utf16_units():
    text, entities = parse_html("😀 <b>bold</b>")
    assert text == "😀 bold"
    assert entities == [{"type": "bold", "offset": 3, "length": 4}]


# ---------------------------------------------------------------- HTML


def test_html_accepts_every_documented_tag_nested():
    html = (
        "<b>bold <i>italic <u>underline <s>strike <tg-spoiler>spoiler</tg-spoiler></s></u></i></b> "
        "<strong>S</strong><em>E</em><ins>I</ins><del>D</del><strike>K</strike>"
        '<span class="tg-spoiler">P</span> '
        '<a href="https://example.com/x?a=1&amp;b=2">link</a> <code>code</code> '
        '<pre><code class="language-python">print("hi")</code></pre>'
        "<blockquote>quote</blockquote><blockquote expandable>more</blockquote>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> &lt;tag&gt; &amp; &quot;q&quot; &#65;&#x42;'
    )
    text, entities = parse_html(html)
    assert text.endswith('👍 <tag> & "q" AB')
    kinds = {e["type"] for e in entities}
    assert kinds == {
        "bold", "italic", "underline", "strikethrough", "spoiler", "text_link", "code", "pre",
        "blockquote", "expandable_blockquote", "custom_emoji",
    }  # fmt: skip
    link = next(e for e in entities if e["type"] == "text_link")
    assert link["url"] == "https://example.com/x?a=1&b=2"
    pre = next(e for e in entities if e["type"] == "pre")
    assert pre["language"] == "python"
    assert not any(e["type"] == "code" and "language" in e for e in entities)


def test_html_tag_names_are_case_insensitive_attribute_names_are_not_and_quotes_are_optional():
    text, entities = parse_html("<B>x</b> <a href=example.com>y</A> <a HREF=example.com>z</a>")
    assert text == "x y z"
    assert [e["type"] for e in entities] == ["bold", "text_link"]  # TDLib ignores "HREF"
    assert entities[1]["url"] == "http://example.com/"


def test_html_link_with_invalid_href_is_dropped_silently():
    text, entities = parse_html('<a href="not a url">text</a>')
    assert text == "text"
    assert entities == []


@pytest.mark.parametrize(
    ("html", "message"),
    [
        ("a<br>b", 'Unsupported start tag "br" at byte offset 1'),
        ("line<br/>", 'Unsupported start tag "br/" at byte offset 4'),
        ("<script>alert(1)</script>", 'Unsupported start tag "script" at byte offset 0'),
        ("x <p>para</p>", 'Unsupported start tag "p" at byte offset 2'),
        ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>test</b></i>", 'Unmatched end tag at byte offset 10, expected "</i>", found "</b>"'),
        ("text</b>", "Unexpected end tag at byte offset 4"),
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("ends with <", "Unclosed start tag at byte offset 10"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<b>x</b", "Unclosed end tag at byte offset 4"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        (
            '<a href="x" target>y</a>',
            'Expected equal sign in declaration of an attribute of the tag "a" at byte offset 0',
        ),
        ("<a href=https://x.com>y</a>", "Unexpected end of name token at byte offset 8"),
        ('<tg-emoji emoji-id="abc">x</tg-emoji>', "Invalid custom emoji identifier specified"),
        ("中文 <br>", 'Unsupported start tag "br" at byte offset 7'),  # byte offsets count UTF-8 bytes
        ("AT&T", 'Character "&" must be escaped'),
        ("fish & chips", 'Character "&" must be escaped'),
    ],
)
def test_html_rejects_what_telegram_rejects(html, message):
    with pytest.raises(MarkupError) as error:
        parse_html(html)
    assert error.value.message.startswith(message)


def test_html_bare_ampersand_is_accepted_when_not_strict():
    assert parse_html("AT&T &nbsp;", strict_ampersand=False) == ("AT&T &nbsp;", [])


def test_html_greater_than_is_accepted_bare_like_tdlib():
    assert parse_html("a > b") == ("a > b", [])


def test_html_empty_tags_give_no_entity():
    assert parse_html("<b></b>x") == ("x", [])


# ---------------------------------------------------------------- MarkdownV2


def test_markdown_v2_entities():
    text, entities = parse_markdown_v2(
        "*bold _italic_* __under__ ~strike~ ||spoiler|| `code` [link](https://example.com) "
        "```python\nprint(1)\n``` \\. \\! \\- \\(x\\)"
    )
    assert text == "bold italic under strike spoiler code link print(1)\n . ! - (x)"
    assert [(e["type"], e["offset"], e["length"]) for e in entities] == [
        ("bold", 0, 11),
        ("italic", 5, 6),
        ("underline", 12, 5),
        ("strikethrough", 18, 6),
        ("spoiler", 25, 7),
        ("code", 33, 4),
        ("text_link", 38, 4),
        ("pre", 43, 9),
    ]
    assert entities[-1]["language"] == "python"


@pytest.mark.parametrize("char", list("_*[]()~`>#+-=|{}.!"))
def test_markdown_v2_reserved_characters_must_be_escaped(char):
    text = f"a {char} b" if char not in "_*~`[|" else f"a {char}"
    with pytest.raises(MarkupError) as error:
        parse_markdown_v2(text)
    message = error.value.message
    assert message.startswith(f"Character '{char}' is reserved") or message.startswith("Can't find end of")


def test_markdown_v2_period_error_text_is_telegrams():
    with pytest.raises(MarkupError) as error:
        parse_markdown_v2("Hello.")
    assert error.value.message == "Character '.' is reserved and must be escaped with the preceding '\\'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("*unclosed", "Can't find end of Bold entity at byte offset 0"),
        ("*bold _italic\\_*", "Can't find end of Bold entity at byte offset 15"),
        ("ok _it", "Can't find end of Italic entity at byte offset 3"),
        ("```\ncode", "Can't find end of Pre entity at byte offset 0"),
        ("[text](https://x.com", "Can't find end of a URL at byte offset 7"),
    ],
)
def test_markdown_v2_unbalanced_entities(text, message):
    with pytest.raises(MarkupError) as error:
        parse_markdown_v2(text)
    assert error.value.message == message


def test_markdown_v2_inside_code_only_backtick_and_backslash_matter():
    text, entities = parse_markdown_v2("`a.b-c(d)`")
    assert text == "a.b-c(d)"
    assert entities == [{"type": "code", "offset": 0, "length": 8}]


def test_markdown_v2_blockquotes():
    text, entities = parse_markdown_v2(">quoted\n>lines\nplain")
    assert text == "quoted\nlines\nplain"
    assert entities[0]["type"] == "blockquote"
    text, entities = parse_markdown_v2("**>hidden\n>more||")
    assert text == "hidden\nmore"
    assert entities[0]["type"] == "expandable_blockquote"


# ---------------------------------------------------------------- legacy Markdown


def test_legacy_markdown():
    text, entities = parse_markdown("*bold* _it_ `code` [link](http://a.com) ```py\nx\n```")
    assert text == "bold it code link x\n"
    assert [e["type"] for e in entities] == ["bold", "italic", "code", "text_link", "pre"]


def test_legacy_markdown_unclosed_entity():
    with pytest.raises(MarkupError) as error:
        parse_markdown("text *bold")
    assert error.value.message == "Can't find end of the entity starting at byte offset 5"


def test_unknown_parse_mode():
    with pytest.raises(ValueError):
        parse("x", "XML")


# ---------------------------------------------------------------- links


def test_check_link_normalises_and_rejects_like_tdlib():
    assert check_link("https://Example.COM") == "https://example.com/"
    assert check_link("example.com/path?q=1") == "http://example.com/path?q=1"
    assert check_link("tg://user?id=1") == "tg://user?id=1"
    for url, reason in [
        ("", "URL host is empty"),
        ("not-a-url", "Wrong HTTP URL"),
        ("localhost", "Wrong HTTP URL"),
        ("ftp://example.com", "Unsupported URL protocol"),
    ]:
        with pytest.raises(TextError) as error:
            check_link(url)
        assert error.value.description == reason


# ---------------------------------------------------------------- what Telegram stores


def test_text_is_trimmed_and_cleaned():
    formatted = normalise("\n  hello\tworld\r\n  ", [])
    assert formatted.text == "hello world"


def test_whitespace_only_text_is_refused():
    with pytest.raises(TextError) as error:
        normalise(" \n ", [])
    assert error.value.description == "Text must be non-empty"
    assert normalise(" ", [], allow_empty=True).text == ""


@pytest.mark.parametrize(
    ("entity", "message"),
    [
        (
            {"offset": 0, "length": 100},
            "Entity beginning at UTF-16 offset 0 ends after the end of the text at UTF-16 offset 100",
        ),
        ({"offset": 100, "length": 1}, "Entity begins after the end of the text at UTF-16 offset 100"),
        ({"offset": -1, "length": 1}, "Receive an entity with incorrect offset -1"),
        ({"offset": 0, "length": -1}, "Receive an entity with incorrect length -1"),
        ({"offset": 1, "length": 1}, "Entity begins in a middle of a UTF-16 symbol at byte offset 4"),
    ],
)
def test_entities_must_lie_inside_the_text(entity, message):
    text = "😀llo" if entity["offset"] == 1 else "hello"
    with pytest.raises(TextError) as error:
        normalise(text, [{"type": "bold", **entity}])
    assert error.value.description == message


def test_zero_length_and_whitespace_entities_vanish():
    formatted = normalise(
        "a   b", [{"type": "bold", "offset": 1, "length": 3}, {"type": "italic", "offset": 0, "length": 0}]
    )
    assert formatted.entities == []


def test_leading_whitespace_moves_out_of_entities():
    formatted = normalise("a  b", [{"type": "bold", "offset": 1, "length": 3}])
    assert formatted.entities == [{"type": "bold", "offset": 3, "length": 1}]


def test_trimming_moves_entities():
    formatted = normalise("  hi  ", [{"type": "bold", "offset": 2, "length": 2}])
    assert formatted.text == "hi"
    assert formatted.entities == [{"type": "bold", "offset": 0, "length": 2}]


def test_nested_code_inside_link_keeps_only_one_and_bold_splits_around_code():
    text, entities = parse_html("<b>a <code>c</code> d</b>")
    formatted = normalise(text, entities)
    assert [(e["type"], e["offset"], e["length"]) for e in formatted.entities] == [
        ("bold", 0, 2),
        ("code", 2, 1),
        ("bold", 2, 1),
        ("bold", 4, 1),
    ]


def test_nothing_is_formatted_inside_pre():
    text, entities = parse_html("<pre>x <b>y</b></pre>")
    assert [e["type"] for e in normalise(text, entities).entities] == ["pre"]


def test_nested_blockquotes_keep_the_outer_one():
    text, entities = parse_html("<blockquote>a <blockquote>b</blockquote></blockquote>")
    assert [e["type"] for e in normalise(text, entities).entities] == ["blockquote"]


def test_more_than_100_entities_are_dropped_silently():
    text = "ab " * 150
    entities = [{"type": "bold", "offset": 3 * i, "length": 2} for i in range(150)]
    assert len(normalise(text, entities, detect_entities=False).entities) == 100


def test_automatic_entities_are_detected():
    formatted = normalise("see https://example.com, /start @bob #tag mail a@b.co", [])
    assert [e["type"] for e in formatted.entities] == ["url", "bot_command", "mention", "hashtag", "email"]
    url = formatted.entities[0]
    assert formatted.text[url["offset"] : url["offset"] + url["length"]] == "https://example.com"


def test_render_html_round_trips():
    html = (
        '<b>bold <i>both</i></b> <a href="https://example.com/">x</a> 1 &lt; 2 '
        '<pre><code class="language-py">p</code></pre>'
    )
    text, entities = parse_html(html)
    assert render_html(text, entities) == html
    assert parse_html(render_html(text, entities)) == (text, entities)


def test_render_html_reopens_overlapping_entities():
    entities = [{"type": "bold", "offset": 0, "length": 4}, {"type": "italic", "offset": 2, "length": 4}]
    rendered = render_html("abcdef", entities)
    assert rendered == "<b>ab<i>cd</i></b><i>ef</i>"
    assert parse_html(rendered)[0] == "abcdef"
