"""Top-level URLs: the admin, health endpoints, and (in later modules) the API."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.module_loading import import_string

from mcp_app.http import McpView, protected_resource_metadata

from . import health


def lazy_view(dotted: str, **initkwargs):
    """A class-based view imported on its first request, not at start-up: the schema views
    pull in drf_spectacular's generator (with django.test and jinja2), ~0.2 s that every
    `manage.py` command would pay while loading the URLs for its checks."""
    view = None

    def proxy(request, *args, **kwargs):
        nonlocal view
        if view is None:
            view = import_string(dotted).as_view(**initkwargs)
        return view(request, *args, **kwargs)

    proxy.csrf_exempt = True  # as DRF's as_view() marks its views (these only answer GET)
    return proxy


admin.site.site_header = "StoryHub administration"
admin.site.site_title = "StoryHub"
admin.site.index_title = "StoryHub"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("stories.api.urls")),
    path("api/v1/", include("events.api.urls")),
    path("api/schema/", lazy_view("stories.api.schema_view.SchemaView"), name="api-schema"),
    path(
        "api/docs/", lazy_view("drf_spectacular.views.SpectacularSwaggerView", url_name="api-schema"), name="api-docs"
    ),
    # The MCP server (mcp_app): streamable HTTP, and its RFC 9728 metadata (also at the root).
    path("mcp", McpView.as_view(), name="mcp"),
    path(".well-known/oauth-protected-resource/mcp", protected_resource_metadata, name="mcp-resource-metadata"),
    path(".well-known/oauth-protected-resource", protected_resource_metadata),
]

handler404 = "stories.api.exceptions.api_not_found"
handler500 = "storyhub.middleware.server_error"  # database failures outside views → 503

if settings.STORYHUB_BENCH_VIEWS:  # reference views for `make bench` only
    urlpatterns.append(path("bench/", include("bench.urls")))
