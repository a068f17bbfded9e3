"""`POST projects/{slug}/sync/`: sync the project with its linked git repository now
(project admins). Thin: the work is in stories.sync (imported when a sync runs, so
dulwich stays out of start-up)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from stories.models import SyncLink
from storyhub.errors import NotFoundError, SyncFailedError

from .permissions import get_project_for, require_role


class SyncFailedSerializer(serializers.Serializer):
    path = serializers.CharField()
    reason = serializers.CharField()


class SyncReportSerializer(serializers.Serializer):
    project = serializers.CharField()
    commit = serializers.CharField(help_text="the remote branch's head after the sync")
    pushed_commit = serializers.CharField(help_text="the commit StoryHub pushed (empty: none)")
    imported = serializers.ListField(child=serializers.CharField(), help_text="paths imported from git")
    failed = SyncFailedSerializer(many=True)
    archived = serializers.ListField(child=serializers.CharField(), help_text="keys of stories whose file git deleted")
    pushed = serializers.ListField(child=serializers.CharField(), help_text="paths written to git")
    removed = serializers.ListField(child=serializers.CharField(), help_text="paths removed from git")
    conflicts = serializers.ListField(child=serializers.CharField(), help_text="paths changed on both sides")


class ProjectSyncView(APIView):
    @extend_schema(
        request=None,
        responses={
            200: SyncReportSerializer,
            404: OpenApiResponse(description="No such project, or it is not linked to a repository."),
            502: OpenApiResponse(description="The repository could not be reached or updated (`sync_failed`)."),
        },
    )
    def post(self, request, slug):
        project = get_project_for(request, slug)
        require_role(request, project, "admin")
        if not SyncLink.objects.filter(project=project).exists():
            message = f"Project '{project.slug}' is not linked to a git repository."
            raise NotFoundError(message, details={"sync": [message]})
        from stories.sync.engine import sync_project
        from stories.sync.gitrepo import GitSyncError

        try:
            report = sync_project(actor=request.user, project=project)
        except GitSyncError as exc:
            raise SyncFailedError(str(exc)) from None
        return Response(report.as_dict())
