from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from frontend.views import (
    attachments,
    exports,
    inventory,
    pages,
    projects,
    records,
    runs,
    search,
    tokens,
    validations,
)

app_name = "frontend"

PROJECT = "projects/<slug:project>/"
PAGE = f"{PROJECT}<slug:page>/"


class Favicon(RedirectView):
    """/favicon.ico, which browsers ask for on pages that name no icon (the admin, JSON
    answers), to the wiki's icon. Not permanent: its static URL changes with the file."""

    def get_redirect_url(self, *args, **kwargs):
        return static("frontend/favicon.svg")


urlpatterns = [
    path("", projects.project_list, name="project-list"),
    path("favicon.ico", login_not_required(Favicon.as_view())),
    path("tokens/", tokens.tokens, name="tokens"),
    path("search/", search.search_page, name="search"),
    path("inventory/", inventory.inventory_page, name="inventory"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token-revoke"),
    path("projects/", RedirectView.as_view(pattern_name="frontend:project-list")),
    path("projects/new/", projects.project_create, name="project-create"),
    path(PROJECT, pages.project_detail, name="project-detail"),
    path(f"{PROJECT}settings/", projects.project_settings, name="project-settings"),
    path(f"{PROJECT}settings/template/", projects.project_template, name="project-template"),
    path(f"{PROJECT}members/", projects.members, name="members"),
    path(f"{PROJECT}notifications/", projects.notifications, name="notifications"),
    path(f"{PROJECT}mlflow/", projects.mlflow_sync, name="mlflow-sync"),
    path(f"{PROJECT}members/<int:pk>/remove/", projects.member_remove, name="member-remove"),
    path(
        f"{PROJECT}tokens/<int:pk>/revoke/",
        projects.project_token_revoke,
        name="project-token-revoke",
    ),
    path(f"{PROJECT}activity/", projects.activity_log, name="activity"),
    path(f"{PROJECT}records/", projects.records, name="records"),
    path(f"{PROJECT}runs/compare/", runs.runs_compare, name="runs-compare"),
    path(f"{PROJECT}runs/<int:pk>/", runs.run_detail, name="run"),
    path(f"{PROJECT}runs/", records.runs, name="runs"),
    path(f"{PROJECT}deployments/<int:pk>/", records.deployment_detail, name="deployment"),
    path(
        f"{PROJECT}model-versions/<text:version>/",
        records.model_version_detail,
        name="model-version",
    ),
    path(f"{PROJECT}validations/", validations.validations, name="validations"),
    path(f"{PROJECT}validations/new/", validations.validation_create, name="validation-create"),
    path(
        f"{PROJECT}validations/<int:number>/",
        validations.validation_detail,
        name="validation",
    ),
    path(
        f"{PROJECT}validations/<int:number>/conclusion/",
        validations.validation_conclude,
        name="validation-conclude",
    ),
    path(
        f"{PROJECT}validations/<int:number>/findings/new/",
        validations.finding_create,
        name="finding-create",
    ),
    path(f"{PROJECT}findings/<int:number>/", validations.finding_detail, name="finding"),
    path(
        f"{PROJECT}findings/<int:number>/change/",
        validations.finding_change,
        name="finding-change",
    ),
    path(
        f"{PROJECT}findings/<int:number>/comments/",
        validations.finding_comment,
        name="finding-comment",
    ),
    path(f"{PROJECT}audit/verify/", projects.audit_verify, name="audit-verify"),
    path(f"{PROJECT}exports/", exports.exports, name="exports"),
    path(f"{PROJECT}exports/<int:pk>/download/", exports.export_download, name="export-download"),
    path(f"{PROJECT}pages/", pages.page_list, name="page-list"),
    path(f"{PROJECT}pages/new/", pages.page_create, name="page-create"),
    path(PAGE, pages.page_detail, name="page"),
    path(f"{PAGE}edit/", pages.page_edit, name="page-edit"),
    path(f"{PAGE}preview/", pages.page_preview, name="page-preview"),
    path(f"{PAGE}history/", pages.page_history, name="page-history"),
    path(f"{PAGE}compare/", pages.revision_compare, name="page-compare"),
    path(f"{PAGE}revisions/<int:number>/", pages.revision_detail, name="revision"),
    path(
        f"{PAGE}revisions/<int:number>/restore/",
        pages.revision_restore,
        name="revision-restore",
    ),
    path(f"{PAGE}review/", pages.page_submit, name="page-submit"),
    path(f"{PAGE}approve/", pages.page_approve, name="page-approve"),
    # Attachments of pages, training runs, deployments and model versions:
    # .../<page>/attachments/<name>, .../runs/<id>/attachments/<name>, ...
    *attachments.urlpatterns(PROJECT),
]
