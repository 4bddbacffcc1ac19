"""Pagination: numbered pages for small lists, keyset cursors for records."""

import base64
import binascii
import json
import math
from datetime import UTC, datetime

from django.db.models import F

# Django 5.2's row-value lookups (made for composite keys): (a, b) < (x, y) in one comparison.
from django.db.models.fields.tuple_lookups import TupleGreaterThan, TupleLessThan
from rest_framework import exceptions
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


def _finite_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _page_size_parameter(default, maximum):
    return {
        "name": "page_size",
        "required": False,
        "in": "query",
        "description": f"Items per page: 1 to {maximum}, {default} if not given; anything "
        "else is a 400.",
        "schema": {"type": "integer", "minimum": 1, "maximum": maximum},
    }


def _page_size(request, default, maximum):
    value = request.query_params.get("page_size")
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= maximum:
        raise exceptions.ValidationError({"page_size": [f"A whole number from 1 to {maximum}."]})
    return int(value)


class NumberedPages(PageNumberPagination):
    """Numbered pages; a page or page size that is not one is a 400, not a guess."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # The query parameters it reads (api.views.base.Filters refuses any other).
    query_parameters = {"page", "page_size"}

    def get_page_size(self, request):
        return _page_size(request, self.page_size, self.max_page_size)

    def get_page_number(self, request, paginator):
        value = request.query_params.get(self.page_query_param, "1")
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise exceptions.ValidationError({"page": ["A page number: 1 or more."]})
        return value

    def paginate_queryset(self, queryset, request, view=None):
        try:
            return super().paginate_queryset(queryset, request, view)
        except exceptions.NotFound:
            raise exceptions.NotFound("There is no page with that number.") from None

    def get_schema_operation_parameters(self, view):
        page = {
            "name": "page",
            "required": False,
            "in": "query",
            "description": "The page number, from 1 (the default; anything else is a 400). "
            "Past the last page: a 404 (page 1 exists even when the list is empty).",
            "schema": {"type": "integer", "minimum": 1},
        }
        return [page, _page_size_parameter(self.page_size, self.max_page_size)]


class RecordCursor(BasePagination):
    """Cursor pages over records, ordered by ``view.cursor_ordering`` then by id.

    The cursor holds the ordering and the last row's (value, id): the next page is the
    rows after it in that order, however many rows share a value and however many records
    arrive meanwhile (an offset would skip or repeat rows as records arrive).
    """

    page_size = 50
    max_page_size = 200
    query_parameters = {"cursor", "page_size"}

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        ordering = view.cursor_ordering
        self.ordering = ordering
        self.field = ordering.lstrip("-")
        descending = ordering.startswith("-")
        self.size = _page_size(request, self.page_size, self.max_page_size)
        position, backwards = self._decode(request.query_params.get("cursor"), ordering)
        # Walking backwards is walking the reversed order, then turning the page around.
        reverse = descending != backwards
        sign = "-" if reverse else ""
        queryset = queryset.order_by(f"{sign}{self.field}", f"{sign}id")
        if position is not None:
            # (value, id) after the cursor's, as one row comparison: the database walks the
            # (…, started_at, id) index from there, however many rows share the value.
            after = TupleLessThan if reverse else TupleGreaterThan
            queryset = queryset.filter(after((F(self.field), F("id")), position))
        rows = list(queryset[: self.size + 1])
        more = len(rows) > self.size
        rows = rows[: self.size]
        if backwards:
            rows.reverse()
        has_next = more if not backwards else position is not None
        has_previous = position is not None if not backwards else more
        self.next = self._link(rows[-1], False) if has_next and rows else None
        self.previous = self._link(rows[0], True) if has_previous and rows else None
        return rows

    def get_paginated_response(self, data):
        return Response({"next": self.next, "previous": self.previous, "results": data})

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "cursor",
                "required": False,
                "in": "query",
                "description": "Set by a page's next and previous links: follow them. A "
                "cursor that is not one of this list's (and order's) is a 400.",
                "schema": {"type": "string"},
            },
            _page_size_parameter(self.page_size, self.max_page_size),
        ]

    def _link(self, row, backwards):
        value = getattr(row, self.field)
        if isinstance(value, datetime):
            value = value.isoformat()
        raw = json.dumps([self.ordering, value, row.pk, backwards]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)

    def _decode(self, cursor, ordering):
        """(value, id) and direction of a cursor made for ``ordering``; 400 otherwise."""
        if cursor is None:
            return None, False
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            made_for, value, pk, backwards = json.loads(raw)
            if made_for != ordering:
                raise ValueError
            if not isinstance(pk, int) or not 0 < pk < 2**63 or not isinstance(backwards, bool):
                raise ValueError
            if self.field == "started_at":
                value = datetime.fromisoformat(value)
                if value.tzinfo is None:
                    raise ValueError
                # In UTC: PostgreSQL refuses the offsets past ±15:59 that Python allows.
                value = value.astimezone(UTC)
            elif not _finite_number(value):
                raise ValueError
        except (ValueError, TypeError, OverflowError, binascii.Error):
            raise exceptions.ValidationError(
                {"cursor": ["Not a cursor for this list and order; follow a page's links."]}
            ) from None
        return (value, pk), backwards
