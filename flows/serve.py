"""`screensync serve`: every deployment of prefect.yaml, with its schedule, in one local process.

Built from the same data as prefect.yaml (flows/deployments.py), so local and production runs
share names, parameters and schedules; only the executor differs (this process instead of a
work pool's workers).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from prefect.schedules import Cron, Interval, Schedule

from flows.deployments import REPO_ROOT, build_prefect_yaml
from flows.prefect_env import check_api_reachable


def _flow_for(entrypoint: str) -> Any:
    path, attr = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, attr)


def _schedule(spec: dict[str, Any]) -> Schedule:
    params = spec.get("parameters") or None
    if "interval" in spec:
        return Interval(spec["interval"], active=spec.get("active", True), parameters=params)
    return Cron(spec["cron"], timezone=spec.get("timezone"), active=spec.get("active", True), parameters=params)


def runner_deployments(
    only: list[str] | None = None, *, work_pool: str | None = None, checkout: Path | None = None
) -> list[Any]:
    """RunnerDeployments for prefect.yaml's deployments (all, or those named in `only`).

    Without `work_pool` they are for `prefect.serve` (this process runs them). With it they are
    prefect.yaml's deployments as `prefect deploy` registers them: on that pool, with the same
    entrypoints and a pull step that moves into `checkout` (the repository the worker runs from).
    """
    out = []
    for spec in build_prefect_yaml()["deployments"]:
        if only and spec["name"] not in only:
            continue
        flow = _flow_for(spec["entrypoint"])
        deployment = flow.to_deployment(
            name=spec["name"],
            description=spec.get("description"),
            tags=spec.get("tags"),
            parameters=spec.get("parameters"),
            schedules=[_schedule(s) for s in spec.get("schedules") or []],
            work_pool_name=work_pool,
            job_variables=(spec.get("work_pool") or {}).get("job_variables") or None if work_pool else None,
        )
        if work_pool is not None:
            from prefect.runner.storage import LocalStorage

            deployment.entrypoint = spec["entrypoint"]  # relative to the checkout, whatever the cwd
            deployment.storage = LocalStorage(str(checkout or REPO_ROOT))
        out.append(deployment)
    return out


def serve(only: list[str] | None = None, limit: int | None = None) -> None:
    """Block, running scheduled and manually triggered runs until interrupted; webhook events recorded
    in the inbox are applied to the warehouse meanwhile (flows/webhook_applier.py)."""
    from prefect import serve as prefect_serve

    from flows.webhook_applier import applying_beside

    check_api_reachable()
    with applying_beside():
        prefect_serve(*runner_deployments(only), limit=limit)
