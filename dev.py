#!/usr/bin/env python3
"""Bootstrap for a fresh clone: needs only Python 3.11 and git.

`python3 dev.py demo` runs the main job, `python3 dev.py test` runs the whole test suite.
Both first create `.venv` and install the locked dependencies (uv.lock) into it, so the two
commands in README.md are all a new machine needs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
UV_VERSION = "0.13.9"  # the lock file's tool; pinned so every machine resolves the same way
PACKAGES = ["bench", "common", "connections", "flows", "integrations", "sandbox", "screensync", "tests", "warehouse"]


def _venv_bin(name: str) -> Path:
    return VENV / "bin" / name


def _run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)  # type: ignore[arg-type]


def install() -> None:
    """Create .venv and sync it with uv.lock (idempotent, fast when already in sync)."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"screensync needs Python 3.11, this is {sys.version.split()[0]}: run it with python3.11")
    if not _venv_bin("python").exists():
        _run([sys.executable, "-m", "venv", str(VENV)])
    if not _venv_bin("uv").exists():
        _run([str(_venv_bin("python")), "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"])
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(VENV)}
    # Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (this image, many container
    # images) no import ever writes a .pyc, and every process compiled what it imported from source:
    # `import prefect` 2.9 s -> 1.6 s, a Prefect server's imports 8.4 s -> 4.2 s, a flow run's 3.2 s -> 2.2 s.
    # ~14 s on a fresh .venv, nothing after; the project's own packages too (a second at most).
    _run([str(_venv_bin("uv")), "sync", "--frozen", "--quiet", "--compile-bytecode"], env=env)
    _run([str(_venv_bin("python")), "-m", "compileall", "-q", "-j", "0", *PACKAGES], env=env)


def _call(cmd: list[str]) -> int:
    """Run `cmd` and return its exit code; Ctrl-C is left to it (it shuts down what it started)."""
    proc = subprocess.Popen(cmd, cwd=ROOT)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # the terminal sent it to the child too; wait for its clean exit
            continue


def _parallel(args: list[str]) -> list[str]:
    """pytest-xdist options for the whole suite: one worker per core and one more (at most 4), each test
    file on one worker so a file's module fixtures (a Prefect server, a sandbox) start once. Most of
    the suite waits on subprocesses, servers starting and loopback HTTP: on 2 cores, two workers kept
    the cores ~70% busy and took 11-12 min, three took 7-8 min. Left out when the caller chose
    (`-n ...`, `-p no:xdist`) or asked for output (`-s`)."""
    if any(a == "-s" or a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in args):
        return []
    cores = max(1, os.cpu_count() or 1)
    workers = min(4, cores + 1) if cores > 1 else 1
    return ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"install", "demo", "test"}:
        print(__doc__)
        return 2
    install()
    cmd, rest = argv[0], argv[1:]
    if cmd == "install":
        return 0
    if cmd == "demo":
        return _call([str(_venv_bin("screensync")), "demo", *rest])
    # test: the whole suite; pytest's exit code 5 (no tests collected) is a failure here too
    rc = _call([str(_venv_bin("python")), "-m", "pytest", *_parallel(rest), *rest])
    return 1 if rc == 5 else rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
