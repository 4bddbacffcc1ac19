"""The browsable API documentation (Swagger UI, served from the app's own static files)."""

from django.templatetags.static import static
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularSwaggerSplitView

from wiki.middleware import content_security_policy

# Swagger UI sets inline styles and uses data: icons; nothing else is relaxed.
DOCS_CSP = content_security_policy(
    img_src="'self' https: data:", style_src="'self' 'unsafe-inline'"
)


class ApiDocs(SpectacularSwaggerSplitView):
    # Swagger UI's page with a bar leading back to the wiki, and the wiki's icon.
    template_name = "frontend/api_docs.html"

    @extend_schema(exclude=True)
    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        if "favicon_href" in response.data:  # the page, not its script (?script=)
            response.data["favicon_href"] = static("frontend/favicon.svg")
        response["Content-Security-Policy"] = DOCS_CSP
        return response
