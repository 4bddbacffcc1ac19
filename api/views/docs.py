"""The browsable API documentation (Swagger UI, served from the app's own static files)."""

from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView

from wiki.middleware import CONTENT_SECURITY_POLICY

# Swagger UI sets inline styles and uses data: icons; nothing else is relaxed.
DOCS_CSP = CONTENT_SECURITY_POLICY.replace("img-src 'self' https:", "img-src 'self' https: data:")
DOCS_CSP += "; style-src 'self' 'unsafe-inline'"


class ApiDocs(SpectacularSwaggerSplitView):
    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = DOCS_CSP
        return response
