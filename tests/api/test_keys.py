"""API keys on a real records database: they expire, reserved names are refused, and old keys get a lifetime."""

import time

import pytest

from cluster.api.keys import (
    DEFAULT_KEY_LIFETIME_DAYS,
    RESERVED_USER_NAMES,
    SECONDS_PER_DAY,
    ApiKeys,
    CredentialError,
    Role,
    UserError,
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
