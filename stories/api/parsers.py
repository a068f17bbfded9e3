"""The API's JSON parser: DRF's, except that a document nested deeper than
JSON_DOCUMENT_MAX_DEPTH is refused with 400 before the (recursive) decoder runs, where it
used to raise RecursionError (a 500)."""

from __future__ import annotations

import codecs

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json

from storyhub.validators import JSON_DOCUMENT_MAX_DEPTH, json_text_depth_exceeds


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (ValueError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if json_text_depth_exceeds(text, JSON_DOCUMENT_MAX_DEPTH):
            raise ParseError(f"JSON parse error - nested deeper than {JSON_DOCUMENT_MAX_DEPTH} levels.")
        try:
            return json.loads(text, parse_constant=json.strict_constant if self.strict else None)
        except RecursionError:  # the stack was already deep; the scan above normally prevents it
            raise ParseError("JSON parse error - nested too deeply.") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
