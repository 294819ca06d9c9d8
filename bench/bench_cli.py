"""The command line every benchmark shares: common options, signals, niceness, clean exit.

A background shell starts us with SIGINT ignored, and SIGTERM would skip cleanup, so both
are turned into exceptions that unwind through every `finally`, stopping our services.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from bench_procs import BenchError, stop_all

DEFAULT_WORKDIR = Path("/tmp/freight-bench")
DEFAULT_RUNS = 3  # the brief's minimum; a median of 3 already drops one outlier


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """The options of every benchmark, with the same defaults."""
    parser.add_argument("--runs", type=_positive, default=DEFAULT_RUNS, help="runs per tool")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR,
                        help="image cache, venvs, docker data (default %(default)s)")
    parser.add_argument("--mirror", help="Debian mirror for debootstrap (default: apt's)")
    parser.add_argument("--quiet-cores", type=float, default=0.5, metavar="N",
                        help="before each run, wait until other processes use < N cores")
    parser.add_argument("--patience", type=float, default=15, metavar="S",
                        help="...but at most S seconds (default %(default)s)")
    parser.add_argument("--nice", type=int, default=-10, metavar="N",
                        help="run everything (dockerd, registries, tools) at this niceness, "
                             "so other work on a shared machine disturbs less; root only "
                             "below 0 (default %(default)s; 0 to leave as is)")
    parser.add_argument("--registry-dir", type=Path, default=Path("/dev/shm"), metavar="DIR",
                        help="parent dir of every registry's storage (default %(default)s: "
                             "tmpfs, so other processes' disk writes do not slow the "
                             "registry; the tools' own temp files stay in their TMPDIR)")
    parser.add_argument("--freight-rev", default="HEAD", metavar="REV",
                        help="git revision of freight to measure, or 'worktree' for the "
                             "editable install (default %(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="also record py-spy profiles of freight (see the report)")


def run_main(prog: str, args: argparse.Namespace,
             session: Callable[[argparse.Namespace], int]) -> int:
    """Run one benchmark session: signals and niceness set, services stopped at the end."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminated)
    if args.nice:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice)  # inherited by every child
        except PermissionError:
            print(f"{prog}: cannot set niceness {args.nice} (not root); running as is",
                  file=sys.stderr)
    try:
        return session(args)
    except BenchError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 1
    finally:
        stop_all()


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)
