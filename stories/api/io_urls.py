"""Import / export endpoints (filled in by the importer module)."""

urlpatterns: list = []
