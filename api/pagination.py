"""Pagination: numbered pages for small lists, keyset cursors for records."""

import base64
import binascii
import json
from datetime import datetime

from django.db.models import Q
from rest_framework import exceptions
from rest_framework.pagination import BasePagination, PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param


class NumberedPages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class RecordCursor(BasePagination):
    """Cursor pages over records, ordered by ``view.cursor_ordering`` then by id.

    The cursor holds the last row's (value, id): the next page is the rows after it in
    that order, found through the index, however many rows share a value and however many
    records arrive meanwhile (an offset would skip or repeat rows as records arrive).
    """

    page_size = 50
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        ordering = view.cursor_ordering
        self.field = ordering.lstrip("-")
        descending = ordering.startswith("-")
        self.size = self._page_size(request)
        position, backwards = self._decode(request.query_params.get("cursor"))
        # Walking backwards is walking the reversed order, then turning the page around.
        reverse = descending != backwards
        sign = "-" if reverse else ""
        queryset = queryset.order_by(f"{sign}{self.field}", f"{sign}id")
        if position is not None:
            value, pk = position
            after = "lt" if reverse else "gt"
            queryset = queryset.filter(
                Q(**{f"{self.field}__{after}": value})
                | Q(**{self.field: value, f"id__{after}": pk})
            )
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
                "description": "The next or previous link of a page.",
                "schema": {"type": "string"},
            },
            {
                "name": "page_size",
                "required": False,
                "in": "query",
                "description": f"Records per page (1 to {self.max_page_size}).",
                "schema": {"type": "integer"},
            },
        ]

    def _page_size(self, request):
        value = request.query_params.get("page_size")
        if value is None:
            return self.page_size
        if not value.isdigit() or not 1 <= int(value) <= self.max_page_size:
            raise exceptions.ValidationError(
                {"page_size": [f"A whole number from 1 to {self.max_page_size}."]}
            )
        return int(value)

    def _link(self, row, backwards):
        value = getattr(row, self.field)
        if isinstance(value, datetime):
            value = value.isoformat()
        raw = json.dumps([value, row.pk, backwards]).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return replace_query_param(self.request.build_absolute_uri(), "cursor", cursor)

    def _decode(self, cursor):
        if cursor is None:
            return None, False
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            value, pk, backwards = json.loads(raw)
            if not isinstance(pk, int) or not isinstance(backwards, bool):
                raise ValueError
        except (ValueError, TypeError, binascii.Error):
            raise exceptions.ValidationError(
                {"cursor": ["Not a cursor this API made; follow a page's next link."]}
            ) from None
        return (value, pk), backwards
