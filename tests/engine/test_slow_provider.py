"""The process finds its providers slow once most answers took SLOW_ANSWER_S or more (fresh
processes: the finding is once per process and cannot be undone)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from integrations.engine.slow_provider import SLOW_ANSWER_S, SLOW_ANSWERS

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_fast_provider_with_the_odd_slow_answer_is_not_slow() -> None:
    assert _run(f"""
from integrations.engine import slow_provider as sp
for i in range(2000):  # a loaded machine's pauses
    sp.note_answer({SLOW_ANSWER_S} if i % 10 == 0 else 0.002)
print(sp.detected())
""") == "False"


def test_listeners_run_once_when_most_answers_are_slow_and_at_once_after() -> None:
    assert SLOW_ANSWERS > 1
    assert _run(f"""
from integrations.engine import slow_provider as sp
calls = []
sp.on_detected(lambda: calls.append("early"))
for _ in range({SLOW_ANSWERS} - 1):
    sp.note_answer(0.15)
before = (sp.detected(), list(calls))
for _ in range(100):
    sp.note_answer(0.15)
sp.on_detected(lambda: calls.append("late"))
print(before, sp.detected(), calls)
""") == "(False, []) True ['early', 'late']"
