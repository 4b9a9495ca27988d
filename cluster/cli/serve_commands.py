"""`lfr serve`: the control room (HTTP API, live alert stream and page), and its users and keys.

    lfr serve [--config FILE] [--host 127.0.0.1] [--port 8600] [--photos-dir DIR] [--trusted-proxy ADDR ...]
    lfr serve add-user NAME --role operator|supervisor|auditor [--expires-in-days N]   prints the new key once
    lfr serve new-key NAME [--expires-in-days N]           another key for NAME, printed once
    lfr serve revoke NAME                                  revokes every key of NAME (open streams end too)
    lfr serve users                                        lists users, their active keys and when they expire
    lfr serve record-deployment                            writes the configured deployment into the public
                                                           records (a planned one, before it runs)

The server uses the configuration's database, audit key, retention and `serve` section; it
listens on 127.0.0.1 unless `--host` says otherwise, and believes X-Forwarded-For only from the
proxies `--trusted-proxy` (or serve.trusted_proxies) names. While it serves, it purges expired
alerts on its own (`cluster.alerts.retention`: once at start, then every `retention.interval_s`),
since it is the process that runs for as long as the records are kept, and writes the audit
chain's head to its anchor file on a timer. Officers' social searches from the page (POST
/social/search) run on the configuration's gallery, opened for each search as `lfr social` opens it
(`cluster.api.social_search`), so serve with the same configuration, as the same user, as
`lfr social ingest`. It writes its configured deployment, if any, into the deployment records
that /public/ lists (`cluster.deployment.records`). Keys expire after serve.key_lifetime_days
unless `--expires-in-days` says otherwise. User changes are audited with the operating-system
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
from cluster.api.social_search import SocialSearches
from cluster.audit.log import AuditLog, AuditLogError
from cluster.audit.opening import open_audit_log
from cluster.config import LfrConfig
from cluster.control_room.config import ServeConfig
from cluster.deployment.records import DeploymentRecords

EXIT_OK = 0
EXIT_FAILED = 2
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
EXPIRY_HELP = "Days the key is accepted (default: serve.key_lifetime_days in the configuration)."


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
    serve.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="A reverse proxy (address or network) whose X-Forwarded-For names the client; repeat for several."
        " Added to serve.trusted_proxies. Default: none, so no forwarding header is believed.",
    )
    serve.set_defaults(handler=run_server)
    actions = serve.add_subparsers(dest="serve_action", required=False, metavar="ACTION")

    add_user = actions.add_parser("add-user", help="Add a control-room user and print their first key once.")
    add_user.add_argument("name", help="Login name, such as pc.smith.")
    add_user.add_argument("--role", required=True, choices=[role.value for role in Role])
    add_user.add_argument("--expires-in-days", type=int, default=None, help=EXPIRY_HELP)
    add_user.set_defaults(handler=run_add_user)

    new_key = actions.add_parser("new-key", help="Issue another key for a user and print it once.")
    new_key.add_argument("name")
    new_key.add_argument("--expires-in-days", type=int, default=None, help=EXPIRY_HELP)
    new_key.set_defaults(handler=run_new_key)

    revoke = actions.add_parser("revoke", help="Revoke every key of a user.")
    revoke.add_argument("name")
    revoke.set_defaults(handler=run_revoke)

    users = actions.add_parser("users", help="List users, their roles and active keys.")
    users.set_defaults(handler=run_users)

    record = actions.add_parser(
        "record-deployment", help="Write the configured deployment into the public deployment records (planned ones)."
    )
    record.set_defaults(handler=run_record_deployment)


def _audit(config: LfrConfig) -> AuditLog:
    return open_audit_log(config.database, config.audit)


def _cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def run_server(args: argparse.Namespace, config: LfrConfig) -> int:
    if not 0 <= args.port <= 65535:
        sys.stderr.write(f"lfr: --port must be within 0..65535, got {args.port}\n")
        return EXIT_FAILED
    try:
        proxies = (*config.serve.trusted_proxies, *args.trusted_proxy)
        serve = ServeConfig.model_validate({**config.serve.model_dump(), "trusted_proxies": proxies})
        audit = _audit(config)
        services = ControlRoomServices.over(
            AlertStore(audit.database, audit),
            FolderWatchlistPhotos(args.photos_dir),
            config.retention,
            config.deployment,
            serve,
            SocialSearches(config, audit),
        )
        if config.deployment is not None:
            DeploymentRecords(audit).record(config.deployment, actor=_cli_actor())
        server = ApiServer(create_app(services), args.host, args.port, serve.trusted_proxies)
    except (ValueError, OSError, SQLAlchemyError, AuditLogError) as exc:
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
    retention = RetentionScheduler(services.store, config.retention, cases=services.cases)
    retention.start()
    if audit.anchors is not None:
        audit.anchors.start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        retention.stop()
        audit.close()
    sys.stdout.write("control room stopped\n")
    return EXIT_OK


def _keys(config: LfrConfig) -> ApiKeys:
    return ApiKeys(_audit(config), key_lifetime_days=config.serve.key_lifetime_days)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def _print_key(issued: IssuedKey) -> None:
    sys.stdout.write(
        f"{issued.token}\n"
        f"key {issued.key_id} for {issued.name} ({issued.role}): shown this once, only its digest is stored;"
        f" sign in to the control room with it until {_when(issued.expires_at)}\n"
    )


def _user_command(action) -> int:
    try:
        return action()
    except (UserError, ValueError, AuditLogError, SQLAlchemyError) as exc:
        sys.stderr.write(f"lfr: {exc}\n")
        return EXIT_FAILED


def run_add_user(args: argparse.Namespace, config: LfrConfig) -> int:
    def add() -> int:
        issued = _keys(config).add_user(args.name, args.role, actor=_cli_actor(), lifetime_days=args.expires_in_days)
        _print_key(issued)
        return EXIT_OK

    return _user_command(add)


def run_new_key(args: argparse.Namespace, config: LfrConfig) -> int:
    def issue() -> int:
        _print_key(_keys(config).issue_key(args.name, actor=_cli_actor(), lifetime_days=args.expires_in_days))
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
            expiry = "" if account.next_expiry is None else f", next expires {_when(account.next_expiry)}"
            sys.stdout.write(
                f"{account.name:<24} {account.role:<10} {account.active_keys} active key(s){expiry}"
                f"  added {_when(account.created_at)} by {account.created_by}\n"
            )
        return EXIT_OK

    return _user_command(show)


def run_record_deployment(args: argparse.Namespace, config: LfrConfig) -> int:
    def record() -> int:
        deployment = config.deployment
        if deployment is None:
            raise ValueError("the configuration has no `deployment:` section: give --config the deployment's file")
        recorded = DeploymentRecords(_audit(config)).record(deployment, actor=_cli_actor())
        sys.stdout.write(f"deployment {deployment.id}: {recorded} in the public deployment records\n")
        return EXIT_OK

    return _user_command(record)
