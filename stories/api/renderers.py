"""orjson JSON renderer: the story list is rendered from plain dicts at raw speed."""

from __future__ import annotations

import datetime
import decimal
import json

import orjson
from rest_framework.renderers import JSONRenderer


def _default(value):
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, datetime.date | datetime.time):  # only reached by the fallback
        return value.isoformat()
    return str(value)


class ORJSONRenderer(JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        try:
            return orjson.dumps(data, default=_default, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:
            # Integers beyond 64 bits (valid JSON, kept verbatim in metadata / settings)
            # are the one thing orjson refuses; the standard library writes them as they are.
            # A lone surrogate (legacy data, or echoed in an error) is not UTF-8 either: escape it.
            text = json.dumps(data, default=_default, ensure_ascii=False, separators=(",", ":"))
            try:
                return text.encode()
            except UnicodeEncodeError:
                return json.dumps(data, default=_default, separators=(",", ":")).encode()
