"""API keys on a real records database: they expire, reserved names are refused, and old keys get a lifetime."""

import time

import pytest
import sqlalchemy as sa

from cluster.api.keys import (
    DEFAULT_KEY_LIFETIME_DAYS,
    RESERVED_USER_NAMES,
    SECONDS_PER_DAY,
    ApiKeys,
    CredentialError,
    Role,
    UserError,
    api_keys,
)
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.database.engine import Database


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keys(database, clock) -> ApiKeys:
    return ApiKeys(AuditLog(database), clock=clock)


@pytest.mark.parametrize("name", sorted(RESERVED_USER_NAMES))
def test_reserved_names_cannot_be_users(keys, name):
    with pytest.raises(UserError, match="reserved"):
        keys.add_user(name, Role.SUPERVISOR, actor="cli:test")
    assert keys.users() == []


def test_a_key_is_refused_once_it_expires(keys, clock):
    issued = keys.add_user("pc.smith", Role.OPERATOR, actor="cli:test")
    assert issued.expires_at == pytest.approx(clock.now + DEFAULT_KEY_LIFETIME_DAYS * SECONDS_PER_DAY)
    assert keys.authenticate(issued.token).name == "pc.smith"
    assert keys.usable([issued.key_id, "0123456789ab"]) == {issued.key_id}
    (account,) = keys.users()
    assert (account.active_keys, account.next_expiry) == (1, issued.expires_at)

    clock.now = issued.expires_at
    with pytest.raises(CredentialError) as refused:
        keys.authenticate(issued.token)
    assert (refused.value.reason, refused.value.key_id) == ("expired key", issued.key_id)
    assert keys.usable([issued.key_id]) == set()
    (account,) = keys.users()
    assert (account.active_keys, account.next_expiry) == (0, None)


def test_the_issuer_chooses_a_lifetime_within_bounds(keys, clock):
    issued = keys.add_user("pc.smith", Role.OPERATOR, actor="cli:test", lifetime_days=7)
    assert issued.expires_at == pytest.approx(clock.now + 7 * SECONDS_PER_DAY)
    renewed = keys.issue_key("pc.smith", actor="cli:test", lifetime_days=30)
    assert keys.users()[0].next_expiry == issued.expires_at
    for days in (0, -1, 10_000):
        with pytest.raises(UserError, match="lifetime"):
            keys.issue_key("pc.smith", actor="cli:test", lifetime_days=days)
    issued_changes = [e.details for e in keys.audit.latest(5) if e.action == AuditAction.ACCESS_CHANGE]
    assert issued_changes[-1] == {"change": "key_issued", "key_id": renewed.key_id, "expires_at": renewed.expires_at}


def test_keys_issued_before_keys_expired_get_a_lifetime_from_their_issue(database, clock):
    audit = AuditLog(database)
    with database.writing() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE api_users (name VARCHAR(64) PRIMARY KEY, role VARCHAR(16) NOT NULL,"
                " created_at FLOAT NOT NULL, created_by VARCHAR NOT NULL)"
            )
        )
        connection.execute(
            sa.text(
                "CREATE TABLE api_keys (key_id VARCHAR(12) PRIMARY KEY, name VARCHAR(64) NOT NULL REFERENCES"
                " api_users (name), digest VARCHAR(64) NOT NULL, created_at FLOAT NOT NULL, created_by VARCHAR NOT"
                " NULL, revoked_at FLOAT, revoked_by VARCHAR)"
            )
        )
        connection.execute(sa.text("INSERT INTO api_users VALUES ('pc.old', 'operator', 0, 'cli:test')"))
        for key_id, age_days in (("0000000000aa", 100), ("0000000000bb", 10)):
            connection.execute(
                sa.text("INSERT INTO api_keys VALUES (:k, 'pc.old', 'x', :at, 'cli:test', NULL, NULL)"),
                {"k": key_id, "at": clock.now - age_days * SECONDS_PER_DAY},
            )
    keys = ApiKeys(audit, clock=clock)
    with database.reading() as connection:
        expiries = dict(connection.execute(sa.select(api_keys.c.key_id, api_keys.c.expires_at)).all())
    assert expiries["0000000000aa"] == pytest.approx(clock.now - 10 * SECONDS_PER_DAY)
    assert keys.usable(expiries) == {"0000000000bb"}
    ApiKeys(audit, clock=clock)  # opening again changes nothing


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
def test_usable_answers_for_many_keys_in_one_go(database, clock):
    keys = ApiKeys(AuditLog(database), clock=clock)
    issued = [keys.add_user(f"pc.user{n}", Role.OPERATOR, actor="cli:test") for n in range(3)]
    keys.revoke("pc.user1", actor="cli:test")
    ids = [key.key_id for key in issued] + [f"{n:012x}" for n in range(1200)]
    assert keys.usable(ids) == {issued[0].key_id, issued[2].key_id}


def test_a_database_of_another_process_sees_the_revocation(database, clock):
    keys = ApiKeys(AuditLog(database), clock=clock)
    issued = keys.add_user("pc.smith", Role.OPERATOR, actor="cli:test")
    with Database(database.url.render_as_string(hide_password=False)) as other:
        ApiKeys(AuditLog(other)).revoke("pc.smith", actor="cli:other")
    assert keys.usable([issued.key_id]) == set()
