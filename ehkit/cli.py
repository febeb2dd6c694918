"""The ``ehkit`` command: thin calls of ehkit functions that notebooks and tests call too.

Each command is one ``_add_<name>(sub)`` function that declares its arguments and sets
``run``; ``main`` lists them in COMMANDS. Errors meant for a person (EhkitError) print as
one line and exit 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from . import __version__
from .errors import EhkitError


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", help="database file (default: $EHKIT_DB, else data/ehkit.db)")


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-24") from None


# -- ehkit demo ----------------------------------------------------------------------------
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="create a database full of a synthetic Early Help service",
                       description="Generate invented agencies, practitioners, episodes, "
                       "children and audits. The same --seed and --until give the same data.")
    _db_arg(p)
    p.add_argument("--episodes", type=int, default=1500, help="how many episodes (default 1500)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--until", type=_date, help="last day of the data (default: today)")
    p.add_argument("--years", type=int, default=3, help="years of history (default 3)")
    p.add_argument("--audits-per-episode", type=float, default=0.36,
                   help="audits per episode (default 0.36, about 180 a year at 1500 episodes)")
    p.add_argument("--force", action="store_true", help="replace the database if it exists")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from tqdm import tqdm

    from . import db as store
    from . import demo

    path = store.db_path(args.db)
    if path.exists():
        if not args.force:
            raise EhkitError(f"{path} already exists: use --force to replace it, or another --db")
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
    database = store.connect(path)
    with tqdm(total=args.episodes, unit="episode", desc="demo data", disable=None) as bar:
        counts = demo.generate(database, episodes=args.episodes, seed=args.seed, until=args.until,
                               years=args.years, audits_per_episode=args.audits_per_episode,
                               progress=bar.update)
    print(f"{path}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    return 0


COMMANDS = [
    _add_demo,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ehkit",
        description="Early Help case-audit toolkit: audits, selection, reports.",
    )
    parser.add_argument("--version", action="version", version=f"ehkit {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except EhkitError as e:
        print(f"ehkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ehkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
