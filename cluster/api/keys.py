"""Control-room users and their API keys: who may use the API, in which role.

A key is a random token shown once when it is issued (`lfr serve add-user`); the database
keeps only its SHA-256 digest, which is safe for a 256-bit random secret (no dictionary to
try), so a copy of the database lets nobody in. The token starts with a public key id that
finds its row without scanning, and the digest is compared in constant time.

Keys expire (`ServeConfig.key_lifetime_days` unless the issuer says otherwise), so a key that
was lost and never reported stops working by itself. Why a key was refused (unknown, revoked,
expired) goes to the audit log only: the caller is told the same thing whatever the reason.

Every change to who may get in (a user added, a key issued or revoked) is audited in the same
transaction, as `AuditAction.ACCESS_CHANGE`.
"""

import enum
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from cluster.alerts.lifecycle import SYSTEM_ACTOR_PREFIX
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.control_room.config import DEFAULT_KEY_LIFETIME_DAYS, MAX_KEY_LIFETIME_DAYS
from cluster.database.schema import require_current

TOKEN_PREFIX = "lfr_"
KEY_ID_HEX = 12
SECRET_BYTES = 32
SECONDS_PER_DAY = 86_400
ANONYMOUS = "anonymous"
"""The audit log's actor for requests without an accepted credential."""
RESERVED_USER_NAMES = frozenset({ANONYMOUS, "unknown", "nobody", "cli"})
"""Names the audit log uses for callers that are not users, or that a reader would take for one."""
IDS_PER_QUERY = 500
USER_NAME_PATTERN = r"^[a-z][a-z0-9._-]{1,62}$"
_USER_NAME = re.compile(USER_NAME_PATTERN)
_TOKEN = re.compile(rf"^{TOKEN_PREFIX}(?P<key_id>[0-9a-f]{{{KEY_ID_HEX}}})_(?P<secret>[A-Za-z0-9_-]{{20,100}})$")

metadata = sa.MetaData()

api_users = sa.Table(
    "api_users",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.String, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.String(KEY_ID_HEX), primary_key=True),
    sa.Column("name", sa.String(64), sa.ForeignKey("api_users.name"), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("created_by", sa.String, nullable=False),
    sa.Column("revoked_at", sa.Double),
    sa.Column("revoked_by", sa.String),
    sa.Column("expires_at", sa.Double),
    sa.Index("api_keys_by_name", "name"),
)


class Role(enum.StrEnum):
    """Who a user is to the control room; what each may do is `cluster.api.auth`'s to say.

    operator: view alerts and adjudicate them. supervisor: also holds, purges, deployments' authorisation
    and users. auditor: independent oversight, read-only: alerts with their adjudications, deployments,
    the audit log and who has access; no faces, no live stream, no change of any kind.
    """

    OPERATOR = "operator"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"


class CredentialError(Exception):
    """A request's credential was missing or not accepted; `reason` says which, for the audit log."""

    def __init__(self, reason: str, key_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.key_id = key_id


class UserError(ValueError):
    """A user or key change that cannot be made as asked; the message says why and what to do."""


class UnknownUserError(UserError, LookupError):
    """No user has this name."""


@dataclass(frozen=True)
class Principal:
    """Who made a request: the user and the key they used."""

    name: str
    role: Role
    key_id: str


@dataclass(frozen=True)
class IssuedKey:
    """A new key; `token` exists only here and is never stored."""

    name: str
    role: Role
    key_id: str
    token: str
    expires_at: float


@dataclass(frozen=True)
class ApiUser:
    """A user; active_keys counts keys neither revoked nor expired, the first of which expires at next_expiry."""

    name: str
    role: Role
    created_at: float
    created_by: str
    active_keys: int
    next_expiry: float | None


def check_user_name(name: str) -> str:
    if not _USER_NAME.fullmatch(name or ""):
        raise UserError(
            f"invalid user name {name!r}: use 2-63 lower-case letters, digits, '.', '_' or '-', starting with a letter"
            " (such as pc.smith)"
        )
    if name.startswith(SYSTEM_ACTOR_PREFIX.rstrip(":")):
        raise UserError(f"user names may not start with {SYSTEM_ACTOR_PREFIX.rstrip(':')!r}: that names the system")
    if name in RESERVED_USER_NAMES:
        raise UserError(
            f"{name!r} is reserved: the audit log uses it for callers that are not users; pick a personal name"
        )
    return name


def check_lifetime_days(days: int) -> int:
    if not 1 <= days <= MAX_KEY_LIFETIME_DAYS:
        raise UserError(f"a key's lifetime must be 1..{MAX_KEY_LIFETIME_DAYS} days, got {days}")
    return days


def _digest(token: str) -> str:
    return hashlib.sha256(b"lfr-api-key\0" + token.encode("utf-8")).hexdigest()


class ApiKeys:
    """Users and API keys in the records database; changes audited as ACCESS_CHANGE by `actor`.

    key_lifetime_days: how long a key is accepted when its issuer names no lifetime.
    """

    def __init__(
        self,
        audit: AuditLog,
        *,
        clock: Callable[[], float] = time.time,
        key_lifetime_days: int = DEFAULT_KEY_LIFETIME_DAYS,
    ) -> None:
        self.database = audit.database
        self.audit = audit
        self._clock = clock
        self.key_lifetime_days = check_lifetime_days(key_lifetime_days)
        require_current(self.database)

    def add_user(self, name: str, role: Role | str, *, actor: str, lifetime_days: int | None = None) -> IssuedKey:
        """Create the user with a first key."""
        check_user_name(name)
        role = _role(role)
        now = self._clock()
        expires_at = self._expiry(now, lifetime_days)
        with self.database.writing() as connection:
            if connection.execute(sa.select(api_users.c.name).where(api_users.c.name == name)).first() is not None:
                raise UserError(f"user {name!r} already exists: issue another key with new-key, or pick another name")
            connection.execute(api_users.insert().values(name=name, role=role.value, created_at=now, created_by=actor))
            issued = self._insert_key(connection, name, role, actor, now, expires_at)
            self.audit.append(
                connection,
                actor,
                AuditAction.ACCESS_CHANGE,
                name,
                {"change": "user_added", "role": role.value, "key_id": issued.key_id, "expires_at": expires_at},
            )
        return issued

    def issue_key(self, name: str, *, actor: str, lifetime_days: int | None = None) -> IssuedKey:
        """Another key for an existing user (a new device, after revoking a lost one, or before one expires)."""
        now = self._clock()
        expires_at = self._expiry(now, lifetime_days)
        with self.database.writing() as connection:
            role = Role(self._user_row(connection, name).role)
            issued = self._insert_key(connection, name, role, actor, now, expires_at)
            self.audit.append(
                connection,
                actor,
                AuditAction.ACCESS_CHANGE,
                name,
                {"change": "key_issued", "key_id": issued.key_id, "expires_at": expires_at},
            )
        return issued

    def revoke(self, name: str, *, actor: str) -> int:
        """Revoke every active key of the user; how many were revoked. The user stays, for the records."""
        now = self._clock()
        with self.database.writing() as connection:
            self._user_row(connection, name)
            active = api_keys.c.revoked_at.is_(None)
            key_ids = list(
                connection.execute(sa.select(api_keys.c.key_id).where(api_keys.c.name == name, active)).scalars()
            )
            connection.execute(
                api_keys.update().where(api_keys.c.name == name, active).values(revoked_at=now, revoked_by=actor)
            )
            self.audit.append(
                connection, actor, AuditAction.ACCESS_CHANGE, name, {"change": "keys_revoked", "key_ids": key_ids}
            )
        return len(key_ids)

    def users(self) -> list[ApiUser]:
        usable = _usable(self._clock())
        active = sa.func.count(api_keys.c.key_id).filter(usable)
        next_expiry = sa.func.min(api_keys.c.expires_at).filter(usable)
        query = (
            sa.select(api_users, active.label("active_keys"), next_expiry.label("next_expiry"))
            .select_from(api_users.outerjoin(api_keys, api_keys.c.name == api_users.c.name))
            .group_by(api_users.c.name, api_users.c.role, api_users.c.created_at, api_users.c.created_by)
            .order_by(api_users.c.name)
        )
        with self.database.reading() as connection:
            return [
                ApiUser(row.name, Role(row.role), row.created_at, row.created_by, row.active_keys, row.next_expiry)
                for row in connection.execute(query)
            ]

    def authenticate(self, token: str | None) -> Principal:
        """The principal a bearer token stands for; raises CredentialError saying why it is refused."""
        if not token:
            raise CredentialError("no credential")
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise CredentialError("malformed token")
        key_id = match["key_id"]
        query = (
            sa.select(
                api_keys.c.digest, api_keys.c.revoked_at, api_keys.c.expires_at, api_users.c.name, api_users.c.role
            )
            .select_from(api_keys.join(api_users, api_users.c.name == api_keys.c.name))
            .where(api_keys.c.key_id == key_id)
        )
        with self.database.reading() as connection:
            row = connection.execute(query).one_or_none()
        if row is None or not hmac.compare_digest(row.digest, _digest(token)):
            raise CredentialError("unknown key", key_id)
        if row.revoked_at is not None:
            raise CredentialError("revoked key", key_id)
        if row.expires_at is None or row.expires_at <= self._clock():
            raise CredentialError("expired key", key_id)
        return Principal(row.name, Role(row.role), key_id)

    def usable(self, key_ids: Iterable[str]) -> set[str]:
        """Which of `key_ids` are accepted now (not revoked, not expired): one indexed read per 500 ids.

        Open event streams ask this every poll, so a key revoked by another process (`lfr serve
        revoke`) stops its streams within one poll interval.
        """
        ids = sorted(set(key_ids))
        usable = _usable(self._clock())
        found: set[str] = set()
        with self.database.reading() as connection:
            for start in range(0, len(ids), IDS_PER_QUERY):
                chunk = ids[start : start + IDS_PER_QUERY]
                query = sa.select(api_keys.c.key_id).where(api_keys.c.key_id.in_(chunk), usable)
                found.update(connection.execute(query).scalars())
        return found

    def _expiry(self, now: float, lifetime_days: int | None) -> float:
        days = self.key_lifetime_days if lifetime_days is None else check_lifetime_days(lifetime_days)
        return now + days * SECONDS_PER_DAY

    def _insert_key(
        self, connection: sa.Connection, name: str, role: Role, actor: str, now: float, expires_at: float
    ) -> IssuedKey:
        key_id = secrets.token_hex(KEY_ID_HEX // 2)
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
        connection.execute(
            api_keys.insert().values(
                key_id=key_id, name=name, digest=_digest(token), created_at=now, created_by=actor, expires_at=expires_at
            )
        )
        return IssuedKey(name, role, key_id, token, expires_at)

    def _user_row(self, connection: sa.Connection, name: str) -> sa.Row:
        row = connection.execute(sa.select(api_users).where(api_users.c.name == name)).one_or_none()
        if row is None:
            raise UnknownUserError(f"no user {name!r}: add it first with `lfr serve add-user {name} --role operator`")
        return row


def _usable(now: float) -> sa.ColumnElement[bool]:
    return sa.and_(api_keys.c.revoked_at.is_(None), api_keys.c.expires_at > now)


def _role(value: Role | str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise UserError(f"unknown role {value!r}; use one of {', '.join(Role)}") from None
