from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import path, re_path
from django.views.decorators.csrf import csrf_exempt

from api.views import (
    attachments,
    audit,
    batches,
    exports,
    history,
    inventory,
    pages,
    pipelines,
    projects,
    records,
    search,
    validations,
)

app_name = "api"


@csrf_exempt
@login_not_required
def not_found(request):
    """Unknown API paths answer in JSON like the rest of the API, not with an HTML page."""
    detail = f"There is nothing at {request.path}; the endpoints are listed at /api/docs/."
    return JsonResponse({"status": 404, "detail": detail}, status=404)


PROJECT = "projects/<slug:project>/"
PAGE = f"{PROJECT}pages/<slug:page>/"

urlpatterns = [
    path("projects/", projects.ProjectList.as_view(), name="project-list"),
    path("search/", search.Search.as_view(), name="search"),
    path("inventory/", inventory.Inventory.as_view(), name="inventory"),
    path(PROJECT, projects.ProjectDetail.as_view(), name="project-detail"),
    path(f"{PROJECT}template/", projects.ProjectTemplate.as_view(), name="project-template"),
    path(f"{PROJECT}pages/", pages.PageList.as_view(), name="page-list"),
    path(f"{PROJECT}pages/<slug:page>/", pages.PageDetail.as_view(), name="page-detail"),
    path(f"{PROJECT}docs/", pages.PageTree.as_view(), name="docs-push"),
    path(f"{PAGE}revisions/", history.RevisionList.as_view(), name="revision-list"),
    path(
        f"{PAGE}revisions/<int:number>/",
        history.RevisionDetail.as_view(),
        name="revision-detail",
    ),
    path(f"{PAGE}diff/", history.RevisionDiff.as_view(), name="page-diff"),
    path(f"{PAGE}restore/", history.RevisionRestore.as_view(), name="page-restore"),
    path(f"{PAGE}review/", history.PageReview.as_view(), name="page-review"),
    path(f"{PAGE}approve/", history.PageApprove.as_view(), name="page-approve"),
    # The workflow page's pipeline: only that page has one.
    path(
        f"{PROJECT}pages/workflow/pipeline/",
        pipelines.PipelineDetail.as_view(),
        name="pipeline-detail",
    ),
    path(
        f"{PROJECT}training-runs/",
        records.TrainingRunList.as_view(),
        name="training-run-list",
    ),
    path(
        f"{PROJECT}training-runs/batch/",
        batches.TrainingRunBatch.as_view(),
        name="training-run-batch",
    ),
    path(
        f"{PROJECT}training-runs/<int:pk>/",
        records.TrainingRunDetail.as_view(),
        name="training-run-detail",
    ),
    path(
        f"{PROJECT}training-runs/<int:pk>/series/",
        records.TrainingRunSeries.as_view(),
        name="training-run-series",
    ),
    path(f"{PROJECT}deployments/", records.DeploymentList.as_view(), name="deployment-list"),
    path(
        f"{PROJECT}deployments/batch/",
        batches.DeploymentBatch.as_view(),
        name="deployment-batch",
    ),
    path(
        f"{PROJECT}deployments/<int:pk>/",
        records.DeploymentDetail.as_view(),
        name="deployment-detail",
    ),
    path(
        f"{PROJECT}model-versions/",
        records.ModelVersionList.as_view(),
        name="model-version-list",
    ),
    # Attachments (api/views/attachments.py): list and upload, download and delete one,
    # its versions. Model versions are named by their version string, as elsewhere.
    *attachments.routes(PAGE, "page"),
    *attachments.routes(f"{PROJECT}training-runs/<int:pk>/", "training_run"),
    *attachments.routes(f"{PROJECT}deployments/<int:pk>/", "deployment"),
    *attachments.routes(f"{PROJECT}model-versions/<text:version>/", "model_version"),
    path(f"{PROJECT}validations/", validations.ValidationList.as_view(), name="validation-list"),
    path(
        f"{PROJECT}validations/<int:number>/",
        validations.ValidationDetail.as_view(),
        name="validation-detail",
    ),
    path(
        f"{PROJECT}validations/<int:number>/conclusion/",
        validations.ValidationConclusion.as_view(),
        name="validation-conclusion",
    ),
    path(f"{PROJECT}findings/", validations.FindingList.as_view(), name="finding-list"),
    path(
        f"{PROJECT}findings/<int:number>/",
        validations.FindingDetail.as_view(),
        name="finding-detail",
    ),
    path(
        f"{PROJECT}findings/<int:number>/comments/",
        validations.FindingCommentList.as_view(),
        name="finding-comment-list",
    ),
    path(f"{PROJECT}activity/", history.ActivityList.as_view(), name="activity-list"),
    path(f"{PROJECT}activity/export/", history.ActivityExport.as_view(), name="activity-export"),
    path(f"{PROJECT}audit/verify/", audit.AuditVerify.as_view(), name="audit-verify"),
    path(f"{PROJECT}exports/", exports.ExportList.as_view(), name="export-list"),
    path(f"{PROJECT}markdown.tar.gz", exports.MarkdownTree.as_view(), name="markdown-tree"),
    path(f"{PROJECT}model-card/", exports.ModelCard.as_view(), name="model-card"),
    path("exports/<int:pk>/", exports.ExportDetail.as_view(), name="export-detail"),
    path("exports/<int:pk>/download/", exports.ExportDownload.as_view(), name="export-download"),
    re_path(r"", not_found),
]
