"""What the platform itself does on its customers' accounts during a soak: it invites candidates it
screened long ago to a new check (Checkr then creates a report on an old candidate when the
invitation completes, which is what the candidates cursor never sees)."""

from __future__ import annotations

import random

import httpx

from sandbox.server import SandboxServer


def invite_an_old_candidate(sandbox: SandboxServer, rng: random.Random) -> str | None:
    """POST /v1/invitations for a random live candidate of a random account; the invitation's id."""
    section = sandbox.info["checkr"]
    acct = rng.choice(section["accounts"])
    export = sandbox.export("checkr", acct["id"])[acct["id"]]
    if not export["candidates"]:
        return None
    candidate = rng.choice(export["candidates"])
    slugs = sorted({r["package"] for r in export["reports"]} & {p["slug"] for p in export["packages"]})
    if not slugs:
        return None
    with httpx.Client(base_url=section["base_url"] + "/v1", auth=(acct["api_key"], ""), timeout=30) as api:
        nodes = api.get("/nodes").json()["data"]
        body = {"candidate_id": candidate["id"], "package": rng.choice(slugs)}
        if nodes:
            body["node"] = rng.choice(nodes)["custom_id"]
        response = api.post("/invitations", json=body)
        response.raise_for_status()
        return str(response.json()["id"])
