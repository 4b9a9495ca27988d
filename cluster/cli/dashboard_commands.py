"""`lfr dashboards`: the Grafana dashboards as code (`cluster.observability.dashboards`).

lfr dashboards render DIR                 writes one JSON file per dashboard, for import or provisioning
lfr dashboards push --url URL [--folder UID]   creates or replaces them in a Grafana, with the token
                                          in LFR_GRAFANA_TOKEN (a service account's, Editor role)
"""

import argparse
import os
import sys
from pathlib import Path

from cluster.config import LfrConfig
from cluster.observability.dashboards import DASHBOARDS, GRAFANA_TOKEN_ENV, push, render

EXIT_OK = 0
EXIT_FAILED = 2


def register(commands: argparse._SubParsersAction) -> None:
    dashboards = commands.add_parser("dashboards", help="Grafana dashboards as code: render them or push them.")
    actions = dashboards.add_subparsers(dest="dashboards_command", required=True, metavar="ACTION")
    rendering = actions.add_parser("render", help="Write each dashboard's JSON into a folder.")
    rendering.add_argument("directory", type=Path, help="Folder to write <uid>.json files into (created).")
    rendering.set_defaults(handler=render_dashboards)
    pushing = actions.add_parser(
        "push", help=f"Create or replace the dashboards in a Grafana (token: ${GRAFANA_TOKEN_ENV})."
    )
    pushing.add_argument("--url", required=True, help="The Grafana's base URL, e.g. https://grafana.example:3000.")
    pushing.add_argument("--folder", default=None, help="UID of the Grafana folder to put them in (default: General).")
    pushing.set_defaults(handler=push_dashboards)


def render_dashboards(args: argparse.Namespace, config: LfrConfig) -> int:
    for path in render(args.directory):
        sys.stdout.write(f"{path}\n")
    return EXIT_OK


def push_dashboards(args: argparse.Namespace, config: LfrConfig) -> int:
    token = os.environ.get(GRAFANA_TOKEN_ENV, "")
    if not token:
        sys.stderr.write(
            f"lfr: set {GRAFANA_TOKEN_ENV} to a Grafana service account token with the Editor role"
            " (Administration > Service accounts), then push again\n"
        )
        return EXIT_FAILED
    try:
        from grafana_client.client import GrafanaException
    except ImportError:
        sys.stderr.write(
            "lfr: pushing needs the grafana extra: URLLIB3_NO_OVERRIDE=1 pip install --no-binary urllib3-future"
            " 'lfr-cluster[grafana]' (docs/observability.md says why)\n"
        )
        return EXIT_FAILED
    try:
        pushed = push(args.url, token, args.folder)
    except GrafanaException as exc:
        sys.stderr.write(f"lfr: Grafana at {args.url} refused the dashboards: {exc}\n")
        return EXIT_FAILED
    except OSError as exc:
        sys.stderr.write(f"lfr: could not reach Grafana at {args.url}: {exc}\n")
        return EXIT_FAILED
    for dashboard in pushed:
        sys.stdout.write(f"{dashboard.uid}: version {dashboard.version} at {args.url.rstrip('/')}{dashboard.url}\n")
    sys.stdout.write(f"{len(pushed)} of {len(DASHBOARDS)} dashboards pushed\n")
    return EXIT_OK
