"""URL path converters: ``<id:pk>`` is a database id, from 1 to the largest 64-bit integer.

Django's ``int`` converter takes any number of digits, so ``/images/<2**70>/`` reached
the database, whose integer columns end at 2**63 - 1. An id outside that range cannot
name a row: the URL does not match, and the answer is a 404 like any unknown id.
"""

from __future__ import annotations

MAX_ID = 2**63 - 1


class IdConverter:
    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if not 1 <= number <= MAX_ID:
            raise ValueError("not a database id")  # Django reads it as no match
        return number

    def to_url(self, value: int) -> str:
        return str(value)


def parse_id(value) -> int | None:
    """Read an optional id from a page's query string: None when absent, not a number, or
    outside what a column holds (pages ignore a filter they cannot use; the API refuses it)."""
    try:
        number = int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and 1 <= number <= MAX_ID else None
