"""Action flows, generated from the definitions: one Prefect flow per declared action, built at import.

Each flow has a real signature — `connection_id: str`, `request: <the action's input model>`,
`integration: str = <its integration>` returning the output model — so Prefect's parameter schema
is the typed model (a form in the UI, validated before the body runs) and a process worker
resolves the deployment entrypoint `flows/action_flows.py:<family>_<action>` by importing this
module. `family` is the integration a definition extends, or its own name, so an `extends` child
(checkr-partner-staging) shares its parent's flows and passes its own name as `integration`.
The work is `integrations.engine.actions.run_action`; a flow adds the artifact, the action log row
and the typed return value. Action flows never retry: a create that timed out may have succeeded.
"""

from __future__ import annotations

import inspect
from typing import Any

from prefect import Flow, flow, get_run_logger
from pydantic import BaseModel, ValidationError

from flows.action_log import append_action_log
from flows.artifacts import publish_action_artifact
from flows.global_limits import ACTION_BUDGET_WAIT, action_rate_limit
from integrations.engine.actions import ActionFailed, run_action
from integrations.engine.definition import ActionConfig
from integrations.engine.registry import Integration, all_integrations, get_integration

FLOWS_FILE = "flows/action_flows.py"


def run_action_flow(integration: str, connection_id: str, action: str, request: BaseModel) -> Any:
    """The body of every action flow: run it, then record the artifact and the action log row."""
    from connections import revoke
    from connections.store import open_store

    logger = get_run_logger()
    logger.info("connection=%s action=%s: starting", connection_id, action)
    # the credential's budget is shared with the process syncing it: take the actions' share
    action_rate_limit(integration, connection_id, get_integration(integration).definition.rate_limit,
                      timeout=ACTION_BUDGET_WAIT)
    store = open_store()
    try:
        output, record = run_action(integration, connection_id, action, request, store=store,
                                    revoke=lambda: revoke(integration, connection_id, store=store))
    except ActionFailed as exc:
        publish_action_artifact(exc.record)
        append_action_log(exc.record)
        logger.error("connection=%s action=%s: %s", connection_id, action, exc)
        raise
    publish_action_artifact(record)
    append_action_log(record)
    logger.info("connection=%s action=%s: done in %.2fs", connection_id, action, record.duration_s)
    return output


def action_family(integration: str) -> str:
    definition = get_integration(integration).definition
    return (definition.extends or definition.name).replace("-", "_")


def action_flow_name(integration: str, action: str) -> str:
    """The attribute of this module that runs `action` for `integration`."""
    return f"{action_family(integration)}_{action}"


def _needs_no_input(model: type[BaseModel]) -> bool:
    try:
        model()
    except ValidationError:
        return False
    return True


def build_action_flow(integ: Integration, action: ActionConfig) -> Flow[..., Any]:
    """A flow for one declared action whose signature carries the action's typed models."""
    input_model, output_model = integ.model(action.input), integ.model(action.output)
    default_integration = integ.definition.extends or integ.name
    optional = _needs_no_input(input_model)

    def run(connection_id: str, request: Any = None, integration: str = default_integration) -> Any:
        return run_action_flow(integration, connection_id, action.name,
                               request if request is not None else input_model())

    request_type: Any = input_model | None if optional else input_model
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter("connection_id", keyword, annotation=str),
            inspect.Parameter("request", keyword, annotation=request_type,
                              default=None if optional else inspect.Parameter.empty),
            inspect.Parameter("integration", keyword, annotation=str, default=default_integration),
        ],
        return_annotation=output_model,
    )
    run.__annotations__ = {"connection_id": str, "request": request_type, "integration": str,
                           "return": output_model}
    run.__name__ = run.__qualname__ = f"{action_family(integ.name)}_{action.name}"
    run.__doc__ = action.description or f"Run the {action.name} action."
    dashed = action.name.replace("_", "-")
    return flow(name=f"{action_family(integ.name).replace('_', '-')}-{dashed}",
                flow_run_name=f"{{integration}}-{dashed}", retries=0)(run)


def build_action_flows() -> dict[str, Flow[..., Any]]:
    """Every declared action's flow by attribute name; a parent's flow serves its `extends` children."""
    built: dict[str, Flow[..., Any]] = {}
    for integ in sorted(all_integrations().values(), key=lambda i: (i.definition.extends is not None, i.name)):
        for action in integ.definition.actions:
            name = action_flow_name(integ.name, action.name)
            if name not in built:
                built[name] = build_action_flow(integ, action)
    return built


def action_flow(integration: str, action: str) -> Flow[..., Any]:
    """The flow for one declared action (built now when its integration was added after import)."""
    get_integration(integration).definition.action(action)  # KeyError names the known actions
    name = action_flow_name(integration, action)
    if name not in globals():
        globals().update(build_action_flows())
    found: Flow[..., Any] = globals()[name]
    return found


globals().update(build_action_flows())
