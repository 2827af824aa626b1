"""A small JSON Schema (2020-12 subset) validator for the OpenAPI document's schemas.

Covers what idp/context/openapi.py uses: type (including type lists), properties, required,
additionalProperties false, items, minItems/maxItems, enum, minimum/maximum, pattern, oneOf,
format date-time/date, and local ``$ref`` to ``#/components/...``. Returns a list of error
strings, each with the JSON path where it failed (empty: valid)."""

from __future__ import annotations

import datetime as dt
import re

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(kind: str, value) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, _TYPES[kind])


def _resolve(root: dict, ref: str) -> dict:
    assert ref.startswith("#/"), f"only local refs: {ref}"
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def validate(value, schema: dict, root: dict, path: str = "$") -> list[str]:
    if "$ref" in schema:
        return validate(value, _resolve(root, schema["$ref"]), root, path)
    errors: list[str] = []
    if "oneOf" in schema:
        matches = [s for s in schema["oneOf"] if not validate(value, s, root, path)]
        if len(matches) != 1:
            errors.append(f"{path}: matches {len(matches)} of oneOf, not exactly 1")
        return errors
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(k, value) for k in kinds):
            return [f"{path}: {value!r} is not of type {kinds}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in {schema['enum']}")
    if _is("number", value):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        fmt = schema.get("format")
        try:
            if fmt == "date-time":
                if "T" not in value:
                    raise ValueError(value)
                dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            elif fmt == "date":
                dt.date.fromisoformat(value)
        except ValueError:
            errors.append(f"{path}: {value!r} is not a {fmt}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing required {name!r}")
        for name, item in value.items():
            if name in properties:
                errors += validate(item, properties[name], root, f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: undocumented property {name!r}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                errors += validate(item, schema["items"], root, f"{path}[{i}]")
    return errors


def response_schema(document: dict, path: str, status: str) -> dict:
    """The JSON schema of one documented response."""
    return document["paths"][path]["get"]["responses"][status]["content"][
        "application/json"]["schema"]
