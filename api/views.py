"""REST API views (read-only for now; writes arrive with the pipeline API)."""

from django.contrib.auth.decorators import login_not_required
from rest_framework import generics

from api.serializers import ProjectSerializer
from wiki.models import Project


class ApiViewMixin:
    @classmethod
    def as_view(cls, **initkwargs):
        # The API authenticates requests itself and answers in JSON (401/403), so the
        # browser-oriented LoginRequiredMiddleware must not redirect them to a login page.
        return login_not_required(super().as_view(**initkwargs))


class ProjectList(ApiViewMixin, generics.ListAPIView):
    queryset = Project.objects.order_by("slug")
    serializer_class = ProjectSerializer


class ProjectDetail(ApiViewMixin, generics.RetrieveAPIView):
    queryset = Project.objects.all()
    serializer_class = ProjectSerializer
    lookup_field = "slug"
