"""The JSON Schema (draft 2020-12) of the instance format, generated from the models that validate it.

Editors use it for completion, hover documentation (each key's description
gives its unit and spec symbol) and inline errors: an instance file that
starts with ``# yaml-language-server: $schema=../schema/instance.schema.json``
is checked by any yaml-language-server client.  The schema checks what can be
checked key by key; the loader also checks what spans keys (references to
regions, years against the horizon, the scenario tree's rules).
"""

from __future__ import annotations

import json

from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from .fields import Growth
from .models import InstanceFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_PATH = "schema/instance.schema.json"  # in the repository, next to instances/


class _Generator(GenerateJsonSchema):
    """Pydantic's generator without per-key titles (the key is its title) or null defaults."""

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def normalize_name(self, name: str) -> str:
        """A section's definition is named for the section (``Region``), not for its model (``RegionSection``)."""
        name = super().normalize_name(name)
        for suffix in ("Section", "Entry"):
            if name.endswith(suffix) and len(name) > len(suffix):
                return name[: -len(suffix)]
        return name

    def default_schema(self, schema):
        out = super().default_schema(schema)
        if out.get("default", 0) is None:
            out.pop("default")
        return out


def instance_schema() -> dict:
    """The schema as a JSON-ready dict."""
    _, top = models_json_schema([(InstanceFile, "validation"), (Growth, "validation")],
                                schema_generator=_Generator)
    defs = top["$defs"]
    for name, d in defs.items():  # titled for the section, like its name
        if d.get("title", "").startswith(name):
            d["title"] = name
    root = defs.pop("InstanceFile")
    root["title"] = "capplan instance"
    return {"$schema": DRAFT, **root, "$defs": dict(sorted(defs.items()))}


def schema_text() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(instance_schema(), indent=2, ensure_ascii=False) + "\n"
