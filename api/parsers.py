"""Request bodies: JSON only, at most 1 MiB and 32 levels deep.

Kept apart from api.errors: DRF loads parsers while importing its views, which api.errors
imports.
"""

import json

from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser

MAX_BODY_BYTES = 1024 * 1024


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = f"The request body is over {MAX_BODY_BYTES // 1024} KiB."


def _too_deep(data, limit):
    """Whether JSON ``data`` nests more than ``limit`` levels (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return True
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)
    return False


class LimitedJSONParser(JSONParser):
    """JSON, refused with 413 past MAX_BODY_BYTES (whatever Content-Length claims) and
    with 400 past MAX_JSON_DEPTH levels.

    NaN and Infinity literals are read as numbers, so that the field holding one is named
    by validation ("metrics: 'auc' must be a finite number") rather than refused whole.
    """

    MAX_JSON_DEPTH = 32

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise PayloadTooLarge
        body = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge
        too_deep = f"The JSON is nested more than {self.MAX_JSON_DEPTH} levels deep."
        try:
            data = json.loads(body.decode("utf-8"), parse_constant=float)
        except RecursionError:
            raise exceptions.ParseError(too_deep) from None
        except (ValueError, UnicodeDecodeError) as error:
            raise exceptions.ParseError(f"The body is not valid JSON: {error}") from None
        if _too_deep(data, self.MAX_JSON_DEPTH):
            raise exceptions.ParseError(too_deep)
        return data
