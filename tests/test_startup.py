"""Start-up stays cheap: a `manage.py` command (which loads the apps, the admin modules and,
for its checks, every URL module) must not import the heavy libraries that only some
requests need. Import them inside the function or view that uses them (see README
"Start-up"); `make bench` reports the time itself as `manage_startup_s`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Module prefixes and why they wait for their first use. Measured alone on the 2-core
# machine: mcp 1.0 s (pydantic, starlette, httpx, anyio), drf_spectacular's generator and
# views 0.2-0.4 s, dulwich 0.1 s. (ruamel.yaml, 0.04 s, is imported by stories.filestyle: cheap
# enough.)
HEAVY = {
    "mcp": "the MCP SDK: import it in the /mcp view",
    "pydantic": "pulled in by the MCP SDK",
    "starlette": "pulled in by the MCP SDK",
    "httpx": "pulled in by the MCP SDK",
    "dulwich": "git sync: import it in the sync task",
    "cryptography": "webhook secrets' Fernet: events.signing imports it when it encrypts or decrypts",
    "drf_spectacular.generators": "the schema generator: storyhub.urls routes its views lazily",
    "drf_spectacular.views": "the schema views: storyhub.urls routes them lazily",
}


def test_a_manage_command_imports_no_heavy_library():
    script = (
        "import sys, django\n"
        "django.setup()\n"
        # What `manage.py check` loads on top of the apps: every URL module.
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DJANGO_SETTINGS_MODULE="storyhub.settings.local", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    loaded = {
        f"{name} ({why})"
        for name in out
        for prefix, why in HEAVY.items()
        if name == prefix or name.startswith(prefix + ".")
    }
    assert sorted(loaded) == [], "imported at start-up; move the import into the code that needs it"


def test_the_schema_is_still_served_through_the_lazy_route(client):
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")
    assert client.get("/api/docs/").status_code == 200
