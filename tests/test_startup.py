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


def _run(args: list[str]) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(DJANGO_SETTINGS_MODULE="storyhub.settings.local", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout


# What the collector did during start-up, read by the command itself: full (generation 2)
# passes so far, whether it is on, and how many objects start-up left frozen.
GC_STATE = "import gc; print(gc.get_stats()[2]['collections'], gc.isenabled(), gc.get_freeze_count())"


def test_a_manage_command_starts_with_the_collector_paused_then_frozen():
    # storyhub/startup.py: paused by manage.py until the apps are loaded, then what start-up
    # allocated is frozen and the collector is on again for the command's own work.
    full_passes, enabled, frozen = _run(["manage.py", "shell", "--no-imports", "-c", GC_STATE]).split()
    assert full_passes == "0"  # without the pause: one or two before the command runs
    assert enabled == "True"
    assert int(frozen) > 50_000  # ~110,000 objects: the apps, models, admin modules


def test_the_wsgi_module_leaves_the_urlconf_frozen_and_the_collector_on():
    # gunicorn's master imports it (preload_app) and forks: the view modules the URLconf
    # loaded must be frozen too, so a worker's collections do not walk (and write to) them.
    script = (
        "import gc, sys\n"
        "import storyhub.wsgi\n"
        "views = sys.modules['stories.api.views'].__dict__\n"
        "print(any(o is views for o in gc.get_objects()))\n"
        f"{GC_STATE}\n"
    )
    views_still_collected, full_passes, enabled, frozen = _run(["-c", script]).split()
    assert views_still_collected == "False"
    assert full_passes == "0"
    assert enabled == "True"
    assert int(frozen) > 50_000
