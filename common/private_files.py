"""Files the product creates can hold customer data (the warehouse, the credential store and its
webhook inbox, Prefect's database with run logs and artifacts, lock and log files): owner-only.

Every process that runs our code (the `screensync` command, Prefect workers importing `flows`)
narrows its umask once, so whatever it or a child process (Prefect's local server) creates is
0600 (directories 0700). Files created through the Python API without that are fixed where we
create them (the store, the warehouse).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_UMASK = 0o077


def restrict_new_files() -> None:
    """No group or other permissions on anything created from now on (stricter bits are kept)."""
    current = os.umask(PRIVATE_UMASK)
    os.umask(current | PRIVATE_UMASK)


def make_private(*paths: Path) -> None:
    """chmod 600 the files that exist (a file we just created under someone else's umask)."""
    for path in paths:
        try:
            if path.is_file():
                path.chmod(0o600)
        except OSError:
            pass
