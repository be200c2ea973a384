"""`give_back_memory`: the heap freed by checking the flows' templates is returned."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROGRAM = """
def rss():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) // 1024
from engine.loader import load_folder
from adapters.serve.heap import give_back_memory
flows, _ = load_folder("flows")
before = rss()
give_back_memory()
print(before, rss())
"""


def test_the_memory_left_by_checking_templates_goes_back_to_the_system() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, check=True
    )
    before, after = map(int, done.stdout.split())
    assert before - after >= 10, (before, after)  # ~40 MB on glibc
