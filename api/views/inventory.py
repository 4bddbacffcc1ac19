"""The model inventory over the API: every model the caller may see (wiki.inventory), as
JSON pages or as one CSV."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

from api.auth import request_token
from api.views.base import TEXT, ApiView, FormatIsAParameter, list_responses
from wiki import inventory
from wiki.access import visible_projects
from wiki.models import Validation

FILTERS = ["text", "tier", "status", "team", "review", "outcome", "sort", "format"]
OUTCOMES = [*Validation.Outcome.values, inventory.NEVER]


class InventorySerializer(serializers.Serializer):
    model_id = serializers.CharField(help_text="The project's slug.")
    name = serializers.CharField()
    owner_team = serializers.CharField()
    risk_tier = serializers.CharField(help_text="The template's risk-tier field; '' when unset.")
    template = serializers.CharField(help_text="The template version the project is pinned to.")
    status = serializers.CharField()
    production_version = serializers.CharField(
        help_text="The model version of the latest succeeded deployment to production."
    )
    last_validation_outcome = serializers.CharField()
    last_validation_date = serializers.CharField()
    validator = serializers.CharField(help_text="Who signed the last validation's conclusion.")
    open_findings_high = serializers.IntegerField()
    open_findings_medium = serializers.IntegerField()
    open_findings_low = serializers.IntegerField()
    overdue_findings = serializers.IntegerField()
    next_review = serializers.CharField(help_text="YYYY-MM-DD; '' without a risk tier.")
    review_state = serializers.ChoiceField(choices=inventory.REVIEW_STATES)


# A page of rows as JSON, or with format=csv every row as CSV.
RESPONSES = list_responses(InventorySerializer)
RESPONSES[(200, "application/json")] = RESPONSES.pop(200)
RESPONSES[(200, "text/csv")] = OpenApiResponse(
    OpenApiTypes.STR, description="format=csv: every row, with the JSON's keys as header."
)


class Inventory(ApiView):
    """Every model (project) the caller may see, with its owner team, risk tier, template,
    status, production version, last validation, open findings by severity and next
    periodic review. ``format=csv`` gives all of them as one CSV download."""

    serializer_class = InventorySerializer
    content_negotiation_class = FormatIsAParameter

    @extend_schema(
        operation_id="inventory_list",
        parameters=[
            OpenApiParameter("text", TEXT, description="Models whose name or id contain this."),
            OpenApiParameter("tier", TEXT, description="Models of this risk tier."),
            OpenApiParameter("status", TEXT, description="Models with this status."),
            OpenApiParameter("team", TEXT, description="Models of this owner team."),
            OpenApiParameter("review", TEXT, enum=inventory.REVIEW_STATES),
            OpenApiParameter(
                "outcome", TEXT, enum=OUTCOMES,
                description="The last validation's outcome; 'none': never validated.",
            ),
            OpenApiParameter("sort", TEXT, enum=list(inventory.SORTS), description="Default name."),
            OpenApiParameter("format", TEXT, enum=["csv"], description="All rows as CSV."),
        ],
        responses=RESPONSES,
    )  # fmt: skip
    def get(self, request):
        query = self.query([*FILTERS, *self.paginator.query_parameters])
        csv = query.choice("format", ["csv"])
        filters = {name: query.text(name) for name in ("text", "tier", "status", "team")}
        filters["review"] = query.choice("review", inventory.REVIEW_STATES)
        filters["outcome"] = query.choice("outcome", OUTCOMES)
        filters["sort"] = query.choice("sort", list(inventory.SORTS)) or "name"
        projects = visible_projects(request.user)
        token = request_token(request)
        if token is not None and not token.all_projects:
            projects = projects.filter(slug__in=token.projects)
        rows = inventory.chosen(inventory.inventory(projects), **filters)
        if csv:
            return inventory.csv_response(rows)
        page = self.paginate_queryset(rows)
        return self.get_paginated_response([inventory.as_record(row) for row in page])
