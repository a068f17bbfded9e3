"""schemathesis against the OpenAPI schema of a live test server.

Authenticated as a project member with an API key; a second user (member of another
project only) is the peer for the object-level authorization check, so the run fails when
one user can read the other's objects. A third project, visible to neither, is linked to
both (`blocks` and `relates` links both ways, a project dependency) and carries MARKER in
every name: no response of the run may contain it. `--checks all`: zero 5xx, zero
responses outside the schema. `make test` runs a small budget; `make fuzz` sets FUZZ_MAX_EXAMPLES /
FUZZ_MAX_SECONDS higher. FUZZ_OUTPUT=FILE keeps schemathesis' report, FUZZ_HAR=FILE every
request and response."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sessions_app.backends import SessionStore
from stories import services
from stories.models import Story
from tests.factories import (
    BacklogFactory,
    DependencyFactory,
    EpicFactory,
    MemberFactory,
    ProjectFactory,
    StoryFactory,
    UserFactory,
)

MARKER = "zqxfuzzhidden"
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "8"))
MAX_SECONDS = int(os.environ.get("FUZZ_MAX_SECONDS", "60"))

pytestmark = pytest.mark.django_db(transaction=True)


def _key(user) -> str:
    from sessions_app.services import api_key_create

    _, plaintext = api_key_create(actor=None, user=user, name="fuzz")
    return plaintext


def _dictionaries(values_by_path_parameter: dict[str, list]) -> str:
    """schemathesis config: draw each path parameter from its values 70 % of the time."""
    out = []
    for name, values in values_by_path_parameter.items():
        out.append(f"\n[dictionaries.{name}]\nvalues = {json.dumps(values)}\n")
    out.append("\n[parameters]\n")
    for name in values_by_path_parameter:
        out.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.7 }}\n')
    return "".join(out)


def test_api_conforms_to_its_schema_under_fuzzing(live_server, tmp_path: Path):
    alice, bob = UserFactory(username="fuzz-alice"), UserFactory(username="fuzz-bob")
    mine = ProjectFactory(actor=alice, slug="fuzz-mine")
    theirs = ProjectFactory(actor=bob, slug="fuzz-theirs")
    MemberFactory(project=mine, user=UserFactory(username="fuzz-carol"), role="member")
    for i in range(3):
        StoryFactory(project=mine, key=f"FZA-{i + 1:03d}")
        StoryFactory(project=theirs, key=f"FZB-{i + 1:03d}")
    BacklogFactory(project=mine, slug="sprint-1", actor=alice)
    EpicFactory(project=mine, slug="core", actor=alice)
    link = DependencyFactory(
        story=Story.objects.get(project=mine, key="FZA-002"),
        depends_on=Story.objects.get(project=mine, key="FZA-001"),
        actor=alice,
    )
    hidden_keys = _hidden_project_linked_to(mine, theirs)
    session = SessionStore()
    session["_auth_user_id"] = str(alice.pk)
    session.create()

    wfc = tmp_path / "auth.json"
    wfc.write_text(
        json.dumps(
            {
                "auth": [
                    {"name": "alice", "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {_key(alice)}"}]},
                    {"name": "bob", "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {_key(bob)}"}]},
                ]
            }
        )
    )
    config = tmp_path / "schemathesis.toml"
    # positive_data_acceptance: a schema-valid body can still break a business rule (a
    # story depending on itself, the last owner leaving, an unknown backlog slug): those
    # are honest 400s. 5xx and undocumented statuses/bodies still fail the run.
    config.write_text(
        f'[auth.wfc]\npath = "{wfc}"\nuser = "alice"\npeers = ["alice", "bob"]\n\n'
        "[checks.positive_data_acceptance]\n"
        'expected-statuses = ["2xx", "400", "401", "403", "404", "409", "412", "429"]\n'
        # Real identifiers most of the time, so the fuzzer gets past the 404s into the
        # endpoints' logic; the other project's too, for the authorization checks.
        + _dictionaries(
            {
                "slug": ["fuzz-mine", "fuzz-theirs", f"{MARKER}-p"],
                "key": ["FZA-001", "FZA-002", "FZA-003", "FZB-001", *hidden_keys],
                "item": ["sprint-1", "core", "draft", "ready", "done"],
                "username": ["fuzz-alice", "fuzz-carol", "fuzz-bob"],
                "dep_id": [link.pk],
                "sid_prefix": [session.session_key[:8]],
            }
        )
    )
    cmd = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{live_server.url}/api/schema/",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--seed",
        os.environ.get("FUZZ_SEED", "20261124"),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--wait-for-schema",
        "10",
    ]
    # Every request and response, searched for MARKER below (FUZZ_HAR keeps the file).
    har = Path(os.environ.get("FUZZ_HAR") or tmp_path / "fuzz.har")
    cmd += ["--report", "har", "--report-har-path", str(har)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=MAX_SECONDS + 120, check=False, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    if os.environ.get("FUZZ_OUTPUT"):
        Path(os.environ["FUZZ_OUTPUT"]).write_text(output)
    assert proc.returncode == 0, output[-12000:]
    leaks = _responses_containing(har, MARKER)
    assert not leaks, f"{len(leaks)} fuzz responses show the hidden project, e.g. {leaks[:3]}"


def _hidden_project_linked_to(*projects) -> list[str]:
    """A project of a third user, its names all holding MARKER, linked both ways to a
    story of each of `projects` and depended on by the first. Returns its story keys."""
    dave = UserFactory(username=f"{MARKER}-dave")
    hidden = ProjectFactory(actor=dave, slug=f"{MARKER}-p", name=f"{MARKER} name", description=MARKER)
    services.status_create(actor=dave, project=hidden, slug=f"{MARKER}-st", name=MARKER, category="started")
    BacklogFactory(project=hidden, slug=f"{MARKER}-bl", name=MARKER, actor=dave)
    epic = EpicFactory(project=hidden, slug=f"{MARKER}-ep", name=MARKER, actor=dave)
    up = MARKER.upper()
    first, second = (
        StoryFactory(project=hidden, key=f"{up}-{i}", title=f"{MARKER} {i}", epic=epic, metadata={"m": MARKER})
        for i in (1, 2)
    )
    services.story_transition(actor=dave, story=first, status=f"{MARKER}-st", notes=MARKER)
    for project in projects:
        visible = Story.objects.filter(project=project).order_by("key")
        DependencyFactory(story=visible[0], depends_on=first, actor=None)  # blocks, to the hidden
        DependencyFactory(story=second, depends_on=visible[1], actor=None)  # blocks, from the hidden
        DependencyFactory(story=visible[2], depends_on=second, type="relates", actor=None)
    services.project_dependency_add(actor=None, from_project=projects[0], to_project=hidden)
    return [first.key, second.key]


def _responses_containing(har: Path, marker: str) -> list[str]:
    """`METHOD url → status: context` of every response in the HAR file whose body or
    headers contain `marker` (case-insensitive), beyond repeating what its request sent
    ("No story 'x'." for a sent x is no leak)."""
    import base64

    found = []
    for entry in json.loads(har.read_text())["log"]["entries"]:
        request, response = entry["request"], entry["response"]
        content = response.get("content", {})
        text = content.get("text") or ""
        if content.get("encoding") == "base64":
            text = base64.b64decode(text).decode("utf-8", "replace")
        headers = " ".join(f"{h['name']}: {h['value']}" for h in response.get("headers", []))
        seen = (text + " " + headers).lower()
        for sent in sorted(_sent_strings(request), key=len, reverse=True):
            seen = seen.replace(sent, "<sent>")
        if marker in seen:
            at = seen.find(marker)
            body = (request.get("postData") or {}).get("text", "")[:200]
            found.append(
                f"{request['method']} {request['url']} {body} → {response['status']}: …{seen[max(0, at - 120) : at + 80]}…"
            )
    return found


def _sent_strings(request: dict) -> set[str]:
    """The strings a request sent: path segments, query values, string values of a JSON body."""
    from urllib.parse import unquote, urlsplit

    url = urlsplit(request["url"])
    sent = {unquote(part) for part in url.path.split("/") if part}
    sent |= {q["value"] for q in request.get("queryString", [])}

    def leaves(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for item in value.values():
                yield from leaves(item)
        elif isinstance(value, list):
            for item in value:
                yield from leaves(item)

    try:
        sent |= set(leaves(json.loads((request.get("postData") or {}).get("text") or "null")))
    except ValueError:
        pass
    return {value.lower() for value in sent if len(value) >= 4}
