"""Server-sent events, decoded incrementally from whatever byte pieces the network delivers.

The decoder works on raw pieces rather than lines from aiohttp's readline, because a single SSE
line (a long tool-call fragment) may exceed readline's buffer, and because pieces may split a line,
a UTF-8 character or the CRLF between lines anywhere.
"""

from __future__ import annotations

import codecs
import re

DONE = "[DONE]"

# Not str.splitlines: it also breaks on U+2028 and friends, which may sit raw inside JSON text.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SSEDecoder:
    """Feed bytes, get the data payload of each complete event (comments and other fields are
    dropped; Moonshot only uses data)."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial_line = ""
        self._data_lines: list[str] = []

    def feed(self, piece: bytes) -> list[str]:
        text = self._partial_line + self._text.decode(piece)
        held_back = ""
        if text.endswith("\r"):
            # A CR at the end of a piece may be the first half of a CRLF: wait for the next piece.
            text, held_back = text[:-1], "\r"
        lines = _LINE_BREAK.split(text)
        self._partial_line = lines.pop() + held_back
        payloads: list[str] = []
        for line in lines:
            if line == "":
                # A blank line dispatches the event built from the data lines before it.
                if self._data_lines:
                    payloads.append("\n".join(self._data_lines))
                    self._data_lines = []
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                if name == "data":
                    self._data_lines.append(value[1:] if value.startswith(" ") else value)
        return payloads
