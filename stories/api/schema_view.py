"""The view serving the OpenAPI schema (apart from stories.api.schema, which DRF's
settings import before drf_spectacular.views can be)."""

from __future__ import annotations

from drf_spectacular.views import SpectacularAPIView
from rest_framework.negotiation import DefaultContentNegotiation


class _FormatQueryNegotiation(DefaultContentNegotiation):
    """`?format=json|yaml` picks the schema's rendering (the API itself keeps `format`
    for its own parameter, so URL_FORMAT_OVERRIDE is off project-wide)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        fmt = format_suffix or request.query_params.get("format")
        if fmt:
            for renderer in renderers:
                if renderer.format == fmt:
                    return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema: YAML by default; JSON with `?format=json` or
    `Accept: application/json` (or application/vnd.oai.openapi+json)."""

    content_negotiation_class = _FormatQueryNegotiation
