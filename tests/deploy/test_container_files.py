"""docker-compose.yml, Dockerfile, the entrypoint and gunicorn.conf.py say what the
deployment needs (checked statically: there is no Docker engine on CI)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from tests.deploy.helpers import ROOT, clean_env


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_db_and_web_with_healthchecks_volume_and_ordering():
    doc = compose()
    assert "version" not in doc  # obsolete in the Compose specification
    assert set(doc["services"]) == {"db", "web", "worker", "sync"}
    sync = doc["services"]["sync"]  # the periodic git sync: the same image, after web migrated
    assert sync["image"] == doc["services"]["web"]["image"] and sync["env_file"] == ".env"
    assert sync["command"][:4] == ["python", "manage.py", "sync_projects", "--watch"]
    assert sync["depends_on"] == {"web": {"condition": "service_healthy"}}
    db, web = doc["services"]["db"], doc["services"]["web"]

    assert db["image"] == "postgres:15-alpine"
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} <= set(db["environment"])
    assert all("${" in str(db["environment"][k]) for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"))
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    volume = db["volumes"][0].split(":")
    assert volume == ["postgres_data", "/var/lib/postgresql/data"]
    assert "postgres_data" in doc["volumes"]
    assert db["restart"] == "unless-stopped"

    assert web["build"]["dockerfile"] == "Dockerfile"
    assert web["env_file"] == ".env"
    assert web["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert any(str(p).endswith(":8000") for p in web["ports"])
    assert web["healthcheck"]["test"] == ["CMD", "python", "manage.py", "healthcheck"]
    assert web["restart"] == "unless-stopped"
    assert web["environment"]["DB_HOST"] == "db"
    # The web service uses the same credentials the db service was created with.
    for ours, theirs in (
        ("DB_USER", "POSTGRES_USER"),
        ("DB_PASSWORD", "POSTGRES_PASSWORD"),
        ("DB_NAME", "POSTGRES_DB"),
    ):
        assert web["environment"][ours] == db["environment"][theirs]


def test_compose_runs_the_events_worker_from_the_web_image():
    doc = compose()
    web, worker = doc["services"]["web"], doc["services"]["worker"]
    assert worker["image"] == web["image"] and worker["env_file"] == ".env"
    assert worker["command"] == ["python", "manage.py", "events_worker"]
    assert worker["depends_on"]["web"] == {"condition": "service_healthy"}  # migrated by then
    assert worker["environment"]["DJANGO_MIGRATE"] == "false"
    assert {k: v for k, v in worker["environment"].items() if k != "DJANGO_MIGRATE"} == web_env_without_bind(web)
    assert worker["restart"] == "unless-stopped"


def web_env_without_bind(web: dict) -> dict:
    return {k: v for k, v in web["environment"].items() if k != "GUNICORN_BIND"}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_is_slim_non_root_with_healthcheck_and_entrypoint():
    steps = dockerfile_instructions()
    kinds = [kind for kind, _ in steps]
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", steps[0][1]), steps[0]
    users = [arg for kind, arg in steps if kind == "USER"]
    assert users and users[-1] not in ("root", "0")
    healthcheck = next(arg for kind, arg in steps if kind == "HEALTHCHECK")
    assert "manage.py" in healthcheck and "healthcheck" in healthcheck
    assert next(arg for kind, arg in steps if kind == "ENTRYPOINT") == '["./docker-entrypoint.sh"]'
    # Dependencies get their own layer: requirements are copied and installed before the code.
    copy_reqs = steps.index(("COPY", "requirements.txt ."))
    install = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "pip install -r requirements.txt" in a)
    copy_all = steps.index(("COPY", ". ."))
    assert copy_reqs < install < copy_all
    collect = next(i for i, (k, a) in enumerate(steps) if k == "RUN" and "collectstatic" in a)
    assert copy_all < collect and "DJANGO_SECRET_KEY=" in steps[collect][1]
    assert kinds.index("USER") > collect  # built as root, run as the unprivileged user
    assert "postgresql-client" in " ".join(a for k, a in steps if k == "RUN")  # pg_dump for backups


def dockerignored(path: str) -> bool:
    """Roughly Docker's rule: the last matching pattern wins, `!` re-includes."""
    import fnmatch

    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").removeprefix("**/")
        parts = path.split("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)] + parts
        if any(fnmatch.fnmatch(candidate, pattern) for candidate in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_secrets_and_local_state_out_but_not_the_app():
    for path in (".env", ".venv/bin/python", ".git/HEAD", "db.sqlite3", "db.sqlite3-wal", "staticfiles/x.css"):
        assert dockerignored(path), path
    assert not dockerignored(".env.example")
    needed = ["manage.py", "requirements.txt", "gunicorn.conf.py", "docker-entrypoint.sh", "scripts/wait_for_db.py"]
    needed += [
        str(p.relative_to(ROOT))
        for app in ("storyhub", "stories", "audit", "sessions_app")
        for p in (ROOT / app).rglob("*.py")
    ]
    needed += [str(p.relative_to(ROOT)) for p in (ROOT / "templates").rglob("*") if p.is_file()]
    assert [path for path in needed if dockerignored(path)] == []


def test_entrypoint_is_executable_and_execs_gunicorn_after_migrate():
    script = ROOT / "docker-entrypoint.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.index("wait_for_db.py") < text.index("migrate --noinput") < text.index('exec "$PYTHON" -m gunicorn')
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True, timeout=10)
    assert result.returncode == 0, result.stderr


def test_gunicorn_config_reads_the_environment():
    code = (
        "import runpy, json; c = runpy.run_path('gunicorn.conf.py');"
        "print(json.dumps({k: c.get(k) for k in ('bind', 'workers', 'threads', 'worker_class', 'timeout',"
        " 'graceful_timeout', 'forwarded_allow_ips', 'accesslog', 'control_socket_disable')}))"
    )
    env = clean_env(
        GUNICORN_BIND="127.0.0.1:9123",
        GUNICORN_WORKERS="3",
        GUNICORN_THREADS="4",
        GUNICORN_TIMEOUT="45",
        GUNICORN_GRACEFUL_TIMEOUT="12",
        GUNICORN_FORWARDED_ALLOW_IPS="10.0.0.5",
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    import json

    config = json.loads(result.stdout)
    assert config == {
        "bind": ["127.0.0.1:9123"],
        "workers": 3,
        "threads": 4,
        "worker_class": "gthread",
        "timeout": 45,
        "graceful_timeout": 12,
        "forwarded_allow_ips": "10.0.0.5",
        "accesslog": "-",
        "control_socket_disable": True,
    }
    defaults = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, text=True)
    config = json.loads(defaults.stdout)
    assert config["bind"] == ["0.0.0.0:8000"] and config["forwarded_allow_ips"] == "127.0.0.1,::1"
    assert 1 <= config["workers"] <= 8


def test_env_example_documents_every_variable_the_deployment_reads():
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    sources = [
        "gunicorn.conf.py",
        "docker-entrypoint.sh",
        "storyhub/settings/production.py",
        "storyhub/settings/base.py",
    ]
    read = set()
    for name in sources:
        text = (ROOT / name).read_text()
        read |= set(re.findall(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)""", text))
        read |= set(re.findall(r"""_int\(\s*["']([A-Z][A-Z0-9_]+)""", text))
        read |= set(re.findall(r"""os\.environ\.get\(\s*["']([A-Z][A-Z0-9_]+)""", text))
        read |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    read |= set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker-compose.yml").read_text()))
    assert {"GUNICORN_BIND", "DJANGO_SECRET_KEY", "DB_PASSWORD", "DJANGO_SECURE_SSL_REDIRECT"} <= read
    assert read - documented == set()
