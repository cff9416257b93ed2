"""prefect.yaml is generated from the definitions; the committed copy must match them exactly."""

from __future__ import annotations

import inspect
import typing

import yaml
from pydantic import ValidationError

from flows import action_flows
from flows.deployments import PREFECT_YAML, build_prefect_yaml, render_prefect_yaml
from integrations.engine.registry import all_integrations, frequency_seconds, sync_frequency_seconds


def test_committed_prefect_yaml_equals_the_generated_one() -> None:
    assert PREFECT_YAML.read_text() == render_prefect_yaml(), "prefect.yaml is stale: run `screensync prefect-yaml`"


def test_every_sync_is_scheduled_once_at_its_declared_frequency_and_each_sweep_once() -> None:
    deployments = {d["name"]: d for d in yaml.safe_load(PREFECT_YAML.read_text())["deployments"]}
    for name, integ in all_integrations().items():
        dep = deployments[f"sync-{name}"]
        assert dep["work_pool"]["name"] == "screensync"
        assert set(dep["parameters"]) == {"integration", "connections", "syncs", "full_refresh"}
        scheduled: dict[str, dict] = {}
        swept: dict[str, dict] = {}
        for schedule in dep["schedules"]:
            into = swept if schedule["parameters"].get("full_refresh") else scheduled
            for model in schedule["parameters"]["syncs"]:
                assert model not in into, f"{name}/{model} scheduled twice"
                into[model] = schedule
        assert set(scheduled) == {s.name for s in integ.definition.syncs}
        assert set(swept) == {s.name for s in integ.definition.syncs if s.sweep}
        for sync in integ.definition.syncs:
            seconds = sync_frequency_seconds(sync)
            if seconds is None:
                assert scheduled[sync.name]["cron"] == sync.frequency
            else:
                assert scheduled[sync.name]["interval"] == seconds
            if sync.sweep:
                assert swept[sync.name]["interval"] == frequency_seconds(sync.sweep, sync.name)


def test_every_declared_action_has_a_deployment_and_a_flow_typed_with_its_input_model() -> None:
    names = {d["name"]: d for d in build_prefect_yaml()["deployments"]}
    for name, integ in all_integrations().items():
        for action in integ.definition.actions:
            dep = names[f"{name}-{action.name.replace('_', '-')}"]
            assert dep["parameters"] == {"integration": name}
            path, flow_attr = dep["entrypoint"].split(":")
            assert path == "flows/action_flows.py"
            fn = getattr(action_flows, flow_attr).fn
            hints = typing.get_type_hints(fn)
            assert integ.model(action.input) in (hints["request"], *typing.get_args(hints["request"]))
            assert inspect.signature(fn).parameters["integration"].default in {name, integ.definition.extends}
        for common in ("test-connection", "sync-connection-now", "full-resync"):
            assert f"{name}-{common}" in names


def test_pull_step_sets_the_working_directory() -> None:
    pull = yaml.safe_load(PREFECT_YAML.read_text())["pull"]
    assert pull == [{"prefect.deployments.steps.set_working_directory": {"directory": "{{ $PWD }}"}}]


def test_serve_builds_the_same_deployments_as_prefect_yaml() -> None:
    from datetime import timedelta

    from flows.serve import runner_deployments

    specs = {d["name"]: d for d in build_prefect_yaml()["deployments"]}
    served = {d.name: d for d in runner_deployments()}
    assert set(served) == set(specs)
    for name, dep in served.items():
        assert dep.parameters == specs[name]["parameters"]
        wanted = [
            (timedelta(seconds=s["interval"]) if "interval" in s else s["cron"], s["parameters"])
            for s in specs[name]["schedules"]
        ]
        got = [(getattr(s.schedule, "interval", None) or s.schedule.cron, s.parameters) for s in dep.schedules]
        assert got == wanted


def test_generated_action_flows_load_from_their_entrypoint_with_the_models_as_parameter_schema() -> None:
    """What `prefect deploy` and a process worker do: load the entrypoint from the file, read the schema."""
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    for name, integ in all_integrations().items():
        for action in integ.definition.actions:
            dep = next(d for d in build_prefect_yaml()["deployments"]
                       if d["name"] == f"{name}-{action.name.replace('_', '-')}")
            loaded = load_flow_from_entrypoint(dep["entrypoint"])
            schema = parameter_schema(loaded.fn).model_dump_for_openapi()
            model = integ.model(action.input)
            definitions = schema.get("definitions", {})
            assert model.__name__ in definitions, f"{dep['name']}: the form lacks {model.__name__}"
            assert set(definitions[model.__name__]["properties"]) == set(model.model_fields)
            assert schema["properties"]["connection_id"]["type"] == "string"
            required = {n for n, f in model.model_fields.items() if f.is_required()}
            assert set(definitions[model.__name__].get("required", [])) == required
            try:  # the request may be left out only when the model needs no input at all
                model()
                optional = True
            except ValidationError:
                optional = False
            assert ("request" in schema.get("required", [])) != optional
