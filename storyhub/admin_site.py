"""The admin site: StoryHub's branding, autocomplete results labelled by the model
admin (`autocomplete_label`), so that e.g. stories of different projects with the same
key can be told apart when linking across projects, and the login lockout page."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.autocomplete import AutocompleteJsonView


class LabelledAutocompleteJsonView(AutocompleteJsonView):
    def serialize_result(self, obj, to_field_name):
        result = super().serialize_result(obj, to_field_name)
        label = getattr(self.model_admin, "autocomplete_label", None)
        if label is not None:
            result["text"] = label(obj)
        return result


class StoryHubAdminSite(admin.AdminSite):
    site_header = "StoryHub administration"
    site_title = "StoryHub"
    index_title = "StoryHub"
    # There is no public site to "view" at / (the API lives under /api/).
    site_url = None

    def index(self, request, extra_context=None):
        # The front page is a dashboard of the projects the user can see.
        from stories.admin_dashboard import dashboard

        return super().index(request, extra_context={**dashboard(user=request.user), **(extra_context or {})})

    def autocomplete_view(self, request):
        return LabelledAutocompleteJsonView.as_view(admin_site=self)(request)


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' answer to a login from a locked-out username and address
    (AXES_LOCKOUT_CALLABLE): the admin's own page, 429, saying for how long and how an
    administrator unlocks it sooner."""
    from django.conf import settings
    from django.shortcuts import render

    cooloff = settings.AXES_COOLOFF_TIME
    seconds = int(cooloff.total_seconds()) if cooloff else None
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed logins",
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": seconds // 60 if seconds else None,
    }
    response = render(request, "admin/lockout.html", context, status=429)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
