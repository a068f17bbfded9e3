"""dependency_remove on a link that is gone already: NotFoundError, no second audit row
(the concurrent case, two DELETEs at once, is in tests/robustness/test_bulk_races.py)."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from stories import services
from stories.models import StoryDependency
from storyhub.errors import NotFoundError

pytestmark = pytest.mark.django_db


def test_removing_a_dependency_twice_is_not_found_and_audited_once(owner, make_story):
    dep = services.dependency_add(actor=owner, story=make_story("RM-1"), depends_on=make_story("RM-2"))
    stale = StoryDependency.objects.select_related("story__project", "depends_on__project").get(pk=dep.pk)
    services.dependency_remove(actor=owner, dependency=dep)
    with pytest.raises(NotFoundError):
        services.dependency_remove(actor=owner, dependency=stale)
    assert not StoryDependency.objects.filter(pk=dep.pk).exists()
    assert AuditLog.objects.filter(action="dependency.removed", entity_id=str(dep.pk)).count() == 1
