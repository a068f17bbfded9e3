"""StoryHub's admin site replaces Django's default one (INSTALLED_APPS lists this config
instead of "django.contrib.admin"), so `admin.site` is storyhub.admin_site.StoryHubAdminSite."""

from django.contrib.admin.apps import AdminConfig

from storyhub import startup


class StoryHubAdminConfig(AdminConfig):
    default_site = "storyhub.admin_site.StoryHubAdminSite"

    def ready(self) -> None:
        super().ready()  # imports every app's admin module, start-up's last big import
        # The apps after this one in INSTALLED_APPS have a few ms of ready() left: start-up
        # is done, so the collector comes back on (if manage.py or wsgi.py paused it).
        startup.resume()
