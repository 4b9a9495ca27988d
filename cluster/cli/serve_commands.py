"""`lfr serve`: the control room (HTTP API, live alert stream and page), and its users and keys.

    lfr serve [--config FILE] [--host 127.0.0.1] [--port 8600] [--photos-dir DIR]
    lfr serve add-user NAME --role operator|supervisor    prints the new key once
    lfr serve new-key NAME                                 another key for NAME, printed once
    lfr serve revoke NAME                                  revokes every key of NAME
    lfr serve users                                        lists users and their active keys

The server uses the configuration's database, audit key and retention; it listens on
127.0.0.1 unless `--host` says otherwise. While it serves, it purges expired alerts on its own
(`cluster.alerts.retention`: once at start, then every `retention.interval_s`), since it is the
process that runs for as long as the records are kept. User changes are audited with the operating-system
user who ran the command (`cli:NAME`).
"""

import argparse
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cluster.alerts.retention import RetentionScheduler
from cluster.alerts.store import AlertStore
from cluster.api.app import create_app
from cluster.api.keys import ApiKeys, IssuedKey, Role, UserError
from cluster.api.photos import FolderWatchlistPhotos
from cluster.api.server import DEFAULT_HOST, DEFAULT_PORT, ApiServer
from cluster.api.services import ControlRoomServices
from cluster.audit.log import AuditLog
from cluster.audit.opening import open_audit_log
from cluster.config import LfrConfig

EXIT_OK = 0
EXIT_FAILED = 2
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def register(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="Serve the control room: HTTP API, live alert stream and page.")
    serve.add_argument(
        "--config", type=Path, default=argparse.SUPPRESS, help="YAML configuration (same as lfr --config)."
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"Address to listen on (default {DEFAULT_HOST}).")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"Port (default {DEFAULT_PORT}).")
    serve.add_argument(
        "--photos-dir",
        type=Path,
        default=None,
        help="Watchlist photos as DIR/<watchlist_id>/<person_id>.jpg (default: none).",
    )
    serve.set_defaults(handler=run_server)
    actions = serve.add_subparsers(dest="serve_action", required=False, metavar="ACTION")

    add_user = actions.add_parser("add-user", help="Add a control-room user and print their first key once.")
    add_user.add_argument("name", help="Login name, such as pc.smith.")
    add_user.add_argument("--role", required=True, choices=[role.value for role in Role])
    add_user.set_defaults(handler=run_add_user)

    new_key = actions.add_parser("new-key", help="Issue another key for a user and print it once.")
    new_key.add_argument("name")
    new_key.set_defaults(handler=run_new_key)

    revoke = actions.add_parser("revoke", help="Revoke every key of a user.")
    revoke.add_argument("name")
    revoke.set_defaults(handler=run_revoke)

    users = actions.add_parser("users", help="List users, their roles and active keys.")
    users.set_defaults(handler=run_users)


def _audit(config: LfrConfig) -> AuditLog:
    return open_audit_log(config.database, config.audit)


def _cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def run_server(args: argparse.Namespace, config: LfrConfig) -> int:
    if not 0 <= args.port <= 65535:
        sys.stderr.write(f"lfr: --port must be within 0..65535, got {args.port}\n")
        return EXIT_FAILED
    try:
        audit = _audit(config)
        services = ControlRoomServices.over(
            AlertStore(audit.database, audit),
            FolderWatchlistPhotos(args.photos_dir),
            config.retention,
            config.deployment,
        )
        server = ApiServer(create_app(services), args.host, args.port)
    except (ValueError, OSError, SQLAlchemyError) as exc:
        sys.stderr.write(f"lfr: cannot start the control room: {exc}\n")
        return EXIT_FAILED
    if not services.keys.users():
        sys.stderr.write(
            "lfr: no users yet, so nobody can sign in: add one with `lfr serve add-user NAME --role ...`\n"
        )
    if args.host not in LOOPBACK_HOSTS:
        sys.stderr.write(
            f"lfr: listening on {args.host}, beyond this machine: the page shows faces, so serve it only behind"
            " TLS (a reverse proxy) on a network you control\n"
        )
    sys.stdout.write(f"control room on {server.url}/ (database {audit.database.describe()})\n")
    sys.stdout.flush()
    retention = RetentionScheduler(services.store, config.retention)
    retention.start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        retention.stop()
    sys.stdout.write("control room stopped\n")
    return EXIT_OK


def _keys(config: LfrConfig) -> ApiKeys:
    return ApiKeys(_audit(config))


def _print_key(issued: IssuedKey) -> None:
    sys.stdout.write(
        f"{issued.token}\n"
        f"key {issued.key_id} for {issued.name} ({issued.role}): shown this once, only its digest is stored;"
        " sign in to the control room with it\n"
    )


def _user_command(action) -> int:
    try:
        return action()
    except (UserError, ValueError, SQLAlchemyError) as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return EXIT_FAILED


def run_add_user(args: argparse.Namespace, config: LfrConfig) -> int:
    def add() -> int:
        _print_key(_keys(config).add_user(args.name, args.role, actor=_cli_actor()))
        return EXIT_OK

    return _user_command(add)


def run_new_key(args: argparse.Namespace, config: LfrConfig) -> int:
    def issue() -> int:
        _print_key(_keys(config).issue_key(args.name, actor=_cli_actor()))
        return EXIT_OK

    return _user_command(issue)


def run_revoke(args: argparse.Namespace, config: LfrConfig) -> int:
    def revoke() -> int:
        count = _keys(config).revoke(args.name, actor=_cli_actor())
        sys.stdout.write(f"revoked {count} key{'s' if count != 1 else ''} of {args.name}\n")
        return EXIT_OK

    return _user_command(revoke)


def run_users(args: argparse.Namespace, config: LfrConfig) -> int:
    def show() -> int:
        for account in _keys(config).users():
            created = datetime.fromtimestamp(account.created_at, UTC).isoformat(timespec="seconds")
            sys.stdout.write(
                f"{account.name:<24} {account.role:<10} {account.active_keys} active key(s)"
                f"  added {created} by {account.created_by}\n"
            )
        return EXIT_OK

    return _user_command(show)
