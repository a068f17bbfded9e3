"""/api/v1/ routes."""

from django.urls import include, path

from audit.api.views import AuditListView
from sessions_app.api.views import SessionDetailView, SessionListView

from . import actions, project_views, report_views, views

P = "projects/<str:slug>/"
S = P + "stories/<str:key>/"

urlpatterns = [
    path("projects/", views.ProjectListView.as_view(), name="project-list"),
    path(P, views.ProjectDetailView.as_view(), name="project-detail"),
    path(P + "backlogs/", project_views.BacklogListView.as_view(), name="backlog-list"),
    path(P + "backlogs/<str:item>/", project_views.BacklogDetailView.as_view(), name="backlog-detail"),
    path(P + "statuses/", project_views.StatusListView.as_view(), name="status-list"),
    path(P + "statuses/<str:item>/", project_views.StatusDetailView.as_view(), name="status-detail"),
    path(P + "epics/", project_views.EpicListView.as_view(), name="epic-list"),
    path(P + "epics/<str:item>/", project_views.EpicDetailView.as_view(), name="epic-detail"),
    path(P + "members/", project_views.MemberListView.as_view(), name="member-list"),
    path(P + "members/<str:username>/", project_views.MemberDetailView.as_view(), name="member-detail"),
    path(P + "ready/", actions.ProjectReadyView.as_view(), name="project-ready"),
    path(P + "graph/", actions.ProjectGraphView.as_view(), name="project-graph"),
    path(P + "graph/dot/", actions.ProjectGraphDotView.as_view(), name="project-graph-dot"),
    path(P + "graph/mermaid/", actions.ProjectGraphMermaidView.as_view(), name="project-graph-mermaid"),
    path(P + "graph/topological/", actions.ProjectTopologicalView.as_view(), name="project-topological"),
    path(P + "graph/critical-path/", actions.ProjectCriticalPathView.as_view(), name="project-critical-path"),
    path(P + "stories/", views.ProjectStoryListView.as_view(), name="story-list"),
    path(P + "stories/bulk/", actions.StoryBulkView.as_view(), name="story-bulk"),
    path(S, views.StoryDetailView.as_view(), name="story-detail"),
    path(S + "transition/", views.StoryTransitionView.as_view(), name="story-transition"),
    path(S + "move/", actions.StoryMoveView.as_view(), name="story-move"),
    path(S + "rank/", actions.StoryRankView.as_view(), name="story-rank"),
    path(S + "dependencies/", actions.StoryDependencyListView.as_view(), name="story-dependencies"),
    path(S + "dependencies/<int:dep_id>/", actions.StoryDependencyDetailView.as_view(), name="story-dependency-detail"),
    path(S + "history/", actions.StoryHistoryView.as_view(), name="story-history"),
    path(S + "blockers/", actions.StoryBlockersView.as_view(), name="story-blockers"),
    path(S + "dependents/", actions.StoryDependentsView.as_view(), name="story-dependents"),
    path("stories/", views.StorySearchView.as_view(), name="story-search"),
    path("project-dependencies/", project_views.ProjectDependencyListView.as_view(), name="project-dependency-list"),
    path(
        "project-dependencies/<int:pk>/",
        project_views.ProjectDependencyDetailView.as_view(),
        name="project-dependency-detail",
    ),
    path("audit/", AuditListView.as_view(), name="audit-list"),
    path("sessions/", SessionListView.as_view(), name="session-list"),
    path("sessions/<str:sid_prefix>/", SessionDetailView.as_view(), name="session-detail"),
    *(
        path(f"{P}reports/{name}/", view.as_view(), name=f"project-report-{name}")
        for name, view in report_views.REPORT_VIEWS.items()
    ),
    *(
        path(f"{P}reports/{name}/csv/", view.as_view(), name=f"project-report-{name}-csv")
        for name, view in report_views.CSV_VIEWS.items()
    ),
    *(
        path(f"{P}reports/{name}/<str:backlog>/", view.as_view(), name=f"project-report-{name}")
        for name, view in report_views.SPRINT_VIEWS.items()
    ),
    *(
        path(f"{P}reports/{name}/<str:backlog>/csv/", view.as_view(), name=f"project-report-{name}-csv")
        for name, view in report_views.SPRINT_CSV_VIEWS.items()
    ),
    path("", include("stories.api.io_urls")),
]
