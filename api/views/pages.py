"""Pages: list, read (with ETag), replace or change (If-Match, pages:write)."""

from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Value, When
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins
from rest_framework.response import Response

from api.auth import Scope
from api.parsers import BatchJSONParser
from api.serializers import (
    PageListSerializer,
    PageSerializer,
    PageWriteSerializer,
    TreePushedSerializer,
    TreePushSerializer,
)
from api.views.base import (
    AS_OF,
    IF_MATCH,
    ApiView,
    if_match_revision,
    list_responses,
    responses,
    with_etag,
)
from wiki import as_of
from wiki.health import stale_reasons
from wiki.history import git_origin
from wiki.rendering import render_markdown
from wiki.services.pages import TreeFile, edit_page, push_tree, revision_of
from wiki.summaries import records_summary

# Fields of the GET representation a client may send back unchanged in a PUT or PATCH.
READ_ONLY_NAMES = set(PageSerializer().fields) - set(PageWriteSerializer().fields)


class PageList(mixins.ListModelMixin, ApiView):
    """A project's pages: the six categories in their order, then free pages by slug;
    with ``as_of``, the pages that existed then, each at its revision then."""

    serializer_class = PageListSerializer

    def get_queryset(self):
        query = self.query({"kind", as_of.PARAMETER})
        project = self.get_project()
        kind = query.choice("kind", ["category", "free"])
        moment = self.moment()
        if moment is not None:
            then = as_of.documentation(project, moment)
            pages = then.pages
            if kind is not None:
                pages = [p for p in pages if bool(p.category) == (kind == "category")]
            order = then.project.spec.order  # the template then
            return sorted(pages, key=lambda p: (order(p.category), p.slug))
        pages = project.pages.select_related("project")
        if kind is not None:
            pages = pages.categories() if kind == "category" else pages.free()
        names = project.spec.category_names
        order = Case(
            *(When(category=name, then=Value(i)) for i, name in enumerate(names)),
            default=Value(len(names)),
            output_field=IntegerField(),
        )
        return pages.order_by(order, "slug")

    def get_serializer_context(self):
        return super().get_serializer_context() | {"as_of": self.moment()}

    @extend_schema(
        parameters=[OpenApiParameter("kind", str, enum=["category", "free"]), AS_OF],
        responses=list_responses(PageListSerializer),
    )
    def get(self, request, project):
        return self.list(request)


class PageDetail(ApiView):
    """A page by category name or slug; its ETag is its revision. PUT replaces its fields
    and body (and a free page's title), PATCH changes what it names (fields one by one,
    null removing one); both need pages:write and If-Match, and take a change_reason.
    Read-only parts of what you read may be sent back; they are ignored."""

    serializer_class = PageSerializer
    scopes = ApiView.scopes | {"PUT": Scope.PAGES_WRITE, "PATCH": Scope.PAGES_WRITE}

    def get_page(self):
        project = self.get_project()
        page = project.pages.filter(slug=self.kwargs["page"]).first()
        if page is None:
            raise exceptions.NotFound(f"{project.name} has no page '{self.kwargs['page']}'.")
        page.project = project
        return page

    def represent(self, page, moment=None):
        """The page (as it stood at ``moment``, if given: then what the records say and
        staleness, which are today's, are left out, and there is no ETag to write with)."""
        # Who wrote the current revision, not who last reviewed or approved it.
        written = revision_of(page, page.revision)
        context = {
            "request": self.request,
            "body_html": render_markdown(page.body, page.project.slug),
            "updated_by": written.history_username if written else "",
            "records_summary": records_summary(page) if moment is None else None,
            "stale_reasons": stale_reasons(page) if moment is None else [],
            "as_of": moment,
        }
        response = Response(PageSerializer(page, context=context).data)
        return response if moment is not None else with_etag(response, page.revision)

    @extend_schema(parameters=[AS_OF], responses=responses({200: PageSerializer}, 400, 404))
    def get(self, request, project, page):
        moment = self.moment()
        if moment is None:
            return self.represent(self.get_page())
        project = self.get_project()
        found = as_of.documentation(project, moment, slug=self.kwargs["page"]).page(
            self.kwargs["page"]
        )
        if found is None:
            raise exceptions.NotFound(
                f"{project.name} had no page '{self.kwargs['page']}' on {moment.label}."
            )
        return self.represent(found, moment)

    @extend_schema(
        request=PageWriteSerializer,
        parameters=[IF_MATCH],
        responses=responses({200: PageSerializer}, 400, 404, 412, 413, 415, 428),
    )
    def put(self, request, project, page):
        return self.write(request, replace=True)

    @extend_schema(
        request=PageWriteSerializer,
        parameters=[IF_MATCH],
        responses=responses({200: PageSerializer}, 400, 404, 412, 413, 415, 428),
    )
    def patch(self, request, project, page):
        return self.write(request, replace=False)

    def write(self, request, replace):
        page = self.get_page()
        base_revision = if_match_revision(request)
        serializer = PageWriteSerializer(data=request.data, read_only_names=READ_ONLY_NAMES)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        moved = {
            name: ["A page's slug and category never change."]
            for name in ("slug", "category")
            if name in data and data[name] != getattr(page, name)
        }
        if moved:
            raise exceptions.ValidationError(moved)
        if replace:
            needed = ["fields", "body"] if page.category else ["title", "body"]
            missing = [name for name in needed if name not in data]
            if missing:
                raise exceptions.ValidationError(
                    {name: ["PUT replaces the page: send it (or use PATCH)."] for name in missing}
                )
        try:
            saved = edit_page(
                page,
                actor=self.actor(),
                base_revision=base_revision,
                change_reason=data.get("change_reason", ""),
                fields=data.get("fields"),
                body=data.get("body"),
                title=data.get("title"),
                merge_fields=not replace,
            )
        except ValidationError as error:
            raise exceptions.ValidationError(_nest_field_errors(error.message_dict)) from None
        saved.project = page.project
        return self.represent(saved)


class PageTree(ApiView):
    """Docs as code: the Markdown files of a folder kept in git (as export_markdown and
    markdown.tar.gz write them) pushed as revisions of their pages, with the commit as
    their origin and its message as their reason (the CI client's docs-push). All or
    nothing: a page edited in the wiki since the last push is never overwritten (409
    names each one), an invalid file is a 400 naming it; a file that says what its page
    holds writes nothing, so pushing an export back changes nothing."""

    scopes = {"POST": Scope.PAGES_WRITE}
    parser_classes = [BatchJSONParser]
    serializer_class = TreePushedSerializer

    @extend_schema(
        request=TreePushSerializer,
        responses=responses({200: TreePushedSerializer}, 400, 404, 409, 413, 415),
        operation_id="projects_docs_push",
    )
    def post(self, request, project):
        project = self.get_project()
        serializer = TreePushSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        files = [
            TreeFile(path=f["path"], content=f["content"], previous=f["previous"])
            for f in data["files"]
        ]
        outcomes = push_tree(
            project,
            actor=self.actor(),
            files=files,
            origin=git_origin(**data["source"]),
            change_reason=data["message"],
        )
        pages = [{"path": path, "page": page, "outcome": how} for path, page, how in outcomes]
        return Response(TreePushedSerializer({"pages": pages}).data)


def _nest_field_errors(errors):
    """Errors about registry fields go under "fields" (fields.purpose), as they were sent."""
    own = {"fields", "body", "title", "change_reason"}
    nested = {name: messages for name, messages in errors.items() if name not in own}
    flat = {name: messages for name, messages in errors.items() if name in own}
    if nested:
        flat["fields"] = nested | ({"": flat["fields"]} if "fields" in flat else {})
    return flat
