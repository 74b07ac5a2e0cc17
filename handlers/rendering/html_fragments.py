"""Turn the HTML fragments Kimi mixes into Markdown back into Markdown, before conversion.

The converter drops raw HTML: ``a<br>b`` becomes "ab", ``List<String>`` becomes "List", and a
``<details>`` block swallows everything up to the next blank line, text included. Models write
``<br>`` in table cells and ``<details>``/``<summary>`` for long explanations, so losing them
loses the answer. Here the Markdown parser itself says which bytes are HTML (so code spans and
code blocks are never touched), and each fragment is rewritten:

- ``<br>`` and the end of block elements become a line break (a space inside a table cell, where
  a line break would end the row);
- other known HTML tags and comments are removed, keeping the text between them;
- anything that only looks like a tag (``<String>``, ``<T>``) is escaped so it shows literally;
- ``<tg-spoiler>`` stays, the converter understands it.
"""

from __future__ import annotations

import re

import pyromark

# The converter parses with these options; parsing with the same ones finds the same HTML.
PARSE_OPTIONS = (
    pyromark.Options.ENABLE_TABLES
    | pyromark.Options.ENABLE_STRIKETHROUGH
    | pyromark.Options.ENABLE_TASKLISTS
    | pyromark.Options.ENABLE_MATH
)

_BLOCK_ELEMENTS = frozenset(
    "address article aside blockquote center dd details dialog div dl dt fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table "
    "tbody thead tfoot tr ul".split()
)
_INLINE_ELEMENTS = frozenset(
    "a abbr acronym b bdi bdo big br caption cite code col colgroup data del dfn em font i img "
    "input ins kbd label mark meter option picture q rp rt ruby s samp select small source span "
    "strike strong sub sup td th time tt u var video audio wbr iframe script style noscript "
    "head body html meta link title button textarea math svg".split()
)
_KNOWN_ELEMENTS = _BLOCK_ELEMENTS | _INLINE_ELEMENTS
_KEPT_ELEMENTS = frozenset({"tg-spoiler"})
_CELL_ELEMENTS = frozenset({"td", "th"})

_FRAGMENT = re.compile(
    r"""
    (?P<comment><!--.*?(?:-->|$))                       # comment, maybe unterminated on this line
    | (?P<declaration><[!?][^>]*>)                      # <!DOCTYPE ...>, <?xml ...?>
    | (?P<tag><(?P<closing>/?)(?P<name>[A-Za-z][A-Za-z0-9-]*)(?:\s[^<>]*)?/?>)
    """,
    re.VERBOSE | re.DOTALL,
)


def html_to_markdown(markdown: str) -> str:
    """``markdown`` with its HTML fragments rewritten as described in the module docstring."""
    if "<" not in markdown:
        return markdown  # the common case costs nothing
    source = markdown.encode("utf-8")
    edits: list[tuple[int, int, str]] = []
    cell_depth = 0
    in_comment = False  # an HTML block's comment may run over several lines (events)
    for event, byte_range in pyromark.events_with_range(markdown, options=PARSE_OPTIONS):
        if event == {"Start": "TableCell"}:
            cell_depth += 1
        elif event == {"End": "TableCell"}:
            cell_depth -= 1
        elif event == {"End": "HtmlBlock"}:
            in_comment = False
        elif isinstance(event, dict) and ("Html" in event or "InlineHtml" in event):
            fragment = source[byte_range["start"] : byte_range["end"]].decode("utf-8")
            in_table_cell = cell_depth > 0
            replacement, in_comment = _rewrite_fragment(fragment, in_table_cell, in_comment)
            if replacement != fragment:
                edits.append((byte_range["start"], byte_range["end"], replacement))
    if not edits:
        return markdown
    return _apply(source, edits)


def _rewrite_fragment(fragment: str, in_table_cell: bool, in_comment: bool) -> tuple[str, bool]:
    line_break = " " if in_table_cell else "\n"
    if in_comment:
        end = fragment.find("-->")
        if end < 0:
            return _keep_line_end(fragment), True
        fragment = fragment[end + 3 :]
        in_comment = False

    def replace(match: re.Match[str]) -> str:
        nonlocal in_comment
        if match["comment"] is not None:
            in_comment = not match["comment"].endswith("-->")
            return ""
        if match["declaration"] is not None:
            return ""
        name = match["name"].lower()
        if name in _KEPT_ELEMENTS:
            return match.group(0)
        if name not in _KNOWN_ELEMENTS:
            return "\\" + match.group(0)  # not HTML, e.g. a generic type: show it literally
        if name == "br" or (match["closing"] and name in _BLOCK_ELEMENTS):
            return line_break
        if match["closing"] and name in _CELL_ELEMENTS:
            return " "
        return ""

    return _FRAGMENT.sub(replace, fragment), in_comment


def _keep_line_end(fragment: str) -> str:
    return "\n" if fragment.endswith("\n") else ""


def _apply(source: bytes, edits: list[tuple[int, int, str]]) -> str:
    parts: list[bytes] = []
    cursor = 0
    for start, end, replacement in sorted(edits):
        if start < cursor:
            continue  # overlapping ranges do not occur; never apply one twice
        parts.append(source[cursor:start])
        parts.append(replacement.encode("utf-8"))
        cursor = end
    parts.append(source[cursor:])
    return b"".join(parts).decode("utf-8")
