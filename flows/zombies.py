"""Flow runs of a dead worker end Crashed: two Prefect automations, created once per server.

A worker that dies (its host lost, its process killed) leaves its flow runs `Running` forever:
nobody is left to report their end. Flow runs started by a deployment send a heartbeat event
every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds (set on the sync-shard deployment, >= 30); this
automation (Prefect's documented "detect zombie flows" recipe) marks a run Crashed when its
heartbeats stop for `ZOMBIE_AFTER_SECONDS` without it reaching an end state. The fan-out
dispatcher (flows/fanout.py) then re-submits that shard; it resumes from its checkpoints.

A worker that dies after taking a run (Pending) but before its process started sends no
heartbeat at all, so the first automation never fires and the run would stay Pending for good,
with the dispatcher waiting on it. The second marks a run Crashed when it was Pending for
`UNSTARTED_AFTER_SECONDS` without reaching Running or an end state: far longer than a process
start takes on a loaded host (seconds to tens of seconds), so a slow start is not taken for a death.
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
UNSTARTED_NAME = "screensync: crash flow runs a worker took but never started"
UNSTARTED_MARK = "(screensync unstarted-run automation)"
UNSTARTED_AFTER_SECONDS = float(os.environ.get("SCREENSYNC_UNSTARTED_AFTER", "180"))
_ENDS = ("prefect.flow-run.Completed", "prefect.flow-run.Failed", "prefect.flow-run.Cancelled",
         "prefect.flow-run.Crashed")


def ensure_zombie_automation(within_s: float = ZOMBIE_AFTER_SECONDS) -> UUID:
    """Create the automation unless one of this name exists (any `within`); returns its id."""
    return _ensure(
        AUTOMATION_NAME,
        "A flow run that stops sending heartbeats without finishing is marked Crashed.",
        after="prefect.flow-run.heartbeat",
        expect={"prefect.flow-run.heartbeat", *_ENDS},
        within_s=within_s,
        message=f"no heartbeat for {within_s:.0f}s: its worker died {ZOMBIE_MARK}",
    )


def ensure_unstarted_automation(within_s: float = UNSTARTED_AFTER_SECONDS) -> UUID:
    """Create the automation unless one of this name exists (any `within`); returns its id."""
    return _ensure(
        UNSTARTED_NAME,
        "A flow run a worker took (Pending) that never started running is marked Crashed.",
        after="prefect.flow-run.Pending",
        expect={"prefect.flow-run.Running", *_ENDS},
        within_s=within_s,
        message=f"Pending for {within_s:.0f}s and never started: its worker died before starting it {UNSTARTED_MARK}",
    )


def _ensure(name: str, description: str, *, after: str, expect: set[str], within_s: float, message: str) -> UUID:
    from prefect.automations import Automation
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(name=name)
    if existing:
        return existing[0].id
    automation = Automation(
        name=name,
        description=description,
        trigger=EventTrigger(
            after={after},
            expect=expect,
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within_s),
        ),
        actions=[
            ChangeFlowRunState(state=StateType.CRASHED, message=message)
        ],
    ).create()
    assert automation.id is not None
    return automation.id
