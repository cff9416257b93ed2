"""Register every deployment of prefect.yaml on a process work pool, from Python (what `prefect deploy --all` does).

Built from the same data as prefect.yaml (flows/deployments.py) and `screensync serve`
(flows/serve.py), so the demo's deployments are production's: names, parameters, schedules,
action forms, and a pull step that runs flows from this checkout. Talks to the API that the
current Prefect settings point at.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from uuid import UUID

from flows.deployments import REPO_ROOT, WORK_POOL


def ensure_process_pool(name: str = WORK_POOL) -> None:
    """Create the `process` work pool unless it exists (its default job template, as the CLI would)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            with contextlib.suppress(ObjectAlreadyExists):  # a retried request (slow server) or a racing worker
                client.create_work_pool(WorkPoolCreate(name=name, type="process", base_job_template=template))


def register_deployments(pool: str = WORK_POOL, checkout: Path = REPO_ROOT) -> dict[str, UUID]:
    """Create or update every deployment on `pool`; returns deployment name -> id."""
    from flows.serve import runner_deployments

    ensure_process_pool(pool)
    return {d.name: d.apply() for d in runner_deployments(work_pool=pool, checkout=checkout)}
