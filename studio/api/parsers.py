"""Request body parsers: DRF's, with a clear 400 for JSON nested too deeply to parse."""

from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    """The standard library raises RecursionError (not ValueError) on JSON nested thousands
    of levels deep, which DRF would let through as a server error."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body nests lists or objects too deeply.")


# For views whose body nests objects, lists of objects or free-form dicts (a problem
# statement's approaches, an annotation's attributes and geometry, a curation filter).
# Form encodings cannot carry those: DRF reads a nested list it cannot parse from a form
# as empty, so a PUT would silently replace the approaches with none. JSON only, then:
# anything else is a 415.
JSON_ONLY = [JSONParser]
