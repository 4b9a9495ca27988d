"""`lfr`: the command-line entry point; each command group lives in its own module."""

import argparse
import sys
from pathlib import Path

from cluster.audit.log import AuditLogError
from cluster.cli import (
    alerts_commands,
    audit_commands,
    camera_commands,
    cases_commands,
    crowd_commands,
    dashboard_commands,
    db_commands,
    demo_commands,
    evaluate_commands,
    loadtest_commands,
    report_commands,
    retro_commands,
    run_commands,
    serve_commands,
    social_commands,
    vision_commands,
    watchlist_commands,
)
from cluster.config import ConfigError, load_config
from cluster.database.schema import SchemaError
from cluster.logging_setup import configure_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lfr", description="lfr-cluster: live and retrospective facial recognition.")
    parser.add_argument("--config", type=Path, default=None, help="YAML configuration (default: built-in).")
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"], help="stderr log level."
    )
    parser.add_argument("--log-json", action="store_true", help="Log events to stderr as JSON lines.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    vision_commands.register(commands)
    crowd_commands.register(commands)
    camera_commands.register(commands)
    run_commands.register(commands)
    audit_commands.register(commands)
    db_commands.register(commands)
    demo_commands.register(commands)
    loadtest_commands.register(commands)
    serve_commands.register(commands)
    alerts_commands.register(commands)
    cases_commands.register(commands)
    watchlist_commands.register(commands)
    social_commands.register(commands)
    retro_commands.register(commands)
    evaluate_commands.register(commands)
    dashboard_commands.register(commands)
    report_commands.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, json=args.log_json)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return 2
    try:
        return int(args.handler(args, config))
    except (AuditLogError, SchemaError) as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
