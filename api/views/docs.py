"""The browsable API documentation (Swagger UI, served from the app's own static files)."""

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView

from wiki.middleware import content_security_policy

# Swagger UI sets inline styles and uses data: icons; nothing else is relaxed.
DOCS_CSP = content_security_policy(
    img_src="'self' https: data:", style_src="'self' 'unsafe-inline'"
)


class ApiDocs(SpectacularSwaggerSplitView):
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response
