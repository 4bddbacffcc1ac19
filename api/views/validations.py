"""Independent validation: validations (open, read, conclude), findings (file, read,
change with If-Match) and their comments. Writes need the validations:write scope; who
may make which change is wiki.services.validations' rule (a 403 says who may)."""

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, status
from rest_framework.response import Response

from api.auth import Scope
from api.validation_serializers import (
    CommentCreateSerializer,
    CommentSerializer,
    ConclusionSerializer,
    FindingCreateSerializer,
    FindingDetailSerializer,
    FindingSerializer,
    FindingUpdateSerializer,
    ValidationCreateSerializer,
    ValidationSerializer,
)
from api.views.base import (
    IDEMPOTENCY_KEY,
    IF_MATCH,
    LOCATION,
    REPLAYED,
    ApiView,
    idempotent,
    if_match_revision,
    list_responses,
    responses,
    with_etag,
)
from wiki import validations as readers
from wiki.access import VALIDATE, VIEW
from wiki.models import Finding, Validation
from wiki.services import validations as service

WRITE = ApiView.scopes | {"POST": Scope.VALIDATIONS_WRITE, "PATCH": Scope.VALIDATIONS_WRITE}
BOOLEAN = {"type": "string", "enum": ["true", "false"]}


class ValidationList(mixins.ListModelMixin, ApiView):
    """A project's validations, newest first. A validator opens one over pinned page
    revisions (by default every page at its current revision)."""

    serializer_class = ValidationSerializer
    scopes = WRITE
    needs = ApiView.needs | {"POST": VALIDATE}

    def get_queryset(self):
        query = self.query({"open"})
        validations = Validation.objects.filter(project=self.get_project()).select_related(
            "project"
        )
        is_open = query.choice("open", ["true", "false"])
        if is_open is not None:
            validations = validations.filter(outcome="") if is_open == "true" else (
                validations.exclude(outcome="")
            )  # fmt: skip
        return validations.order_by("-number")

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if self.request.method == "GET":  # the signatures of the whole list, in two queries
            context["signatures"] = readers.signatures(self.get_project())
        return context

    @extend_schema(
        parameters=[OpenApiParameter("open", BOOLEAN, description="Open (or concluded) ones.")],
        responses=list_responses(ValidationSerializer),
    )
    def get(self, request, project):
        return self.list(request)

    @extend_schema(
        request=ValidationCreateSerializer,
        parameters=[IDEMPOTENCY_KEY, REPLAYED, LOCATION],
        responses=responses(
            {201: ValidationSerializer}, 400, 404, 413, 415, 422, replay=ValidationSerializer
        ),
    )
    def post(self, request, project):
        project = self.get_project()

        def write():
            serializer = ValidationCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
            pinned = data.get("pinned")
            opened = service.open_validation(
                project,
                actor=self.actor(),
                title=data["title"],
                scope=data.get("scope", ""),
                pinned=[dict(item) for item in pinned] if pinned is not None else None,
            )
            return self.get_serializer(opened).data

        return idempotent(self, project, write, status.HTTP_201_CREATED)


class ValidationMixin:
    def get_validation(self):
        project = self.get_project()
        found = Validation.objects.filter(project=project, number=self.kwargs["number"]).first()
        if found is None:
            raise exceptions.NotFound(f"{project.name} has no validation {self.kwargs['number']}.")
        found.project = project
        return found


class ValidationDetail(ValidationMixin, ApiView):
    """A validation: what it pinned, its validator, and its signed conclusion once it
    has one."""

    serializer_class = ValidationSerializer

    @extend_schema(responses=responses({200: ValidationSerializer}, 404))
    def get(self, request, project, number):
        return Response(self.get_serializer(self.get_validation()).data)


class ValidationConclusion(ValidationMixin, ApiView):
    """Conclude an open validation (a validator): its outcome and conclusion, signed with
    the validator's name, the time and the audit chain digest of the conclusion. Once:
    a concluded validation is a 409."""

    serializer_class = ValidationSerializer
    scopes = WRITE
    needs = ApiView.needs | {"POST": VALIDATE}

    @extend_schema(
        request=ConclusionSerializer,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses=responses({200: ValidationSerializer}, 400, 404, 409, 413, 415, 422),
    )
    def post(self, request, project, number):
        validation = self.get_validation()

        def write():
            serializer = ConclusionSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            concluded = service.conclude_validation(
                validation, actor=self.actor(), **serializer.validated_data
            )
            concluded.project = validation.project
            return self.get_serializer(concluded).data

        return idempotent(self, validation.project, write, status.HTTP_200_OK)


FINDING_FILTERS = [
    OpenApiParameter("status", str, enum=Finding.Status.values),
    OpenApiParameter("severity", str, enum=Finding.Severity.values),
    OpenApiParameter("validation", {"type": "integer", "minimum": 1}, description="Its number."),
    OpenApiParameter("overdue", BOOLEAN, description="Unresolved past their due date (or not)."),
]


class FindingList(mixins.ListModelMixin, ApiView):
    """A project's findings, newest first. A validator files one in an open validation,
    saying what it is about: a page (a field, a revision of it) or a record."""

    serializer_class = FindingSerializer
    scopes = WRITE
    needs = ApiView.needs | {"POST": VALIDATE}

    def get_queryset(self):
        query = self.query({"status", "severity", "validation", "overdue"})
        findings = Finding.objects.filter(project=self.get_project()).select_related(
            "project", "validation", "page"
        )
        for name, choices in (("status", Finding.Status), ("severity", Finding.Severity)):
            value = query.choice(name, choices.values)
            if value is not None:
                findings = findings.filter(**{name: value})
        number = query.text("validation")
        if number is not None:
            if not (number.isascii() and number.isdigit() and len(number) <= 9):
                raise exceptions.ValidationError({"validation": ["A validation's number."]})
            findings = findings.filter(validation__number=int(number))
        overdue = query.choice("overdue", ["true", "false"])
        if overdue is not None:
            late = Finding.objects.overdue().values("pk")
            findings = (
                findings.filter(pk__in=late) if overdue == "true" else findings.exclude(pk__in=late)
            )
        return findings.order_by("-number")

    @extend_schema(parameters=FINDING_FILTERS, responses=list_responses(FindingSerializer))
    def get(self, request, project):
        return self.list(request)

    @extend_schema(
        request=FindingCreateSerializer,
        parameters=[IDEMPOTENCY_KEY, REPLAYED, LOCATION],
        responses=responses(
            {201: FindingDetailSerializer}, 400, 404, 409, 413, 415, 422,
            replay=FindingDetailSerializer,
        ),
    )  # fmt: skip
    def post(self, request, project):
        project = self.get_project()

        def write():
            serializer = FindingCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            data = dict(serializer.validated_data)
            validation = _validation_for(project, data.pop("validation", None))
            filed = service.file_finding(validation, actor=self.actor(), **data)
            return FindingDetailSerializer(filed, context=self.get_serializer_context()).data

        return idempotent(self, project, write, status.HTTP_201_CREATED)


def _validation_for(project, number):
    """The validation a finding is filed in: the one numbered, else the only open one."""
    if number is not None:
        found = Validation.objects.filter(project=project, number=number).first()
        if found is None:
            raise exceptions.ValidationError(
                {"validation": [f"{project.name} has no validation {number}."]}
            )
        return found
    opened = list(Validation.objects.filter(project=project, outcome="").order_by("number")[:2])
    if len(opened) != 1:
        why = "none is open: open one first" if not opened else "several are open: name one"
        raise exceptions.ValidationError({"validation": [f"Give its number ({why})."]})
    return opened[0]


class FindingMixin:
    def get_finding(self):
        project = self.get_project()
        found = (
            Finding.objects.filter(project=project, number=self.kwargs["number"])
            .select_related("validation", "page")
            .first()
        )
        if found is None:
            raise exceptions.NotFound(f"{project.name} has no finding {self.kwargs['number']}.")
        found.project = project
        return found


class FindingDetail(FindingMixin, ApiView):
    """A finding, with its life cycle; its ETag is its revision. PATCH (If-Match) moves
    its status with what the move needs, or changes its owner or due date: the 403 of a
    change says who may make it, the 409 of a move the life cycle does not allow says
    why."""

    serializer_class = FindingDetailSerializer
    scopes = WRITE
    needs = ApiView.needs | {"PATCH": VIEW}  # who may make which change: the service's rule

    def represent(self, finding):
        return with_etag(Response(self.get_serializer(finding).data), finding.revision)

    @extend_schema(responses=responses({200: FindingDetailSerializer}, 404))
    def get(self, request, project, number):
        return self.represent(self.get_finding())

    @extend_schema(
        request=FindingUpdateSerializer,
        parameters=[IF_MATCH],
        responses=responses({200: FindingDetailSerializer}, 400, 404, 409, 412, 413, 415, 428),
    )
    def patch(self, request, project, number):
        finding = self.get_finding()
        base_revision = if_match_revision(request)
        serializer = FindingUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        changes = {name: data[name] for name in ("owner", "due_date") if name in data}
        changed = service.change_finding(
            finding, actor=self.actor(), base_revision=base_revision,
            status=data.get("status"), remediation=data.get("remediation"),
            comment=data.get("comment"), risk_justification=data.get("risk_justification"),
            **changes,
        )  # fmt: skip
        changed.project = finding.project
        return self.represent(changed)


class FindingCommentList(FindingMixin, mixins.ListModelMixin, ApiView):
    """The comments on a finding, oldest first. Its owner, editors, maintainers and
    validators comment."""

    serializer_class = CommentSerializer
    scopes = WRITE
    needs = ApiView.needs | {"POST": VIEW}  # who may comment: the service's rule

    def get_queryset(self):
        self.query()
        return self.get_finding().comments.order_by("created_at", "id")

    @extend_schema(responses=list_responses(CommentSerializer))
    def get(self, request, project, number):
        return self.list(request)

    @extend_schema(
        request=CommentCreateSerializer,
        parameters=[IDEMPOTENCY_KEY, REPLAYED],
        responses=responses(
            {201: CommentSerializer}, 400, 404, 413, 415, 422, replay=CommentSerializer
        ),
    )
    def post(self, request, project, number):
        finding = self.get_finding()

        def write():
            serializer = CommentCreateSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            comment = service.comment_on_finding(
                finding, actor=self.actor(), body=serializer.validated_data["body"]
            )
            return CommentSerializer(comment).data

        return idempotent(self, finding.project, write, status.HTTP_201_CREATED)
