"""Import / export endpoints (stories.api.io_views, sync_views) and the import report
(stories.api.import_views), included under /api/v1/."""

from django.urls import path

from . import import_views, io_views, sync_views

P = "projects/<str:slug>/"
RUN = P + "imports/<int:run_id>/"
CONFLICT = P + "import-conflicts/<int:conflict_id>/"

urlpatterns = [
    path("projects/<str:slug>/import/", io_views.ProjectImportView.as_view(), name="project-import"),
    path(P + "imports/", import_views.ImportRunListView.as_view(), name="import-run-list"),
    path(RUN, import_views.ImportRunDetailView.as_view(), name="import-run-detail"),
    path(RUN + "files/", import_views.ImportFileListView.as_view(), name="import-file-list"),
    path(RUN + "files/<int:file_id>/", import_views.ImportFileDetailView.as_view(), name="import-file-detail"),
    path(P + "import-conflicts/", import_views.ImportConflictListView.as_view(), name="import-conflict-list"),
    path(CONFLICT, import_views.ImportConflictDetailView.as_view(), name="import-conflict-detail"),
    path(CONFLICT + "resolve/", import_views.ImportConflictResolveView.as_view(), name="import-conflict-resolve"),
    path("projects/<str:slug>/sync/", sync_views.ProjectSyncView.as_view(), name="project-sync"),
    path("projects/<str:slug>/export/", io_views.ProjectExportView.as_view(), name="project-export"),
    *(
        path(f"projects/<str:slug>/export/{fmt}/", view.as_view(), name=f"project-export-{fmt}")
        for fmt, view in io_views.EXPORT_VIEWS.items()
    ),
]
