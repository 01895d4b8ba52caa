"""Read large JSON files one array element at a time, in C.

The file is read through a window of text, refilled as it is consumed, so memory holds
the window (about 1 MiB) and the elements decoded from it, never the whole file.

The elements of an array of objects are decoded many at a time: the window's last
``}, {`` is a candidate boundary, and msgspec decodes everything before it as one JSON
list. Starting at an element's first character, that only succeeds when the candidate
is a real boundary between elements (inside a string or a nested value the list would be
unclosed), so the fast path never misreads a file. Whatever it cannot take (no candidate,
or text msgspec refuses, such as ``NaN``, which the standard library accepts) goes to the
careful path: ``json.JSONDecoder.raw_decode``, one element at a time, exactly as before.
A value that ends exactly at the window's edge may be cut (a number, say), so the careful
path decodes it again once more text has arrived.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

import msgspec

from . import FormatError

READ = 1 << 20
MAX_ELEMENT = 256 << 20  # characters one value may span
WHITESPACE = " \t\n\r"
_BLANKS = re.compile(r"[ \t\n\r]*")
_BOUNDARY = re.compile(r"\}[ \t\n\r]*,[ \t\n\r]*\{")  # between two objects of a list
TAIL = 1 << 16  # where the last boundary of a window is looked for first
TOO_DEEP = "The file nests lists or objects too deeply to read (thousands of levels)."
BACKOFF = (64, 4096, None)  # after a false boundary, the next is looked for this far back
_decode_list = msgspec.json.Decoder(list).decode


class _Text:
    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.json = json.JSONDecoder()
        self.careful = 0  # elements to read one at a time before the fast path is tried again
        self.pause = 16  # how many after the next failure (doubles with each one)

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
            except RecursionError:
                raise FormatError(TOO_DEEP) from None
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
        buf = text.buf
        pos = skip(buf, text.pos).end()
        if text.careful:
            text.careful -= 1
        elif buf.startswith("{", pos):  # many elements, to the window's last boundary
            values = _many(buf, pos)
            if values:
                elements, end = values
                text.pos = end
                yield from elements
                continue
            if values is not None:
                # Refused (say, NaN in an element): a few by the careful path, then again;
                # the pause doubles, so a file the fast path cannot take costs few attempts.
                text.careful, text.pause = text.pause, text.pause * 2
        # One element, with the separator after it in the window.
        try:
            value, end = decode(buf, pos)
        except RecursionError:
            raise FormatError(TOO_DEEP) from None
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


def _many(buf: str, pos: int) -> tuple[list, int] | tuple[()] | None:
    """Decode the elements from ``pos`` (an element's first character) to the window's
    last boundary that proves real; return them and where the next element starts, None
    when the window holds no boundary, or () when msgspec refused the text."""
    found = _last_boundary(buf, max(pos, len(buf) - TAIL), len(buf))
    if found is None and len(buf) - TAIL > pos:
        found = _last_boundary(buf, pos, len(buf))
    if found is None:
        return None
    for back in BACKOFF:
        try:  # ends with an element's "}": the list closes only at a real boundary
            return _decode_list("[" + buf[pos : found.start() + 1] + "]"), found.end() - 1
        except (msgspec.DecodeError, RecursionError):  # the careful path says what is wrong
            if back is None:
                return ()
            # Inside an element (a nested list of objects, a string): try well before it.
            found = _last_boundary(buf, pos, max(pos, found.start() - back))
            if found is None:
                return ()
    return ()


def _last_boundary(buf: str, start: int, end: int) -> re.Match | None:
    last = deque(_BOUNDARY.finditer(buf, start, end), maxlen=1)
    return last[0] if last else None


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
