from tests.admin.conftest import staff_client, su_client, superuser  # noqa: F401
