"""The tamper suite: each way an insider with database access (but not the key) can attack the audit log, and
`lfr audit verify` catching it.

A log is written as the product writes one (`open_audit_log` over the configuration: the session's
key, the anchor file, an anchor line after each append), then tampered with plain SQL or file
edits, then verified by `lfr audit verify` itself: through `lfr`'s own parser in this process (every
case, on SQLite fast and on PostgreSQL slow), and as the installed `lfr` command in a subprocess
for one attack of each kind on both (slow: each start of `lfr` costs seconds). Each attack must
exit non-zero with a message that names the problem.
"""

import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from cluster.audit.actions import AuditAction
from cluster.audit.anchors import AnchorRecord
from cluster.audit.entry import AuditAnchor, head_payload
from cluster.audit.opening import open_audit_log
from cluster.audit.sealing import Sealer
from cluster.audit.tables import audit_head, audit_log
from cluster.cli.main import build_parser
from cluster.config import load_config
from cluster.database.config import DatabaseConfig
from cluster.database.engine import Database
from loadtest.postgres_server import PostgresServer, find_bin_dir, install_hint
from tests.audit_key import KEY_ENV, TEST_AUDIT_KEY

LFR = Path(sys.executable).parent / "lfr"
"""The console script installed beside this interpreter, as a user would run it."""
ENTRIES = 8
KEPT = 5
"""Entries left after the tail is cut."""
OTHER_KEY = "another-key-that-is-long-enough-0123456789"
COMMAND_TIMEOUT_S = 300


@dataclass(frozen=True)
class Records:
    """A records database, the configuration `lfr` is run with, where that configuration keeps anchors, and the
    head record as it was at entry KEPT (an insider's backup of it)."""

    url: str
    config: Path
    anchors: Path
    older_head: dict

    def database(self) -> Database:
        return Database(self.url)


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    """stdout and stderr together."""


Runner = Callable[[list[str], dict[str, str | None]], Ran]


def as_command(argv: list[str], env: dict[str, str | None]) -> Ran:
    """`lfr` in a subprocess of its own, with the environment changed by `env` (None: unset)."""
    environment = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
    for name in [k for k, v in env.items() if v is None]:
        environment.pop(name, None)
    done = subprocess.run([str(LFR), *argv], capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, env=environment)
    return Ran(done.returncode, done.stdout + done.stderr)


def in_process(argv: list[str], env: dict[str, str | None]) -> Ran:
    """`lfr`'s own parser and handler in this process, with os.environ changed by `env` for the call."""
    saved = {name: os.environ.get(name) for name in env}
    try:
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        args = build_parser().parse_args(argv)
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(out):
            code = args.handler(args, load_config(args.config))
        return Ran(code, out.getvalue())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    if find_bin_dir() is None:
        pytest.skip(f"PostgreSQL is not installed: {install_hint()}")
    with PostgresServer() as server:
        yield server


def make_records(request: pytest.FixtureRequest, backend: str, folder: Path, *, keyed: bool = True) -> Records:
    url = (
        str(folder / "records.sqlite3") if backend == "sqlite" else request.getfixturevalue("postgres").empty_database()
    )
    anchors = folder / "anchors" / "records.audit-anchors"
    anchors.parent.mkdir()
    config = folder / "lfr.yaml"
    config.write_text(
        f"database:\n  url: {url}\naudit:\n  anchor_path: {anchors}\n  anchor_interval_s: 0.001\n"
        f"  require_hmac_key: {'true' if keyed else 'false'}\n"
    )
    records = Records(url, config, anchors, {})
    env: dict[str, str | None] = {} if keyed else {KEY_ENV: None}
    write_entries(records, KEPT, env)
    records.older_head.update(head_row(records))
    write_entries(records, ENTRIES - KEPT, env)
    return records


def write_entries(records: Records, count: int, env: dict[str, str | None]) -> None:
    """Appends as a command of the product makes them; each commit is anchored (the interval is tiny)."""
    saved = {name: os.environ.pop(name, None) for name in env}
    try:
        audit = open_audit_log(DatabaseConfig(url=records.url), load_config(records.config).audit)
        try:
            for index in range(count):
                audit.record("PC 1234 Khan", AuditAction.REQUEST, f"GET /alerts/{index}", {"n": index})
        finally:
            audit.close()
            audit.database.close()
    finally:
        for name, value in saved.items():
            if value is not None:
                os.environ[name] = value


def execute(records: Records, *statements) -> None:
    """Tamper as an insider would: plain SQL, committed."""
    with records.database() as database, database.engine.begin() as connection:
        for statement in statements:
            connection.execute(statement)


def entry(records: Records, seq: int) -> sa.Row:
    with records.database() as database, database.engine.connect() as connection:
        return connection.execute(sa.select(audit_log).where(audit_log.c.seq == seq)).one()


def head_row(records: Records) -> dict:
    with records.database() as database, database.engine.connect() as connection:
        return dict(connection.execute(sa.select(audit_head)).one()._mapping)


def cut_tail_and_recompute_head(records: Records, sealer: Sealer) -> None:
    """Delete the entries after KEPT and rewrite the head to match, sealed as well as the insider can."""
    last = entry(records, KEPT)
    seal = sealer.digest(head_payload(last.seq, last.hash, last.key_id))
    execute(
        records,
        audit_log.delete().where(audit_log.c.seq > KEPT),
        audit_head.update().values(seq=last.seq, hash=last.hash, seal=seal),
    )


def restore_older_head(records: Records) -> None:
    """Rollback: the head record saved at entry KEPT (validly sealed by the writer) put back, later entries deleted."""
    execute(
        records,
        audit_log.delete().where(audit_log.c.seq > KEPT),
        audit_head.update().values(**records.older_head),
    )


def swap_entries(records: Records, first: int, second: int) -> None:
    execute(
        records,
        audit_log.update().where(audit_log.c.seq == first).values(seq=-1),
        audit_log.update().where(audit_log.c.seq == second).values(seq=first),
        audit_log.update().where(audit_log.c.seq == -1).values(seq=second),
    )


def wipe_and_let_a_writer_start_afresh(records: Records) -> None:
    """Drop every table (dropping only the audit tables leaves a database at head with tables missing, which
    every process refuses); the next command that opens the empty database makes a new log with a new genesis."""
    with records.database() as database, database.engine.begin() as connection:
        reflected = sa.MetaData()
        reflected.reflect(connection)
        reflected.drop_all(connection)
    write_entries(records, 1, {})


def edit_anchor_line(records: Records, number: int) -> None:
    lines = records.anchors.read_text().splitlines(keepends=True)
    lines[number - 1] = lines[number - 1].replace('"seq":', '"seq":1', 1)
    records.anchors.write_text("".join(lines))


def forge_anchor_line(records: Records) -> None:
    """An extra line claiming the chain ended at KEPT, sealed as well as the insider can (no key)."""
    with records.anchors.open("a") as file:
        forged = AnchorRecord.sealed(Sealer(OTHER_KEY.encode()), AuditAnchor(KEPT, entry(records, KEPT).hash), 0.0)
        file.write(forged.to_line().replace(forged.key_id, Sealer(TEST_AUDIT_KEY.encode()).key_id))


@dataclass(frozen=True)
class Attack:
    name: str
    tamper: Callable[[Records], None]
    expected: tuple[str, ...]
    """Words the verify output must hold: the problem's name and what it says."""
    extra: tuple[str, ...] = ()
    env: tuple[tuple[str, str | None], ...] = ()
    keyed: bool = True
    code: int = 1


ATTACKS = [
    Attack(
        "delete-all",
        lambda r: execute(r, audit_log.delete(), audit_head.delete()),
        ("FAILED at entry 1 (head_missing)", "the log was wiped"),
    ),
    Attack(
        "drop-tables-and-start-afresh",
        wipe_and_let_a_writer_start_afresh,
        ("FAILED at entry 1 (anchor_mismatch)", "entry 1's hash differs from line 1 of", "the chain was rewritten"),
    ),
    Attack(
        "cut-tail-keyed-head-recomputed",
        lambda r: cut_tail_and_recompute_head(r, Sealer(None)),
        (f"FAILED at entry {KEPT + 1} (head_mismatch)", "is not sealed by HMAC key id", "forged or rewound"),
    ),
    Attack(
        "cut-tail-unkeyed-head-recomputed",
        lambda r: cut_tail_and_recompute_head(r, Sealer(None)),
        (f"FAILED at entry {KEPT + 1} (truncated)", f"reached entry {ENTRIES}, but it ends at entry {KEPT}"),
        extra=("--unkeyed",),
        env=((KEY_ENV, None),),
        keyed=False,
    ),
    Attack(
        "restore-older-sealed-head",
        restore_older_head,
        (f"FAILED at entry {KEPT + 1} (truncated)", "an older head record was restored"),
    ),
    Attack(
        "edit-entry",
        lambda r: execute(r, audit_log.update().where(audit_log.c.seq == 3).values(subject="GET /nothing")),
        ("FAILED at entry 3 (edited)", "entry 3's fields do not match its hash"),
    ),
    Attack(
        "reorder-entries",
        lambda r: swap_entries(r, 4, 5),
        ("FAILED at entry 4 (reordered)", "entries were swapped or moved"),
    ),
    Attack(
        "wrong-key",
        lambda r: None,
        ("FAILED at entry 1 (wrong_key)", "verify with the key the log was written with"),
        env=((KEY_ENV, OTHER_KEY),),
    ),
    Attack(
        "no-key",
        lambda r: None,
        ("LFR_AUDIT_HMAC_KEY is unset", "openssl rand -hex 32"),
        env=((KEY_ENV, None),),
        code=2,
    ),
    Attack(
        "missing-anchor-file",
        lambda r: r.anchors.unlink(),
        ("FAILED (no_anchor_file)", "there is no anchor file at", "--no-anchor-file"),
    ),
    Attack(
        "edited-anchor-line",
        lambda r: edit_anchor_line(r, 3),
        ("FAILED (anchor_forged)", "line 3 of the anchor file", "edited or forged"),
    ),
    Attack(
        "forged-anchor-line",
        forge_anchor_line,
        ("FAILED (anchor_forged)", "of the anchor file", "is not sealed by HMAC key id", "edited or forged"),
    ),
]


COMMAND_ATTACK_NAMES = ("delete-all", "restore-older-sealed-head", "no-key")
"""A wiped log, a rollback and a refusal: the attacks whose verdict also depends on the command's exit path."""


def verify(run: Runner, records: Records, attack: Attack | None = None) -> Ran:
    extra = list(attack.extra) if attack else []
    env = dict(attack.env) if attack else {}
    return run(["--config", str(records.config), "audit", "verify", "--db", records.url, *extra], env)


def check_attack(request: pytest.FixtureRequest, run: Runner, backend: str, folder: Path, attack: Attack) -> None:
    records = make_records(request, backend, folder, keyed=attack.keyed)
    untouched = verify(in_process, records, attack if not attack.keyed else None)  # each `lfr` start costs seconds
    assert untouched.code == 0 and f"ok: {ENTRIES} entries verified" in untouched.out, untouched.out
    attack.tamper(records)
    ran = verify(run, records, attack)
    assert ran.code == attack.code, ran.out
    missing = [words for words in attack.expected if words not in ran.out]
    assert missing == [], ran.out


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_each_attack_is_caught_by_lfr_audit_verify(request, tmp_path, attack):
    check_attack(request, in_process, "sqlite", tmp_path, attack)


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_each_attack_on_postgresql_is_caught_by_lfr_audit_verify(request, tmp_path, attack):
    check_attack(request, in_process, "postgresql", tmp_path, attack)


COMMAND_ATTACKS = [attack for attack in ATTACKS if attack.name in COMMAND_ATTACK_NAMES]


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
@pytest.mark.parametrize("attack", COMMAND_ATTACKS, ids=[a.name for a in COMMAND_ATTACKS])
def test_attacks_are_caught_by_the_installed_lfr_command(request, tmp_path, backend, attack):
    """The console script as a user runs it, for one attack of each kind (each `lfr` start costs 8-25 s here)."""
    check_attack(request, as_command, backend, tmp_path, attack)


def test_no_anchor_file_verifies_only_when_asked_and_says_what_goes_unseen(request, tmp_path):
    records = make_records(request, "sqlite", tmp_path)
    records.anchors.unlink()
    ran = in_process(["--config", str(records.config), "audit", "verify", "--db", records.url, "--no-anchor-file"], {})
    assert ran.code == 0 and "a cut tail or a restored head would not show" in ran.out, ran.out


def test_commands_that_write_the_log_refuse_without_the_key(request, tmp_path):
    records = make_records(request, "sqlite", tmp_path)
    ran = in_process(
        ["--config", str(records.config), "serve", "add-user", "pc.smith", "--role", "operator"], {KEY_ENV: None}
    )
    assert ran.code != 0 and "openssl rand -hex 32" in ran.out, ran.out
    ran = in_process(
        ["--config", str(records.config), "serve", "add-user", "pc.smith", "--role", "operator"], {KEY_ENV: OTHER_KEY}
    )
    assert ran.code != 0 and "this audit log is sealed with HMAC key id" in ran.out, ran.out
