from django.urls import path
from django.views.generic import RedirectView

from frontend import views

app_name = "frontend"

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("projects/", RedirectView.as_view(pattern_name="frontend:project-list")),
    path("projects/new/", views.project_create, name="project-create"),
    path("projects/<slug:project>/", views.project_detail, name="project-detail"),
    path("projects/<slug:project>/settings/", views.project_settings, name="project-settings"),
    path("projects/<slug:project>/records/", views.records, name="records"),
    path("projects/<slug:project>/pages/", views.page_list, name="page-list"),
    path("projects/<slug:project>/pages/new/", views.page_create, name="page-create"),
    path("projects/<slug:project>/<slug:page>/", views.page_detail, name="page"),
    path("projects/<slug:project>/<slug:page>/edit/", views.page_edit, name="page-edit"),
    path("projects/<slug:project>/<slug:page>/history/", views.page_history, name="page-history"),
]
