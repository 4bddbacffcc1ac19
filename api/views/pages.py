"""Pages: list, read (with ETag), replace or change (If-Match, pages:write)."""

from django.db.models import Case, IntegerField, Value, When
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, mixins
from rest_framework.response import Response

from api.auth import Scope
from api.serializers import PageListSerializer, PageSerializer, PageWriteSerializer
from api.views.base import ApiView, if_match_revision, with_etag
from api.views.projects import IF_MATCH
from wiki.categories import CATEGORY_NAMES
from wiki.rendering import render_markdown
from wiki.services.pages import edit_page
from wiki.summaries import records_summary

# Fields of the GET representation a client may send back unchanged in a PUT or PATCH.
READ_ONLY_NAMES = set(PageSerializer().fields) - set(PageWriteSerializer().fields)


class PageList(mixins.ListModelMixin, ApiView):
    serializer_class = PageListSerializer

    def get_queryset(self):
        project = self.get_project()
        # The six categories in their registry order, then free pages by slug.
        order = Case(
            *(When(category=name, then=Value(i)) for i, name in enumerate(CATEGORY_NAMES)),
            default=Value(len(CATEGORY_NAMES)),
            output_field=IntegerField(),
        )
        return project.pages.select_related("project").order_by(order, "slug")

    def get(self, request, project):
        return self.list(request)


class PageDetail(ApiView):
    serializer_class = PageSerializer
    scopes = ApiView.scopes | {"PUT": Scope.PAGES_WRITE, "PATCH": Scope.PAGES_WRITE}

    def get_page(self):
        project = self.get_project()
        page = project.pages.filter(slug=self.kwargs["page"]).first()
        if page is None:
            raise exceptions.NotFound(f"{project.name} has no page '{self.kwargs['page']}'.")
        page.project = project
        return page

    def represent(self, page):
        context = {
            "request": self.request,
            "body_html": render_markdown(page.body, page.project.slug),
            "updated_by": page.history.values_list("history_username", flat=True).first() or "",
            "records_summary": records_summary(page),
        }
        return with_etag(Response(PageSerializer(page, context=context).data), page.revision)

    def get(self, request, project, page):
        return self.represent(self.get_page())

    @extend_schema(request=PageWriteSerializer, parameters=[IF_MATCH])
    def put(self, request, project, page):
        return self.write(request, replace=True)

    @extend_schema(request=PageWriteSerializer, parameters=[IF_MATCH])
    def patch(self, request, project, page):
        return self.write(request, replace=False)

    def write(self, request, replace):
        base_revision = if_match_revision(request)
        page = self.get_page()
        serializer = PageWriteSerializer(data=request.data, read_only_names=READ_ONLY_NAMES)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        fields = data.get("fields")
        if replace:
            needed = ["fields", "body"] if page.category else ["title", "body"]
            missing = [name for name in needed if name not in data]
            if missing:
                raise exceptions.ValidationError(
                    {name: ["PUT replaces the page: send it (or use PATCH)."] for name in missing}
                )
        elif fields is not None:
            # PATCH merges fields key by key; null removes a field.
            fields = {k: v for k, v in (page.fields | fields).items() if v is not None}
        saved = edit_page(
            page,
            actor=self.actor(),
            base_revision=base_revision,
            change_reason=data.get("change_reason") or "Edited through the API",
            fields=fields,
            body=data.get("body"),
            title=data.get("title"),
        )
        saved.project = page.project
        return self.represent(saved)
