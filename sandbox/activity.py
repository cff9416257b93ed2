"""Seeded random activity per simulated day, shared by the sandbox providers (off by default).

A provider's activity config (`PUT /_sandbox/activity/{provider}`) says how many things of each
kind happen per account per simulated day; at every clock advance the provider draws that many
moments in (old, new] from its own RNG (seeded by the provider seed and the config's `seed`) and
applies them oldest first. The same seed and the same sequence of advances give the same world.
"""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, ConfigDict, Field

DAY = 86400


class ActivityConfig(BaseModel):
    """The knobs every provider has; providers add their own."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    new_reports_per_day: float = Field(
        0.0, ge=0, description="per account: reports ordered on records that already exist (old parents)"
    )
    report_vanish_per_day: float = Field(
        0.0, ge=0, description="per account: reports that vanish (GET answers 404, lists and export omit them)"
    )


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth below 30, a rounded normal above: exact enough for a sandbox)."""
    if mean <= 0:
        return 0
    if mean >= 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def moments(rng: random.Random, per_day: float, old: int, new: int) -> list[int]:
    """Sorted random epochs in (old, new], about `per_day` a day."""
    if per_day <= 0 or new <= old:
        return []
    n = poisson(rng, per_day * (new - old) / DAY)
    return sorted(old + 1 + int(rng.random() * (new - old)) for _ in range(n))


def provider_rng(provider_seed: int, config: ActivityConfig, key: str) -> random.Random:
    return random.Random(f"activity:{key}:{provider_seed}:{config.seed}")
