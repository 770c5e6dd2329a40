"""The reconciler-concurrency tests, run again and again on a busy machine.

Starts one CPU burner per core (busy loops in their own processes), then runs the suite's tests
that put several reconcilers on one ledger (two daemons at once; three replicas with one killed;
with `--fencing`, the fenced-lease tests too) `--runs` times in a row, and reports how many runs
failed and which tests. Exit 0 only when every run passed.

    python -m bench.under_load [--runs 20] [--burners N] [--fencing] [-k EXPR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = [
    "tests/test_processes.py::test_two_reconcilers_at_once_never_push_the_same_change_twice",
    "tests/test_replicas.py",
]
FENCING = ["tests/test_fencing.py"]


def burn() -> None:
    """Spin until killed."""
    while True:
        pass


def main(argv: list[str] | None = None) -> int:
    """Run the concurrency tests `--runs` times beside CPU burners; 0 when every run passed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20, help="runs in a row (default 20)")
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2, help="busy processes (default: CPUs)")
    parser.add_argument("--fencing", action="store_true", help="the fenced-lease tests too (about 3 min a run)")
    parser.add_argument("-k", dest="keyword", default=None, help="only the tests pytest's -k selects")
    args = parser.parse_args(argv)
    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.burners)]
    for burner in burners:
        burner.start()
    failed: Counter[str] = Counter()
    bad_runs = 0
    started = time.monotonic()
    try:
        for run in range(1, args.runs + 1):
            tests = TESTS + (FENCING if args.fencing else [])
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *tests]
            if args.keyword:
                command += ["-k", args.keyword]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            names = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
            failed.update(names)
            bad_runs += done.returncode != 0
            summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-200:]
            print(f"run {run}/{args.runs}: {summary}", flush=True)
    finally:
        for burner in burners:
            burner.kill()
    minutes = (time.monotonic() - started) / 60
    print(f"{args.runs - bad_runs} of {args.runs} runs passed beside {args.burners} CPU burners ({minutes:.1f} min)")
    for name, count in failed.most_common():
        print(f"  {count}x {name}")
    return 0 if bad_runs == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
