"""The authorisation a search that opens a case needs on the command line: `--officer NAME --reason TEXT`.

Both are required and neither falls back to the operating-system user: the case records who
answers for the search and why it was necessary. A missing one is refused before anything is
read or written, with a message that says what to pass.
"""

import argparse
import sys

from cluster.cases.model import AuthorisationError, CaseAuthorisation


def add_authorisation_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--officer",
        default=None,
        metavar="NAME",
        help=f"The officer who runs {what} and answers for it (name, rank); required, recorded with the case.",
    )
    parser.add_argument(
        "--reason",
        default=None,
        metavar="TEXT",
        help=f"Why {what} is necessary (the investigation, its reference); required, recorded with the case.",
    )


def authorisation_of(args: argparse.Namespace) -> CaseAuthorisation | None:
    """The search's authorisation, or None after saying on stderr what to pass."""
    try:
        return CaseAuthorisation(args.officer, args.reason)
    except AuthorisationError as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return None
