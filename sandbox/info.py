"""Writing and describing the info JSON (what `screensync sandbox --info PATH` produces)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import orjson


def write_info(info: dict[str, Any], path: Path) -> None:
    """Atomic: a reader polling for the file never sees it half written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".info-", suffix=".json")
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(info, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def describe(info: dict[str, Any]) -> list[str]:
    """Human lines: base URLs and the sandbox's demo credentials (fake, deterministic from the seed)."""
    lines = [f"control API      {info['control_url']}"]
    for key in ("checkr", "checkr_staging"):
        if key in info:
            s = info[key]
            lines.append(f"{key:<16} {s['base_url']}  (API {s['base_url']}/v1, {s['environment']})")
            lines.append(
                f"  partner app    client_id={s['partner']['client_id']} client_secret={s['partner']['client_secret']}"
            )
            lines += [f"  account        {a['id']} {a['name']!r} api_key={a['api_key']}" for a in s["accounts"]]
    if "clearchecks" in info:
        s = info["clearchecks"]
        lines.append(f"{'clearchecks':<16} {s['base_url']}  (API {s['base_url']}/api)")
        lines.append(f"  source_token   {s.get('source_token')}")
        lines += [f"  account        {a['id']} {a['name']!r} api_token={a['api_token']}" for a in s["accounts"]]
    return lines
