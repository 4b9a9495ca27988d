"""The `purge` action of `lfr alerts` and `lfr cases`: a retention purge that cannot wait for the timer.

    lfr alerts|cases purge [--older-than-days N] [--officer NAME]

Each purges what its retention setting (or `--older-than-days`, at most RETENTION_MAX_DAYS) has expired, keeps
what officers hold, names who ran it in the purge's audit entry and prints what was deleted. Exit status: 0 purged
(and erased from the files); 1 purged, but a reader kept the deleted crops from being erased from the database
files (run it again once the reader has finished); 2 nothing done (bad argument, database or audit log unusable).
"""

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from cluster.alerts.config import RETENTION_MAX_DAYS, SECONDS_PER_DAY
from cluster.audit.log import AuditLogError
from cluster.cli.watchlist_commands import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, add_officer_argument, officer_of
from cluster.config import LfrConfig

PURGE_ERRORS = (ValueError, AuditLogError, SQLAlchemyError, OSError)
"""What a purge may fail with, having purged nothing; each carries a message that says what to do."""


@dataclass(frozen=True)
class PurgeOutcome:
    """What a purge command prints: its summary line, and why the deleted crops may still be on disk (None: erased)."""

    summary: str
    not_erased: str | None


def add_purge_action(
    actions: argparse._SubParsersAction,
    handler: Callable[[argparse.Namespace, LfrConfig], int],
    *,
    summary: str,
    records: str,
    default: str,
) -> None:
    """The `purge` action: --older-than-days N (records: "alerts raised", default: the setting it defaults to)."""
    purge = actions.add_parser("purge", help=summary)
    purge.add_argument(
        "--older-than-days",
        type=float,
        default=None,
        metavar="N",
        help=f"Purge {records} more than N days ago (default {default}; at most {RETENTION_MAX_DAYS}).",
    )
    add_officer_argument(purge)
    purge.set_defaults(handler=handler)


def run_purge(
    args: argparse.Namespace, default_days: float, command: str, purge: Callable[[float, str], PurgeOutcome]
) -> int:
    """Check the days, run `purge(older_than_s, officer)`, print its outcome and say what to do if crops remain."""
    days = default_days if args.older_than_days is None else args.older_than_days
    if not 0 < days <= RETENTION_MAX_DAYS:
        sys.stderr.write(f"lfr: --older-than-days must be within (0, {RETENTION_MAX_DAYS}], got {days:g}\n")
        return EXIT_FAILED
    try:
        outcome = purge(days * SECONDS_PER_DAY, officer_of(args))
    except PURGE_ERRORS as exc:
        sys.stderr.write(f"lfr: nothing purged: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(f"{outcome.summary}\n")
    if outcome.not_erased is not None:
        sys.stderr.write(
            f"lfr: the deleted crops may still be on disk: {outcome.not_erased}; run `{command}` again once the"
            " reader has finished\n"
        )
        return EXIT_REFUSED
    return EXIT_OK


def counted(count: int, noun: str) -> str:
    """'1 alert', '2 alerts'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"
