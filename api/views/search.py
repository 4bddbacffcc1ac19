"""Search over the API: the same results as the browser's, as JSON."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers
from rest_framework.reverse import reverse

from api.auth import request_token
from api.pagination import NumberedPages
from api.views.base import ApiView, list_responses
from wiki.access import visible_projects
from wiki.search import search, snippet


class ResultSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["project", "page", "run"])
    title = serializers.CharField()
    project = serializers.CharField(source="project.slug")
    category = serializers.CharField(help_text="The page's category; empty otherwise.")
    url = serializers.SerializerMethodField(help_text="The API resource found.")
    snippet = serializers.SerializerMethodField(
        help_text="Where the words are, as HTML: escaped text, matches in <mark>."
    )

    def get_url(self, entry) -> str:
        request = self.context["request"]
        slug = entry.project.slug
        if entry.kind == "page":
            return reverse("api:page-detail", args=[slug, entry.slug], request=request)
        if entry.kind == "run":
            return reverse("api:training-run-detail", args=[slug, entry.object_id], request=request)
        return reverse("api:project-detail", args=[slug], request=request)

    def get_snippet(self, entry) -> str:
        return str(snippet(entry, self.context["q"]))


class Search(mixins.ListModelMixin, ApiView):
    """Search the projects the caller may see (and the token may use): project names and
    summaries, pages (titles, fields, bodies), training runs (notes, tags, datasets). On
    PostgreSQL ranked full-text search with stemming; best first."""

    serializer_class = ResultSerializer
    pagination_class = NumberedPages

    def get_queryset(self):
        query = self.query({"q"})
        projects = visible_projects(self.request.user)
        token = request_token(self.request)
        if token is not None and not token.all_projects:
            projects = projects.filter(slug__in=token.projects)
        # No words (or none but punctuation): nothing found, as in the browser.
        return search(query.params.get("q", ""), projects)

    def get_serializer_context(self):
        return super().get_serializer_context() | {"q": self.request.query_params.get("q", "")}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "q", str, required=True, description="Words to find (none: no results)."
            )
        ],
        responses=list_responses(ResultSerializer),
    )
    def get(self, request):
        return self.list(request)
