"""Top-level URLs: the admin, health endpoints, and (in later modules) the API."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerView

from stories.api.schema_view import SchemaView

from . import health

admin.site.site_header = "StoryHub administration"
admin.site.site_title = "StoryHub"
admin.site.index_title = "StoryHub"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("stories.api.urls")),
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "stories.api.exceptions.api_not_found"
handler500 = "storyhub.middleware.server_error"  # database failures outside views → 503

if settings.STORYHUB_BENCH_VIEWS:  # reference views for `make bench` only
    urlpatterns.append(path("bench/", include("bench.urls")))
