"""What one seeded soak run throws at the engine: the world's activity, webhook chaos, provider
faults and killed syncs. Everything is drawn from the seed, so a failing seed replays.

`SCREENSYNC_SOAK_SEEDS` (comma-separated) and `SCREENSYNC_SOAK_DAYS` choose the runs; unset, CI
runs `CI_SEED` over `CI_DAYS` simulated days (about two minutes on two cores).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sandbox.checkr.webhook_chaos import WebhookChaos
from sandbox.faults import FaultConfig

CI_SEED = 1201
CI_DAYS = 2.0
SEEDS_ENV = "SCREENSYNC_SOAK_SEEDS"
DAYS_ENV = "SCREENSYNC_SOAK_DAYS"


def seeds() -> list[int]:
    raw = os.environ.get(SEEDS_ENV, "").strip()
    return [int(s) for s in raw.split(",") if s.strip()] if raw else [CI_SEED]


def days() -> float:
    return float(os.environ.get(DAYS_ENV) or CI_DAYS)


@dataclass(frozen=True)
class Scenario:
    seed: int
    days: float
    scale: int = 60  # candidates per Checkr account (3 accounts, one connection each)
    min_step: timedelta = timedelta(minutes=30)
    max_step: timedelta = timedelta(hours=8)
    kill_rate: float = 0.2  # share of scheduled sync runs SIGKILLed part-way
    held_days: float = 1.0  # at the end, every webhook is held back until after the catch-up
    invite_rate: float = 0.5  # share of steps in which the platform invites an old candidate (a new report later)
    fault_weights: dict[str, float] = field(default_factory=lambda: {
        "none": 0.55, "5xx": 0.15, "429": 0.1, "drops": 0.1, "missing_field": 0.1,
    })

    def activity(self) -> dict[str, Any]:
        """Per account and simulated day: new reports on old candidates, vanishing, cancelled
        invitations, missed ETAs and disputes (docs/sandbox.md, "Activity")."""
        return {
            "seed": self.seed,
            "new_reports_per_day": 8.0,
            "report_vanish_per_day": 1.0,
            "candidate_vanish_per_day": 0.5,
            "invitation_cancel_per_day": 1.0,
            "eta_miss_rate": 0.3,
            "eta_slip_hours": 6,
            "dispute_rate": 0.6,
            "dispute_after_days": 0.5,
            "dispute_days": 1.0,
        }

    def chaos(self) -> WebhookChaos:
        """Lost, doubled, late and shuffled deliveries, several at once (so they race the syncs)."""
        return WebhookChaos(seed=self.seed, drop_rate=0.08, duplicate_rate=0.15, late_rate=0.15, late_advances=2,
                            shuffle=True, delay_ms=20, concurrency=6)

    def fault(self, rng: random.Random) -> tuple[str, FaultConfig]:
        """The provider's trouble for the next scheduled run: often none, else one kind at a time."""
        kinds, weights = zip(*self.fault_weights.items(), strict=True)
        kind = rng.choices(kinds, weights)[0]
        seed = rng.randrange(1 << 30)
        config = {
            "none": FaultConfig(),
            "5xx": FaultConfig(seed=seed, error_rate=0.15),
            "429": FaultConfig(seed=seed, burst_429_rate=0.05, burst_429_length=3),
            "drops": FaultConfig(seed=seed, drop_rate=0.15),
            "missing_field": FaultConfig(seed=seed, missing_field=True, missing_field_every=9),
        }[kind]
        return kind, config
