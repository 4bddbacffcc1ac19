"""A page's history over the API (revisions, differences, restore), its review and
approval, and the project's activity log."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins
from rest_framework.response import Response

from api.auth import Scope
from api.pagination import NumberedPages, RecordCursor
from api.serializers import (
    ActivitySerializer,
    ApproveSerializer,
    DiffSerializer,
    PageSerializer,
    RestoreSerializer,
    RevisionDetailSerializer,
    RevisionSerializer,
)
from api.views.base import TEXT, TIME, ApiView, if_match_revision, list_responses, responses
from api.views.pages import PageDetail
from wiki.access import MAINTAIN
from wiki.audit import ACTIVITY_KINDS, activity, activity_csv_response
from wiki.diff import compare, content
from wiki.history import Source
from wiki.rendering import render_markdown
from wiki.services.pages import (
    approve_page,
    compared_revisions,
    restore_page,
    revision_of,
    submit_for_review,
)

WRITE_PAGES = ApiView.scopes | {"POST": Scope.PAGES_WRITE}


class PageViewMixin:
    """The page named in the URL, found through PageDetail's rules."""

    def get_page(self):
        return PageDetail.get_page(self)

    def revision(self, page, number, name="revision"):
        try:
            row = revision_of(page, int(number))
        except (TypeError, ValueError):
            row = None
        if row is None:
            raise exceptions.NotFound(f"{page} has no revision {number!r} ({name}).")
        return row


class RevisionList(PageViewMixin, mixins.ListModelMixin, ApiView):
    """Every revision of a page, newest first (a review or approval repeats the revision
    number it concerns)."""

    serializer_class = RevisionSerializer
    pagination_class = NumberedPages

    def get_queryset(self):
        self.query()
        return self.get_page().history.order_by("-history_date", "-history_id")

    @extend_schema(responses=list_responses(RevisionSerializer))
    def get(self, request, project, page):
        return self.list(request)


class RevisionDetail(PageViewMixin, ApiView):
    """One revision of a page, with its content as it was."""

    serializer_class = RevisionDetailSerializer

    @extend_schema(responses=responses({200: RevisionDetailSerializer}, 404))
    def get(self, request, project, page, number):
        found = self.get_page()
        row = self.revision(found, number)
        context = {"body_html": render_markdown(row.body, found.project.slug)}
        return Response(RevisionDetailSerializer(row, context=context).data)


class RevisionDiff(PageViewMixin, ApiView):
    """What changed from revision ``from`` to revision ``to``: each field and the body,
    with a line diff (side by side); timestamps are left out. A missing or unknown
    revision is a 400 naming the parameter."""

    serializer_class = DiffSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("from", int, required=True, description="The older revision."),
            OpenApiParameter("to", int, required=True, description="The newer revision."),
        ],
        responses=responses({200: DiffSerializer}, 400, 404),
    )
    def get(self, request, project, page):
        query = self.query({"from", "to"})
        found = self.get_page()
        older, newer = compared_revisions(found, query.text("from"), query.text("to"))
        changes = compare(found.spec, content(older), content(newer), words=False)
        data = {"from_revision": older.revision, "to_revision": newer.revision, "changes": changes}
        return Response(DiffSerializer(data).data)


def _page_response(view, page):
    page.project = view.get_project()
    return PageDetail.represent(view, page)


class RevisionRestore(PageViewMixin, ApiView):
    """Save the content of an earlier revision as a new revision (nothing is rewritten);
    its reason says which revision it restores. If-Match, when sent, is checked."""

    serializer_class = PageSerializer
    scopes = WRITE_PAGES

    @extend_schema(
        request=RestoreSerializer,
        parameters=[OpenApiParameter("If-Match", str, OpenApiParameter.HEADER)],
        responses=responses({200: PageSerializer}, 400, 404, 412, 413, 415),
    )
    def post(self, request, project, page):
        found = self.get_page()
        base_revision = None
        if "If-Match" in request.headers:
            base_revision = if_match_revision(request)
        serializer = RestoreSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        self.revision(found, data["revision"])
        saved = restore_page(
            found,
            actor=self.actor(),
            revision=data["revision"],
            base_revision=base_revision,
            change_reason=data.get("change_reason", ""),
        )
        return _page_response(self, saved)


class PageReview(PageViewMixin, ApiView):
    """Submit the page's current revision for review by its maintainers."""

    serializer_class = PageSerializer
    scopes = WRITE_PAGES

    @extend_schema(request=None, responses=responses({200: PageSerializer}, 404))
    def post(self, request, project, page):
        return _page_response(self, submit_for_review(self.get_page(), actor=self.actor()))


class PageApprove(PageViewMixin, ApiView):
    """Approve the page's current revision: a maintainer who did not write it (four eyes)."""

    serializer_class = PageSerializer
    scopes = WRITE_PAGES
    needs = ApiView.needs | {"POST": MAINTAIN}

    @extend_schema(
        request=ApproveSerializer, responses=responses({200: PageSerializer}, 400, 404, 412)
    )
    def post(self, request, project, page):
        found = self.get_page()
        serializer = ApproveSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        approved = approve_page(
            found, actor=self.actor(), revision=data["revision"], comment=data.get("comment", "")
        )
        return _page_response(self, approved)


ACTIVITY_FILTERS = {"user", "source", "kind", "since", "until"}
ACTIVITY_PARAMETERS = [
    OpenApiParameter("user", TEXT, description="Changes by this user name."),
    OpenApiParameter("source", str, enum=Source.values),
    OpenApiParameter("kind", str, enum=list(ACTIVITY_KINDS)),
    OpenApiParameter("since", TIME, description="At or after (ISO 8601, with zone)."),
    OpenApiParameter("until", TIME, description="Before (ISO 8601, with zone)."),
]


def _activity(view):
    query = view.query(ACTIVITY_FILTERS)
    return activity(
        view.get_project(),
        user=query.text("user"),
        source=query.choice("source", Source.values),
        kind=query.choice("kind", list(ACTIVITY_KINDS)),
        since=query.time("since"),
        until=query.time("until"),
    )


class ActivityList(mixins.ListModelMixin, ApiView):
    """Every change of the project, newest first, as linked in its audit chain."""

    serializer_class = ActivitySerializer
    pagination_class = RecordCursor
    cursor_ordering = "-seq"

    def get_queryset(self):
        return _activity(self)

    @extend_schema(
        parameters=ACTIVITY_PARAMETERS,
        responses=list_responses(ActivitySerializer),
    )
    def get(self, request, project):
        return self.list(request)


class ActivityExport(ApiView):
    """The activity log as CSV (the filters of the list), streamed."""

    @extend_schema(
        parameters=ACTIVITY_PARAMETERS,
        responses={(200, "text/csv"): str, **responses({}, 400, 404)},
    )
    def get(self, request, project):
        return activity_csv_response(self.get_project(), _activity(self))
