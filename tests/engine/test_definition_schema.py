"""The published definition JSON Schema: current, referenced by every definition, and it validates them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from integrations.engine.definition_schema import SCHEMA_PATH, definition_schema, schema_text
from integrations.engine.registry import BUILTIN_DIR

DEFINITIONS = sorted(BUILTIN_DIR.glob("*/definition.yaml"))


def test_the_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), "run `screensync definition-schema --write` and commit it"


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: p.parent.name)
def test_every_definition_points_at_the_schema_and_passes_it(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# yaml-language-server: $schema=")
    assert (path.parent / first.split("=", 1)[1]).resolve() == SCHEMA_PATH
    jsonschema.validate(yaml.safe_load(path.read_text()), definition_schema())


def test_the_schema_catches_a_field_of_the_wrong_type() -> None:
    definition = yaml.safe_load((BUILTIN_DIR / "clearchecks" / "definition.yaml").read_text())
    definition["pagination"]["cursor_path"] = "meta.next"  # a cursor field on page_number pagination
    with pytest.raises(jsonschema.ValidationError, match="cursor_path"):
        jsonschema.validate(definition, definition_schema())


def test_the_command_prints_and_writes_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from screensync import cli

    cli._mount()
    printed = CliRunner().invoke(cli.app, ["definition-schema"])
    assert printed.exit_code == 0 and json.loads(printed.output) == definition_schema()
    target = tmp_path / "schema.json"
    monkeypatch.setattr("integrations.engine.definition_schema.SCHEMA_PATH", target)
    monkeypatch.setattr("integrations.engine.definition_schema.write_schema.__defaults__", (target,))
    written = CliRunner().invoke(cli.app, ["definition-schema", "--write"])
    assert written.exit_code == 0 and target.read_text() == schema_text()
