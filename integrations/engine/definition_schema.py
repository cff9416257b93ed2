"""The JSON Schema of `definition.yaml`, published so editors validate a definition as it is typed.

The committed copy (`integrations/definition.schema.json`) is what each definition's
`# yaml-language-server: $schema=...` line points at; `screensync definition-schema --write`
regenerates it and a test keeps it current.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from integrations.engine.definition import IntegrationDefinition

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "definition.schema.json"
SCHEMA_ID = "https://screensync.dev/schemas/definition.schema.json"


def definition_schema() -> dict[str, Any]:
    """IntegrationDefinition's schema; a child with `extends` may leave out what it inherits."""
    schema = IntegrationDefinition.model_json_schema()
    required = [name for name in schema.pop("required", []) if name != "name"]
    schema["required"] = ["name"]
    schema["if"] = {"not": {"required": ["extends"]}}
    schema["then"] = {"required": required}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    return json.dumps(definition_schema(), indent=2, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    path.write_text(schema_text())
    return path
