"""Every command that changes state (or reveals personal data) leaves its audit entry, and none goes unrecorded.

`CASES` is a table of commands run as an officer runs them, through the parser `lfr` itself
builds (`cluster.cli.main.build_parser`), on a real milvus-lite gallery, real photos and a real
audit log. Each case may first prepare what its command needs (a watchlist, an enrolled person,
a user); the entries its command writes are then checked one by one (action, subject, who),
and their details for anything that could be an embedding. To cover another command, add a
`Case`: its `argv` and `setup` get a `Context` with a watchlist id and a folder of its own.

The attacking tests break the audit log (a trigger makes every append fail, as a read-only or
tampered log would) and check that the change is refused rather than made unrecorded.
"""

import fnmatch
import getpass
import io
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from cluster.application.watchlists import WatchlistService
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog, AuditLogError
from cluster.audit.opening import open_audit_log
from cluster.cli.main import build_parser
from cluster.config import LfrConfig
from cluster.enrolment.expiry import parse_expiry
from cluster.gallery.records import WatchlistEntry
from tests.records import opened_gallery
from tests.test_watchlist_cli import (
    Ran,
    audit_entries,
    audit_head,
    facts,
    holds_no_vector,
    lite_lfr_config,
    photo,
    street_frame,
)

pytestmark = pytest.mark.slow

AUTHORISED_BY = "Supt. A. Example"
OFFICER = "PC 1234 Khan"
BY_OFFICER = ("--officer", OFFICER)
BECAUSE = ("--reason", "Operation Bramble: who was at the scene")
AUTHORISED_INGEST = ("--authorised-by", AUTHORISED_BY, "--reason", "Operation Bramble: who was at the scene")
CLI_USER = f"cli:{getpass.getuser()}"


@pytest.fixture(scope="module")
def lfr_config(tmp_path_factory) -> Iterator[LfrConfig]:
    with lite_lfr_config(tmp_path_factory.mktemp("lfr")) as config:
        yield config


def lfr(config: LfrConfig, *argv: object) -> Ran:
    """Run one command as `lfr` does once its configuration is loaded: `lfr`'s own parser, then the handler."""
    args = build_parser().parse_args([str(arg) for arg in argv])
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = args.handler(args, config)
    return Ran(code, out.getvalue(), err.getvalue())


@dataclass(frozen=True)
class Context:
    """What one case works on: the configuration, a watchlist id and a folder of its own."""

    config: LfrConfig
    watchlist: str
    folder: Path

    def run(self, *argv: object) -> Ran:
        ran = lfr(self.config, *argv)
        assert ran.code == 0, f"setup `{' '.join(map(str, argv))}` failed: {ran.err}"
        return ran

    def create_argv(self) -> list[object]:
        return ["watchlist", "create", self.watchlist, "--authorised-by", AUTHORISED_BY, "--reason", "Wanted",
                "--expires", "+30"]  # fmt: skip

    def create(self) -> None:
        self.run(*self.create_argv())

    def enrol(self) -> None:
        self.create()
        self.run("watchlist", "add", self.watchlist, "Tony_Blair", photo("Tony_Blair", 1))

    def freeze(self) -> None:
        self.enrol()
        self.run("watchlist", "freeze", self.watchlist)

    def manifest(self) -> Path:
        path = self.folder / "manifest.csv"
        path.write_text(f"person_id,photo\nTony_Blair,{photo('Tony_Blair', 1)}\n")
        return path

    def posts(self) -> Path:
        path = self.folder / "posts.jsonl"
        post = {
            "image": str(photo("George_W_Bush", 2)),
            "platform": "x",
            "post_id": self.watchlist,
            "url": f"https://example.org/x/{self.watchlist}",
            "posted_at": "2025-06-14T10:32:00+01:00",
        }
        path.write_text(json.dumps(post) + "\n")
        return path

    def ingest(self) -> None:
        self.run("social", "ingest", self.posts(), *AUTHORISED_INGEST, *BY_OFFICER)

    def add_user(self) -> None:
        self.run("serve", "add-user", self.user, "--role", "operator")

    @property
    def user(self) -> str:
        return f"pc.{self.watchlist.replace('_', '.')}"


@dataclass(frozen=True)
class Expected:
    """One audit entry a command must write; `subject` may name `{watchlist}` and `{user}`."""

    action: AuditAction
    subject: str
    officer: str


@dataclass(frozen=True)
class Case:
    """A command, what must exist before it runs, the exit status it ends with and the entries it writes."""

    name: str
    argv: Callable[[Context], list[object]]
    entries: tuple[Expected, ...]
    setup: Callable[[Context], None] = field(default=lambda context: None)
    code: int = 0


def on_watchlist(action: AuditAction, officer: str = OFFICER) -> tuple[Expected, ...]:
    return (Expected(action, "watchlist:{watchlist}", officer),)


def changed(
    action: AuditAction, subject: str = "watchlist:{watchlist}", officer: str = OFFICER
) -> tuple[Expected, ...]:
    """A change to the gallery: its intent entry before, its outcome entry after."""
    return (Expected(action, subject, officer), Expected(action, subject, officer))


CASES = (
    Case(
        "watchlist create",
        lambda c: [*c.create_argv(), *BY_OFFICER],
        changed(AuditAction.WATCHLIST_CHANGE),
    ),
    Case(
        "watchlist add",
        lambda c: ["watchlist", "add", c.watchlist, "George_W_Bush", photo("George_W_Bush", 1), *BY_OFFICER],
        changed(AuditAction.ENROLMENT),
        setup=Context.create,
    ),
    Case(
        "watchlist add, every photo refused",
        lambda c: ["watchlist", "add", c.watchlist, "nobody", street_frame(c.folder / "street.png")],
        changed(AuditAction.ENROLMENT, officer=AUTHORISED_BY),
        setup=Context.create,
        code=1,
    ),
    Case(
        "watchlist import",
        lambda c: ["watchlist", "import", c.watchlist, "--manifest", c.manifest(), *BY_OFFICER],
        (
            Expected(AuditAction.REQUEST, "watchlist:{watchlist}", OFFICER),
            *changed(AuditAction.ENROLMENT),
            Expected(AuditAction.REQUEST, "watchlist:{watchlist}", OFFICER),
        ),
        setup=Context.create,
    ),
    Case(
        "watchlist import --dry-run",
        lambda c: ["watchlist", "import", c.watchlist, "--manifest", c.manifest(), "--dry-run"],
        on_watchlist(AuditAction.REQUEST, AUTHORISED_BY),
        setup=Context.create,
    ),
    Case(
        "watchlist freeze",
        lambda c: ["watchlist", "freeze", c.watchlist, *BY_OFFICER],
        changed(AuditAction.WATCHLIST_CHANGE),
        setup=Context.enrol,
    ),
    Case(
        "watchlist remove",
        lambda c: ["watchlist", "remove", c.watchlist, "Tony_Blair", *BY_OFFICER],
        changed(AuditAction.WATCHLIST_CHANGE),
        setup=Context.enrol,
    ),
    Case(
        "watchlist purge-expired",
        lambda c: ["watchlist", "purge-expired", *BY_OFFICER],
        changed(AuditAction.PURGE, "watchlist entries"),
    ),
    Case(
        "watchlist list",
        lambda c: ["watchlist", "list", "--json"],
        (Expected(AuditAction.REQUEST, "watchlists", CLI_USER),),
    ),
    Case(
        "watchlist show",
        lambda c: ["watchlist", "show", c.watchlist, *BY_OFFICER],
        on_watchlist(AuditAction.REQUEST),
        setup=Context.create,
    ),
    Case(
        "social ingest",
        lambda c: ["social", "ingest", c.posts(), *AUTHORISED_INGEST, *BY_OFFICER],
        changed(AuditAction.ENROLMENT, "social_media"),
    ),
    Case(
        "social search",
        lambda c: ["social", "search", photo("George_W_Bush", 2), *BY_OFFICER, *BECAUSE],
        (Expected(AuditAction.CASE_OPENED, "case:*", OFFICER), Expected(AuditAction.SEARCH, "social_media", OFFICER)),
        setup=Context.ingest,
    ),
    Case(
        "social delete",
        lambda c: [
            "social",
            "delete",
            "--platform",
            "x",
            "--post",
            c.watchlist,
            "--reason",
            "erasure request",
            *BY_OFFICER,
        ],  # fmt: skip
        changed(AuditAction.PURGE, "social_media"),
        setup=Context.ingest,
    ),
    Case(
        "social purge",
        lambda c: ["social", "purge", *BY_OFFICER],
        changed(AuditAction.PURGE, "social_media"),
    ),
    Case(
        "alerts purge",
        lambda c: ["alerts", "purge", *BY_OFFICER],
        (Expected(AuditAction.PURGE, "alerts", OFFICER), Expected(AuditAction.PURGE, "rejections", OFFICER)),
    ),
    Case(
        "cases purge",
        lambda c: ["cases", "purge", *BY_OFFICER],
        (Expected(AuditAction.PURGE, "cases", OFFICER),),
    ),
    Case(
        "retro",
        lambda c: [
            "retro",
            photo("Tony_Blair", 2),
            "--watchlist",
            c.watchlist,
            "--out",
            c.folder,
            *BY_OFFICER,
            *BECAUSE,
        ],
        (
            Expected(AuditAction.SEARCH, "watchlist:{watchlist}@v1", OFFICER),
            Expected(AuditAction.CASE_OPENED, "case:*", OFFICER),
            Expected(AuditAction.SEARCH, "watchlist:{watchlist}@v1", OFFICER),
        ),
        setup=Context.freeze,
    ),
    Case(
        "serve add-user",
        lambda c: ["serve", "add-user", c.user, "--role", "operator"],
        (Expected(AuditAction.ACCESS_CHANGE, "{user}", CLI_USER),),
    ),
    Case(
        "serve new-key",
        lambda c: ["serve", "new-key", c.user],
        (Expected(AuditAction.ACCESS_CHANGE, "{user}", CLI_USER),),
        setup=Context.add_user,
    ),
    Case(
        "serve revoke",
        lambda c: ["serve", "revoke", c.user],
        (Expected(AuditAction.ACCESS_CHANGE, "{user}", CLI_USER),),
        setup=Context.add_user,
    ),
)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_each_command_writes_its_audit_entries_naming_who_did_what(lfr_config, tmp_path, case):
    context = Context(lfr_config, f"trail_{CASES.index(case)}", tmp_path)
    case.setup(context)
    start = audit_head(lfr_config)
    ran = lfr(lfr_config, *case.argv(context))
    assert ran.code == case.code, ran.err
    written = audit_entries(lfr_config, start, intents=True)
    wanted = [
        (expected.action, expected.subject.format(watchlist=context.watchlist, user=context.user), expected.officer)
        for expected in case.entries
    ]
    assert len(written) == len(wanted) and all(
        (e.action, e.actor) == (action, officer) and fnmatch.fnmatchcase(e.subject, subject)
        for e, (action, subject, officer) in zip(written, wanted)
    ), [(e.action, e.subject, e.actor) for e in written]
    assert all(holds_no_vector(dict(entry.details)) for entry in written)
    phases = [entry.details.get("phase") for entry in written]
    assert phases.count("intent") == phases.count("outcome"), "every intent has its outcome"


@contextmanager
def audit_log_refusing_appends(config: LfrConfig) -> Iterator[None]:
    """The audit log as a read-only or tampered database leaves it: every new entry is refused."""
    with sqlite3.connect(config.database.url) as database:
        database.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log"
            " BEGIN SELECT RAISE(ABORT, 'audit log is read-only'); END"
        )
    try:
        yield
    finally:
        with sqlite3.connect(config.database.url) as database:
            database.execute("DROP TRIGGER refuse_audit")


def test_no_watchlist_change_is_made_when_the_audit_log_cannot_be_written(lfr_config, tmp_path):
    context = Context(lfr_config, "unrecorded", tmp_path)
    context.create()
    start = audit_head(lfr_config)
    with audit_log_refusing_appends(lfr_config):
        added = lfr(lfr_config, "watchlist", "add", "unrecorded", "Tony_Blair", photo("Tony_Blair", 1))
        frozen = lfr(lfr_config, "watchlist", "freeze", "unrecorded")
        created = lfr(lfr_config, *Context(lfr_config, "never_created", tmp_path).create_argv())
    for ran in (added, frozen, created):
        assert ran.code == 2 and "audit log is read-only" in ran.err, ran
    with opened_gallery(lfr_config) as gallery:
        assert gallery.watchlists.count("unrecorded") == 0, "enrolled without an audit entry"
        assert gallery.watchlists.versions("unrecorded") == [], "frozen without an audit entry"
        assert "never_created" not in {w.watchlist_id for w in gallery.watchlists.all()}
    assert audit_entries(lfr_config, start, intents=True) == []


def unit_vector(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return vector / np.linalg.norm(vector)


def prepared_entries(people: int) -> list[WatchlistEntry]:
    """Entries as the demo enrols them: faces embedded elsewhere, handed to the service ready to store."""
    return [
        WatchlistEntry(f"person_{n}", f"Person {n}", "wanted", "demo", OFFICER, unit_vector(n)) for n in range(people)
    ]


@contextmanager
def watchlist_service(config: LfrConfig) -> Iterator[tuple[WatchlistService, AuditLog]]:
    audit = open_audit_log(config.database, config.audit)
    with opened_gallery(config) as gallery:
        yield WatchlistService(gallery, audit, config), audit


def test_prepared_entries_are_enrolled_with_one_entry_of_counts(lfr_config):
    with watchlist_service(lfr_config) as (service, audit):
        service.create("prepared", name="prepared", reason="Wanted", authorised_by=AUTHORISED_BY,
                       expires_at=parse_expiry("+30"))  # fmt: skip
        start = audit.head().seq
        enrolment = service.enrol_entries("prepared", prepared_entries(3), officer=OFFICER)
        assert service.gallery.watchlists.count("prepared") == 3
    (entry,) = audit_entries(lfr_config, start)
    assert (entry.action, entry.subject, entry.actor) == (AuditAction.ENROLMENT, "watchlist:prepared", OFFICER)
    assert facts(entry) == {"people": 3, "entries": 3, "batch": enrolment.batch}


def test_the_service_refuses_prepared_entries_when_the_audit_log_cannot_be_written(lfr_config):
    with watchlist_service(lfr_config) as (service, audit):
        service.create("refused_entries", name="refused_entries", reason="Wanted", authorised_by=AUTHORISED_BY,
                       expires_at=parse_expiry("+30"))  # fmt: skip
        start = audit.head().seq
        with audit_log_refusing_appends(lfr_config), pytest.raises(Exception, match="audit log is read-only"):
            service.enrol_entries("refused_entries", prepared_entries(2), officer=OFFICER)
        assert service.gallery.watchlists.count("refused_entries") == 0
    assert audit_entries(lfr_config, start, intents=True) == []


def test_a_missing_head_record_stops_the_change_before_it_is_made(lfr_config):
    """A log whose head record was deleted cannot say where its chain ends; appending to it is refused."""
    with watchlist_service(lfr_config) as (service, audit):
        service.create("headless", name="headless", reason="Wanted", authorised_by=AUTHORISED_BY,
                       expires_at=parse_expiry("+30"))  # fmt: skip
        with sqlite3.connect(lfr_config.database.url) as database:
            head = database.execute("SELECT id, seq, hash, seal, key_id FROM audit_head").fetchone()
            database.execute("DELETE FROM audit_head")
        try:
            with pytest.raises(AuditLogError, match="head record is missing"):
                service.enrol_entries("headless", prepared_entries(1), officer=OFFICER)
        finally:
            with sqlite3.connect(lfr_config.database.url) as database:
                database.execute("INSERT INTO audit_head (id, seq, hash, seal, key_id) VALUES (?, ?, ?, ?, ?)", head)
        assert service.gallery.watchlists.count("headless") == 0
