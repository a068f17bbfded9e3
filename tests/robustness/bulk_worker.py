"""A worker process for test_faults: runs a bulk upsert into the database named by
DATABASE_URL and stops inside its transaction, after every row is written and before
the commit, until it is killed. Run as `python -m tests.robustness.bulk_worker PROJECT USER COUNT`."""

from __future__ import annotations

import os
import sys
import time


def main(project_slug: str, username: str, count: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "storyhub.settings.test")
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from stories.bulk import story_bulk_upsert
    from stories.models import Project

    project = Project.objects.get(slug=project_slug)
    actor = get_user_model().objects.get(username=username)
    items = [{"key": f"KILL-{n:04d}", "title": f"Written by a worker that dies {n}"} for n in range(count)]
    # Existing stories are changed too (through the services), so both paths are open.
    items += [{"key": key, "title": "Changed by the dying worker", "status": "ready"} for key in sys.argv[4:]]

    def progress(done: int, total: int) -> None:
        print(f"progress {done}/{total}", flush=True)
        if done >= total:
            time.sleep(60)  # everything is written, nothing committed: the test kills us here

    story_bulk_upsert(actor=actor, project=project, items=items, progress=progress)
    print("finished", flush=True)  # never reached when the test works


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
