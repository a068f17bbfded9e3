"""Checking a tool call's arguments against the tool's input schema (mcp_app.catalog),
before anything runs: every problem is reported with the argument's name and the reason
(`validation_error`, details {"files[0].text": ["at most 1000000 characters"]}), the
way the API reports a bad field. Covers the schema keywords the catalog uses."""

from __future__ import annotations

from typing import Any

from storyhub.errors import ApplicationError
from storyhub.validators import JSON_DOCUMENT_MAX_DEPTH, json_depth

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}
_WORDS = {"string": "a string", "integer": "a whole number", "boolean": "true or false", "array": "a list"}
_WORDS |= {"object": "an object", "null": "null"}


class ToolArgumentError(ApplicationError):
    """Arguments that do not fit the tool's schema (the API's 400 validation_error)."""

    code = "validation_error"
    http_status = 400

    def __init__(self, problems: dict[str, list[str]]):
        first = next(iter(problems))
        super().__init__(f"Invalid argument '{first}': {problems[first][0]}", details=problems)


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "integer" and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


def _check_type(value: Any, schema: dict[str, Any]) -> str | None:
    kinds = schema.get("type")
    if kinds is None:
        return None
    kinds = kinds if isinstance(kinds, list) else [kinds]
    if any(_type_ok(value, kind) for kind in kinds):
        return None
    return "Give " + " or ".join(_WORDS[k] for k in kinds) + "."


def _check_bounds(value: Any, schema: dict[str, Any]) -> str | None:  # noqa: C901 -- one check per keyword
    if "enum" in schema and value not in schema["enum"]:
        return "Give one of: " + ", ".join(str(v) for v in schema["enum"]) + "."
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"Give at most {schema['maxLength']} characters."
    if isinstance(value, int) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return f"Give a number from {schema['minimum']} to {schema.get('maximum', '…')}."
        if "maximum" in schema and value > schema["maximum"]:
            return f"Give a number from {schema.get('minimum', '…')} to {schema['maximum']}."
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"Give at least {schema['minItems']} item(s)."
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"Give at most {schema['maxItems']} items."
    return None


def _walk(value: Any, schema: dict[str, Any], path: str, problems: dict[str, list[str]]) -> None:
    reason = _check_type(value, schema) or _check_bounds(value, schema)
    if reason:
        problems.setdefault(path or "arguments", []).append(reason)
        return
    if isinstance(value, dict) and "properties" in schema:
        _walk_object(value, schema, path, problems)
    elif isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                problems.setdefault(f"{path}.{name}", []).append("This argument is required.")
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _walk(item, schema["items"], f"{path}[{index}]", problems)


def _walk_object(value: dict, schema: dict[str, Any], path: str, problems: dict[str, list[str]]) -> None:
    prefix = f"{path}." if path else ""
    properties = schema["properties"]
    for name in schema.get("required", ()):
        if name not in value or value[name] is None and "null" not in str(properties[name].get("type")):
            problems.setdefault(prefix + name, []).append("This argument is required.")
    for name, item in value.items():
        if name not in properties:
            if schema.get("additionalProperties") is False:
                problems.setdefault(prefix + str(name), []).append("Unknown argument.")
            continue
        if item is None and name not in schema.get("required", ()):
            continue  # an optional argument given as null is left out
        _walk(item, properties[name], prefix + name, problems)


def check_arguments(schema: dict[str, Any], arguments: Any) -> dict[str, Any]:
    """The arguments without the optional ones given as null; ToolArgumentError lists
    every problem."""
    arguments = {} if arguments is None else arguments
    if not isinstance(arguments, dict):
        raise ToolArgumentError({"arguments": ["Give the arguments as an object."]})
    if json_depth(arguments) > JSON_DOCUMENT_MAX_DEPTH:
        raise ToolArgumentError({"arguments": [f"Nested deeper than {JSON_DOCUMENT_MAX_DEPTH} levels."]})
    problems: dict[str, list[str]] = {}
    _walk(arguments, schema, "", problems)
    if problems:
        raise ToolArgumentError(problems)
    required = set(schema.get("required", ()))
    return {k: v for k, v in arguments.items() if v is not None or k in required}
