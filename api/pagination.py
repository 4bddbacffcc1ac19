"""Pagination: numbered pages for small lists, cursors for records (stable under inserts)."""

from rest_framework.pagination import CursorPagination, PageNumberPagination


class NumberedPages(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class RecordCursor(CursorPagination):
    """Cursor pages over records; the view chooses the ordering (``view.cursor_ordering``).

    New records never shift a page already handed out, unlike offsets.
    """

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def get_ordering(self, request, queryset, view):
        return view.cursor_ordering
