"""StoryHub's admin site replaces Django's default one (INSTALLED_APPS lists this config
instead of "django.contrib.admin"), so `admin.site` is storyhub.admin_site.StoryHubAdminSite."""

from django.contrib.admin.apps import AdminConfig


class StoryHubAdminConfig(AdminConfig):
    default_site = "storyhub.admin_site.StoryHubAdminSite"
