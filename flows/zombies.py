"""Flow runs of a dead worker end Crashed: Prefect's heartbeat automation, created once per server.

A worker that dies (its host lost, its process killed) leaves its flow runs `Running` forever:
nobody is left to report their end. Flow runs started by a deployment send a heartbeat event
every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds (set on the sync-shard deployment, >= 30); this
automation (Prefect's documented "detect zombie flows" recipe) marks a run Crashed when its
heartbeats stop for `ZOMBIE_AFTER_SECONDS` without it reaching an end state. The fan-out
dispatcher (flows/fanout.py) then re-submits that shard; it resumes from its checkpoints.
"""

from __future__ import annotations

import os
from datetime import timedelta
from uuid import UUID

AUTOMATION_NAME = "screensync: crash flow runs whose heartbeats stopped"
ZOMBIE_MARK = "(screensync zombie automation)"  # in the Crashed state's message: who crashed it
HEARTBEAT_SECONDS = 30  # Prefect's minimum; prefect.yaml sets it on the sync-shard deployment
# three missed heartbeats: a busy 2-core host can delay one, not three
ZOMBIE_AFTER_SECONDS = float(os.environ.get("SCREENSYNC_ZOMBIE_AFTER", str(3 * HEARTBEAT_SECONDS)))


def ensure_zombie_automation(within_s: float = ZOMBIE_AFTER_SECONDS) -> UUID:
    """Create the automation unless one of this name exists (any `within`); returns its id."""
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(name=AUTOMATION_NAME)
    if existing:
        return existing[0].id
    automation = Automation(
        name=AUTOMATION_NAME,
        description="A flow run that stops sending heartbeats without finishing is marked Crashed.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_s),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=f"no heartbeat for {within_s:.0f}s: its worker died {ZOMBIE_MARK}",
            )
        ],
    ).create()
    assert automation.id is not None
    return automation.id
