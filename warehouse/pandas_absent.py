"""Answer DuckDB's `import pandas` at once when pandas is not installed.

DuckDB's Python client tries `import pandas` at every `execute` while pandas is not loaded. Without
pandas installed each try walks every `sys.path` entry (~0.4 ms here, ~40 ms of a small sync's
~100 ms in the warehouse writer: docs/benchmarks.md, fan-out). A finder at the front of
`sys.meta_path` refuses the name without touching the disk. It is only installed when pandas is
absent at start-up, and it leaves `sys.modules` alone: recording the absence there
(`sys.modules["pandas"] = None`) broke pyarrow's pandas shim, which looks the name up in it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType

ABSENT = ("pandas",)


class AbsentModules(importlib.abc.MetaPathFinder):
    """Refuses `names` (and their submodules) as if no path held them."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname.split(".", 1)[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def install() -> bool:
    """Put the finder in front for whichever of ABSENT is not installed; True when it is in place."""
    if any(isinstance(f, AbsentModules) for f in sys.meta_path):
        return True
    missing = [n for n in ABSENT if n not in sys.modules and importlib.util.find_spec(n) is None]
    if not missing:
        return False
    sys.meta_path.insert(0, AbsentModules(missing))
    return True
