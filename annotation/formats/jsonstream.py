"""Read large JSON files one array element at a time, at the standard library's C speed.

``json.JSONDecoder.raw_decode`` decodes one value from a window of text; the window is
refilled from the file as it is consumed, so memory holds one element (plus a 1 MiB
read-ahead), never the whole file. A value that ends exactly at the window's edge may be
cut (a number, say), so it is decoded again once more text has arrived.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO, Any

from . import FormatError

READ = 1 << 20
MAX_ELEMENT = 256 << 20  # characters one value may span
WHITESPACE = " \t\n\r"
_BLANKS = re.compile(r"[ \t\n\r]*")


class _Text:
    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.json = json.JSONDecoder()

    def fill(self, size: int = READ) -> bool:
        if self.eof:
            return False
        chunk = self.fh.read(size)
        if not chunk:
            self.eof = True
            self.buf = self.buf[self.pos :] + self.decoder.decode(b"", final=True)
        else:
            try:
                text = self.decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                raise FormatError(f"The file is not UTF-8 text: {exc}")
            self.buf = self.buf[self.pos :] + text
        self.pos = 0
        return True

    def peek(self) -> str:
        """Return the next non-blank character ('' at the end of the file)."""
        while True:
            buf, pos = self.buf, self.pos
            while pos < len(buf) and buf[pos] in WHITESPACE:
                pos += 1
            self.pos = pos
            if pos < len(buf):
                return buf[pos]
            if not self.fill():
                return ""

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise FormatError(f"Expected {what} at this point of the JSON file.")
        self.pos += 1

    def value(self) -> Any:
        size = READ
        while True:
            self.peek()
            try:
                value, end = self.json.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if len(self.buf) - self.pos > MAX_ELEMENT:
                    raise FormatError(
                        f"The file is not valid JSON ({exc.msg}), or holds an element larger "
                        f"than {MAX_ELEMENT >> 20} MiB."
                    )
                if self.fill(size):
                    size *= 2
                    continue
                raise FormatError(f"The file is not valid JSON: {exc.msg} near the end.")
            if end >= len(self.buf) and self.fill(size):
                continue  # may have been cut at the window's edge
            self.pos = end
            return value


def items(fh: IO[bytes]) -> Iterator[Any]:
    """Yield the elements of a top-level JSON array."""
    text = _Text(fh)
    if text.peek() != "[":
        raise FormatError("Expected a JSON list.")
    yield from _array(text)


def _array(text: _Text) -> Iterator[Any]:
    text.expect("[", "a list")
    if text.peek() == "]":
        text.pos += 1
        return
    decode, skip = text.json.raw_decode, _BLANKS.match
    while True:
        # Fast path: the element and the separator after it are in the window.
        buf = text.buf
        pos = skip(buf, text.pos).end()
        try:
            value, end = decode(buf, pos)
        except json.JSONDecodeError:
            end = -1
        sep = skip(buf, end).end() if 0 <= end < len(buf) else len(buf)
        if sep >= len(buf):  # cut at the window's edge (or bad JSON): the careful path
            value = text.value()
            char = text.peek()
            text.pos += 1
        else:
            char = buf[sep]
            text.pos = sep + 1
        yield value
        if char == "]":
            return
        if char != ",":
            raise FormatError("The file is not valid JSON: expected ',' or ']' in a list.")


def top_level(fh: IO[bytes], streamed: frozenset[str]) -> Iterator[tuple[str, Any]]:
    """Yield (key, value) for a top-level object; the values of ``streamed`` keys that are
    lists come as iterators over their elements (drained here if the caller leaves them).
    """
    text = _Text(fh)
    first = text.peek()
    if first != "{":
        kind = "a list" if first == "[" else "not a JSON object"
        raise FormatError(f"The file's top level is {kind}; expected a JSON object.")
    text.pos += 1
    if text.peek() == "}":
        return
    while True:
        key = text.value()
        if not isinstance(key, str):
            raise FormatError("The file is not valid JSON: object keys are strings.")
        text.expect(":", "':'")
        if key in streamed and text.peek() == "[":
            elements = _array(text)
            yield key, elements
            for _ in elements:  # whatever the caller did not read
                pass
        else:
            yield key, text.value()
        char = text.peek()
        text.pos += 1
        if char == "}":
            return
        if char != ",":
            raise FormatError("The file is not valid JSON: expected ',' or '}' in an object.")
