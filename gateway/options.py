"""The per-job decoding options of `POST /jobs`: every field of `schemas.DecodeOptions`, by the same name.

One source: the form fields, the JSON body's fields and their OpenAPI description (type, range, default, meaning)
are all derived from the `DecodeOptions` Struct, so the HTTP API cannot drift from the job message. Values are
converted with msgspec, which checks the Struct's constraints while converting (a Struct built directly is not
checked); a value out of range is a 422 naming the field and its rule.

Form fields are text: numbers and booleans (`true`/`false`, `1`/`0`) are read from it, an empty field means the
service default, and `languages` is a comma-separated list (`en,de`). In a JSON body they have their JSON types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from gateway.errors import UnprocessableError
from jetscribe.config_reference import field_docs
from schemas import DecodeOptions
from schemas.export import schema_components

NAMES: Final = frozenset(f.name for f in msgspec.structs.fields(DecodeOptions))
LIST_FIELDS: Final = frozenset({"languages"})
_AT_FIELD: Final = re.compile(r"^(?P<rule>.*?)(?: - at `\$\.(?P<field>\w+)[^`]*`)?$", re.DOTALL)


def parse_form(values: Mapping[str, str]) -> DecodeOptions:
    """The options of a form's text fields (name → value, names from `NAMES`); 422 naming a field that breaks
    its rule."""
    found: dict[str, Any] = {}
    for name, value in values.items():
        text = value.strip()
        if not text:
            continue
        found[name] = [item for item in re.split(r"[\s,]+", text) if item] if name in LIST_FIELDS else text
    return _convert(found, strict=False)


def parse_json(values: Mapping[str, Any]) -> DecodeOptions:
    """The options of a JSON body's fields (name → JSON value); 422 naming a field that breaks its rule."""
    return _convert(dict(values), strict=True)


def _convert(found: dict[str, Any], *, strict: bool) -> DecodeOptions:
    try:
        return msgspec.convert(found, DecodeOptions, strict=strict)
    except msgspec.ValidationError as exc:
        raise UnprocessableError(_explain(str(exc))) from exc


def _explain(message: str) -> str:
    """msgspec's "Expected `int` <= 16 - at `$.beam_size`" as "option `beam_size`: expected `int` <= 16 …"."""
    match = _AT_FIELD.match(message)
    assert match is not None  # the pattern matches any text
    rule, name = match["rule"], match["field"]
    if name is None and (own := re.match(r"^`(\w+)`: (.*)$", rule, re.DOTALL)):
        # A rule of the Struct's own `__post_init__` names its field in the message.
        name, rule = own[1], own[2]
    where = f"option `{name}`" if name else "the options"
    return f"{where}: {rule[:1].lower()}{rule[1:]} (GET /openapi.json gives every option's type and range)"


def _docs() -> dict[str, str]:
    return field_docs(DecodeOptions)


def _json_properties() -> dict[str, Any]:
    """Each option's JSON Schema (msgspec's, with its attribute docstring as description)."""
    _, components = schema_components((DecodeOptions,), "#/components/schemas/{name}")
    properties: dict[str, Any] = components["DecodeOptions"]["properties"]
    docs = _docs()
    return {
        name: {**schema, "description": docs[name]} if name in docs else schema for name, schema in properties.items()
    }


def _form_property(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A form field's schema: text that reads as the option's type; empty or absent means the default."""
    description = schema.get("description")
    variants = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    inner = {k: v for k, v in variants[0].items() if k != "default"}
    if name in LIST_FIELDS:
        item = inner.get("items", {})
        pattern = item.get("pattern", "").strip("^$")
        form: dict[str, Any] = {"type": "string", "pattern": f"^\\s*({pattern}(\\s*,\\s*{pattern})*)?\\s*$"}
        description = f"{description} Comma-separated, e.g. `en,de`."
    elif inner.get("type") == "boolean" and schema.get("default") is None:
        form = {"type": "string", "enum": ["", "true", "false"], "default": ""}
        description = f"{description} Empty: the service's setting."
    else:
        form = dict(inner)
        if "default" in schema and schema["default"] is not None:
            form["default"] = schema["default"]
    if description:
        form["description"] = description
    return form


JSON_PROPERTIES: Final = _json_properties()
"""Each option's schema in a JSON body (computed at import: reading docstrings reads source files)."""
FORM_PROPERTIES: Final = {name: _form_property(name, schema) for name, schema in JSON_PROPERTIES.items()}
"""Each option's schema as a form field."""
