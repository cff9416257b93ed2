"""`python -m screensync.cluster --workers 2 --connections 20 --kill-one` (as root): docs/scale-out.md."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from screensync.cluster.config import ClusterConfig


def parse(argv: list[str] | None = None) -> ClusterConfig:
    fields = ClusterConfig.model_fields
    parser = argparse.ArgumentParser(
        prog="python -m screensync.cluster",
        description="Run screensync as several hosts (Linux network namespaces; needs root and `ip`).",
    )
    for name, info in fields.items():
        flag = "--" + name.replace("_", "-")
        if info.annotation is bool:
            parser.add_argument(flag, action="store_true", help=info.description)
        elif name == "integrations":
            parser.add_argument(flag, nargs="+", help="some of: clearchecks checkr (default: both)")
        elif name == "run_dir":
            parser.add_argument(flag, type=Path, help=info.description)
        else:
            parser.add_argument(flag, help=f"{info.description or ''} (default {info.default})")
    given = {k: v for k, v in vars(parser.parse_args(argv)).items() if v not in (None, False)}
    return ClusterConfig.model_validate(given)


def main(argv: list[str] | None = None) -> int:
    from pydantic import ValidationError

    from sandbox.netns import NetnsUnavailable
    from screensync.cluster.run import run_cluster

    try:
        config = parse(argv)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        report = run_cluster(config)
    except NetnsUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: everything stopped and removed", file=sys.stderr)
        return 130
    print("\n".join(report.lines()))
    exact = report.truth.exact and report.jobs_completed == report.jobs and report.analyst.failed == 0
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
