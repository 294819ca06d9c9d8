"""Mutation scores per module from mutmut's results in `mutants/` (README "Mutation testing").

    python tests/support/mutscores.py [mutants] [--survivors] [--timeouts]

A mutant counts as caught when a test failed (killed), timed out, or mypy refused it; the
score is caught / checked, where mutants never run (not checked) are left out and mutants
no test reaches ("no tests") count as missed. Modules with nothing checked are not listed.

Timeouts are shown apart, with the score counting them as missed ("floor"): a mutant's
tests that pass everywhere else can hang in mutmut's forked worker (a push to the registry
in a thread gets no answer there), so a survivor may show as a timeout. `mutmut show NAME`
and running its tests by hand with MUTANT_UNDER_TEST=NAME tell which it is.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

CAUGHT = {1: "killed", 3: "killed", 36: "timeout", -24: "timeout", 24: "timeout",
          152: "timeout", 255: "timeout", 37: "type check"}
MISSED = {0: "survived", 33: "no tests", 35: "suspicious", -11: "segfault", -9: "segfault"}


def scores(root: Path) -> list[tuple[str, int, int, int, int, int]]:
    """(module, caught, survived, no tests, not checked, timeouts) for every module with
    results; `caught` includes the timeouts."""
    rows = []
    for meta in sorted(root.glob("src/**/*.py.meta")):
        codes = Counter(json.loads(meta.read_text())["exit_code_by_key"].values())
        caught = sum(n for code, n in codes.items() if code in CAUGHT)
        timeouts = sum(n for code, n in codes.items() if CAUGHT.get(code) == "timeout")
        survived = sum(n for code, n in codes.items() if code in MISSED and code != 33)
        if caught + survived + codes[33]:
            module = str(meta.relative_to(root / "src")).removesuffix(".meta")
            rows.append((module, caught, survived, codes[33], codes[None], timeouts))
    return rows


def main(argv: list[str]) -> int:
    root = Path(next((a for a in argv if not a.startswith("--")), "mutants"))
    print(f"{'module':42} {'score':>6} {'caught':>6} {'missed':>6} {'no tests':>8} "
          f"{'unrun':>6} {'timeout':>7} {'floor':>6}")
    for module, caught, survived, untested, unrun, timeouts in scores(root):
        checked = caught + survived + untested
        print(f"{module:42} {100 * caught / checked:5.1f}% {caught:6} {survived:6} "
              f"{untested:8} {unrun:6} {timeouts:7} {100 * (caught - timeouts) / checked:5.1f}%")
    if "--survivors" in argv or "--timeouts" in argv:
        shown = {**MISSED, **({k: v for k, v in CAUGHT.items() if v == "timeout"}
                              if "--timeouts" in argv else {})}
        for meta in sorted(root.glob("src/**/*.py.meta")):
            for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
                if code in shown:
                    print(f"{shown[code]:10} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
