"""The git sync as a background job on Django's tasks API (django-tasks, database backend;
README "Git sync"): `sync_projects --enqueue` queues one `sync_project_task` per linked
project on the `default` queue, and any `manage.py db_worker --queue-name default` runs
them. The `--watch` loop stays the periodic job; this is for hosts that already run a
tasks worker and would rather schedule syncs there (e.g. from cron)."""

from __future__ import annotations

from django_tasks import task

QUEUE = "default"


@task(queue_name=QUEUE)
def sync_project_task(project_id: int) -> dict:
    """Sync one project with its repository, as the system; the report as JSON."""
    from ..models import Project
    from .engine import sync_project

    project = Project.objects.get(pk=project_id)
    return sync_project(actor=None, project=project).as_dict()
