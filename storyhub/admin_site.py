"""The admin site: StoryHub's branding, and autocomplete results labelled by the model
admin (`autocomplete_label`), so that e.g. stories of different projects with the same
key can be told apart when linking across projects."""

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

    def autocomplete_view(self, request):
        return LabelledAutocompleteJsonView.as_view(admin_site=self)(request)
