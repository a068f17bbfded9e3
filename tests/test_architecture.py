"""What `make lint`'s tools do not see: a module importing another module's private name
(`from audit.context import _current`). ruff's SLF001 catches `obj._name`, not imports,
and its rule for them is still a preview. The layers themselves are import-linter's
contracts in pyproject.toml."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = ("stories", "audit", "sessions_app", "storyhub", "scripts", "bench")

# (module, name) imported on purpose: none so far.
ALLOWED: set[tuple[str, str]] = set()


def _module_of(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_module(path: Path, root: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = _module_of(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def private_imports(paths, root: Path = ROOT) -> list[str]:
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            module = _imported_module(path, root, node)
            if module.split(".")[0] not in FIRST_PARTY:
                continue
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and (module, alias.name) not in ALLOWED:
                    found.append(f"{path.relative_to(root)}:{node.lineno} imports {module}.{alias.name}")
    return found


def _sources():
    for top in FIRST_PARTY:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def test_no_module_imports_a_private_name_of_another():
    assert private_imports(_sources()) == []


def test_the_check_sees_absolute_and_relative_private_imports(tmp_path):
    package = tmp_path / "audit"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from audit.context import _current, current\nfrom .events import _hidden\n")
    (package / "b.py").write_text("from .context import current\nfrom os import _exit\n")
    assert private_imports([package / "a.py", package / "b.py"], root=tmp_path) == [
        "audit/a.py:1 imports audit.context._current",
        "audit/a.py:2 imports audit.events._hidden",
    ]
