"""Import / export endpoints (stories.api.io_views), included under /api/v1/."""

from django.urls import path

from . import io_views, sync_views

urlpatterns = [
    path("projects/<str:slug>/import/", io_views.ProjectImportView.as_view(), name="project-import"),
    path("projects/<str:slug>/sync/", sync_views.ProjectSyncView.as_view(), name="project-sync"),
    path("projects/<str:slug>/export/", io_views.ProjectExportView.as_view(), name="project-export"),
    *(
        path(f"projects/<str:slug>/export/{fmt}/", view.as_view(), name=f"project-export-{fmt}")
        for fmt, view in io_views.EXPORT_VIEWS.items()
    ),
]
