"""`lfr social watch`'s run on the session's real Ray cluster: a synthetic protest feed, written by this test from real
lfw10 faces and short texts (some offensive), appended to a JSON-lines file while the watch's actor follows it through
the real face service, milvus-lite gallery and text classifier.

What it must show: the lag from a post to its lead (p99, printed), the posts flagged, the leads per watchlist person,
no lead for an unflagged post (even one showing a watchlist person's face), every lead audited with the authorisation
it ran under, the watch's figures exported as Prometheus metrics, and a purge past the retention rule removing
every post, face and case.
"""

import hashlib
import json
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from ray import serve

from cluster.application.ray_runtime import start_ray
from cluster.application.social import IngestAuthorisation, SocialService
from cluster.application.social_watch import SocialWatchRun, WatchSettings
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.cases.store import CaseStore
from cluster.cli.watchlist_commands import gallery_service
from cluster.config import LfrConfig
from cluster.database.engine import Database
from cluster.enrolment.expiry import DAY_S
from cluster.social.leads import LEAD_KIND
from cluster.social.records import SocialPostRecords
from cluster.social.watch import WatchProgress
from loadtest.machine import describe_machine
from tests.audit_key import TEST_SEALER
from tests.records import opened_gallery
from tests.test_watchlist_cli import audit_entries, audit_head, create, lfr, lite_lfr_config, photo
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

AUTHORISED_BY = "Supt. A. Example"
REASON = "Operation Bramble: offensive posts about the march on 7 December"
OFFICER = "DS Patel"
ENROLLED = {"Tony_Blair": "Tony Blair", "George_W_Bush": "George W Bush"}
WAIT_S = 90.0
"""For the face service to deploy and a post to be processed, on an idle machine (stretched by load)."""

OFFENSIVE = "fuck the police, absolute scum"
CALM = "lovely turnout at the north gate, thank you all"
FEED = [
    # (photo or None, text, whether the text is offensive)
    (("Tony_Blair", 3), f"{OFFENSIVE}, see you at the barriers", True),
    (("Tony_Blair", 7), CALM, False),
    (("George_W_Bush", 2), "these coppers are fucking pigs", True),
    (("Colin_Powell", 2), "shut up you stupid bastards", True),
    (("George_W_Bush", 9), "we demand an inquiry into what happened at the station", False),
    (None, "the mayor can go fuck himself", True),
    (("Tony_Blair", 3), "bring bottles, smash the shit out of them", True),
    (("Hugo_Chavez", 2), CALM, False),
]
"""Post by post: a watchlist face in offensive posts (leads) and in calm ones (no lead), an unlisted face in an
offensive post (no lead), a text-only offensive post (flagged, nothing to search)."""


@pytest.fixture(scope="module")
def lfr_config(tmp_path_factory) -> Iterator[LfrConfig]:
    with lite_lfr_config(tmp_path_factory.mktemp("lfr")) as config:
        create(config, "wanted")
        for person, label in ENROLLED.items():
            added = lfr(config, "watchlist", "add", "wanted", person, photo(person, 1), "--label", label)
            assert added.code == 0, added.err
        yield config


@pytest.fixture(scope="module")
def face_service(ray_session) -> Iterator[None]:
    yield
    serve.shutdown()


class Collected:
    """What the watch reported, step by step, from its thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: WatchProgress | None = None
        self.done_at: dict[str, float] = {}
        self.steps = 0

    def __call__(self, progress: WatchProgress) -> None:
        with self.lock:
            self.last = progress
            self.steps += 1
            self.done_at.update((done.url, done.processed_at) for done in progress.done)

    def posts(self) -> int:
        with self.lock:
            return 0 if self.last is None else self.last.posts


def post_line(number: int, image: Path | None, text: str) -> str:
    fields: dict[str, object] = {
        "platform": "x",
        "post_id": str(number),
        "url": f"https://x.example/marcher/status/{number}",
        "posted_at": datetime.now(UTC).isoformat(),
        "author": f"@marcher{number}",
        "text": text,
    }
    if image is not None:
        fields["image"] = f"media/{image.name}"
    return json.dumps(fields) + "\n"


def flagged_exported(port: int) -> float:
    """`lfr_social_posts_total{outcome="flagged"}` as the Ray metrics agent serves it (summed over its series)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("ray_lfr_social_posts_total{") and 'outcome="flagged"' in line
    )


def test_a_protest_feed_streamed_into_the_watch_gives_leads_for_flagged_posts_only(
    lfr_config, face_service, ray_session, tmp_path, request
):
    folder = tmp_path / "feed"
    (folder / "media").mkdir(parents=True)
    feed = folder / "posts.jsonl"
    start = audit_head(lfr_config)
    collected = Collected()
    stopping = threading.Event()
    failures: list[BaseException] = []
    settings = WatchSettings(feed, ("wanted",), IngestAuthorisation(AUTHORISED_BY, REASON), OFFICER)

    with gallery_service(lfr_config, SocialWatchRun) as run:
        run.start(settings)
        ((version, threshold),) = run.versions
        assert version == "wanted@v1" and threshold > 0

        def watching() -> None:
            try:
                run.run(stopping, collected)
            except BaseException as exc:
                failures.append(exc)

        thread = threading.Thread(target=watching, name="social-watch")
        thread.start()
        written_at: dict[str, float] = {}
        try:
            for number, (face, text, _) in enumerate(FEED, start=1):
                image = None
                if face is not None:
                    image = folder / "media" / f"{number}-{photo(*face).name}"
                    shutil.copy(photo(*face), image)
                line = post_line(number, image, text)
                with feed.open("a") as file:
                    if number == 4:
                        file.write(line[:30])  # a writer caught mid-line: the watch waits for the rest
                        file.flush()
                        wait_for(lambda: collected.posts() >= 3, WAIT_S, "the posts before the partial line")
                        over = collected.steps + 2
                        wait_for(lambda over=over: collected.steps >= over, WAIT_S, "two steps over the partial line")
                        assert collected.posts() == 3 and collected.last is not None
                        assert collected.last.skipped == 0, "a partial line is waited for, not an error"
                        file.write(line[30:])
                    else:
                        file.write(line)
                written_at[f"https://x.example/marcher/status/{number}"] = time.time()
                wait_for(lambda n=number: collected.posts() >= n or failures, WAIT_S, f"post {number} processed")
            wait_for(
                lambda: flagged_exported(ray_session.metrics_port) == 5, WAIT_S, "the flagged posts exported as metrics"
            )
        finally:
            stopping.set()
            thread.join(timeout=WAIT_S)
            final = run.stop(failures[0] if failures else None)
        assert not failures, failures
    assert final is not None

    flagged = [number for number, (_, _, offensive) in enumerate(FEED, start=1) if offensive]
    assert final.posts == len(FEED) and final.skipped == 0
    assert final.flagged == len(flagged), "each offensive text flagged, no calm one"
    assert final.faces == sum(face is not None for face, _, _ in FEED) + 1, "and the bystander in Bush_0009"
    assert final.leads_per_person == {"Tony_Blair": 2, "George_W_Bush": 1}

    database = Database(lfr_config.database.url)
    cases = CaseStore(database, AuditLog(database, TEST_SEALER, create=False))
    opened = cases.list()
    assert len(opened) == final.leads == 3
    lead_posts = {case.provenance.sources[0] for case in opened}
    assert lead_posts == {f"https://x.example/marcher/status/{n}" for n in (1, 3, 7)}
    for case in opened:
        assert (case.authorisation.officer, case.authorisation.reason) == (AUTHORISED_BY, REASON)
        assert case.provenance.query_digest and case.provenance.threshold == pytest.approx(threshold)
        for item in case.items:
            assert item.score >= threshold and item.person_id in ENROLLED and item.has_crop
    unflagged = {f"https://x.example/marcher/status/{n}" for n, (_, _, bad) in enumerate(FEED, start=1) if not bad}
    assert not lead_posts & unflagged, "a watchlist face in an unflagged post gave a lead"

    lags = np.array([case.opened_at - written_at[case.provenance.sources[0]] for case in opened])
    assert np.all(lags > 0)
    lag_p99 = float(np.percentile(lags, 99))
    processed = np.array([collected.done_at[url] - written_at[url] for url in written_at])
    plugins = request.config.pluginmanager
    with plugins.get_plugin("capturemanager").global_and_fixture_disabled():
        plugins.get_plugin("terminalreporter").write_line(
            f"\nsocial watch on {describe_machine()}: {final.posts} posts, {final.flagged} flagged, {final.leads} leads"
            f" {dict(sorted(final.leads_per_person.items()))}; post written -> lead p99 {lag_p99:.2f} s"
            f" (max {lags.max():.2f} s); post written -> processed p50 {np.percentile(processed, 50):.2f} s"
            f" p99 {np.percentile(processed, 99):.2f} s; watch's own lag from post time p99"
            f" {final.lag_from_post_p99_s:.2f} s, from export p99 {final.lag_from_seen_p99_s:.2f} s"
        )
    assert lag_p99 < 30.0, "a lead is meant within seconds of the post"

    entries = audit_entries(lfr_config, start)
    ingest = [e for e in entries if e.action is AuditAction.ENROLMENT and e.subject == "social_media"]
    assert len(ingest) == 1
    outcome = ingest[0].details
    assert (ingest[0].actor, outcome["posts"], outcome["flagged"], outcome["leads"]) == (
        OFFICER,
        len(FEED),
        len(flagged),
        3,
    )
    whole = feed.read_bytes()
    assert outcome["source"] == str(feed.resolve()) and outcome["read_up_to"] == {
        "offset": len(whole),
        "line": len(FEED),
        "sha256": hashlib.sha256(whole).hexdigest(),
    }, "the watch records how far it read, for a later watch to resume from"
    ingest_id = outcome["ingest_id"]
    leads = [e for e in entries if e.action is AuditAction.SEARCH and e.details.get("kind") == LEAD_KIND]
    assert sorted(e.details["case_id"] for e in leads) == sorted(case.case_id for case in opened)
    for entry in leads:
        assert (entry.actor, entry.details["reason"], entry.details["ingest_id"]) == (AUTHORISED_BY, REASON, ingest_id)
        assert entry.subject == f"watchlist:{version}"
    intents = audit_entries(lfr_config, start, intents=True)
    intent = next(e for e in intents if e.subject == "social_media" and e.details.get("format") == "watch")
    assert (intent.details["authorised_by"], intent.details["reason"]) == (AUTHORISED_BY, REASON)
    assert intent.details["leads_against"] == [{"version": version, "threshold": round(threshold, 6)}]

    with opened_gallery(lfr_config) as gallery:
        assert gallery.social.count() == final.faces
        assert [w.entry_count for w in gallery.watchlists.versions("wanted")] == [2], "nobody was enrolled"
        past_retention = time.time() + lfr_config.gallery.social.retention_days * DAY_S + 1
        audit = AuditLog(database, TEST_SEALER, create=False)
        purged = SocialService(gallery, audit, lfr_config, clock=lambda: past_retention).purge_expired(officer=OFFICER)
        assert (purged.faces, purged.posts) == (final.faces, len(FEED))
        assert gallery.social.count() == 0
    assert SocialPostRecords(database).posts(now=0) == []
    case_retention_s = lfr_config.retention.case_days * DAY_S
    purged_cases = cases.purge(case_retention_s, now=time.time() + case_retention_s + 1)
    assert purged_cases.cases == 3 and cases.list() == ()


def test_lfr_social_watch_once_processes_what_the_export_holds_and_says_what_it_found(
    lfr_config, face_service, ray_session, tmp_path
):
    """The command itself, joined to the session's cluster: one pass over a written feed, its summary on stdout."""
    (tmp_path / "media").mkdir()
    feed = tmp_path / "posts.jsonl"
    lines = []
    for number, (face, text) in enumerate([(("Tony_Blair", 7), OFFENSIVE), (("George_W_Bush", 2), CALM)], start=1):
        image = tmp_path / "media" / photo(*face).name
        shutil.copy(photo(*face), image)
        lines.append(post_line(number, image, text))
    feed.write_text("".join(lines))
    try:
        ran = lfr(
            lfr_config,
            "social", "watch", feed, "--watchlist", "wanted", "--authorised-by", AUTHORISED_BY, "--reason", REASON,
            "--officer", OFFICER, "--once", "--ray-address", ray_session.address,
        )  # fmt: skip
    finally:
        start_ray(ray_session.address)  # the command leaves the cluster when it ends; this module's tests stay on it
    assert ran.code == 0, ran.err
    summary, *persons = ran.out.splitlines()
    assert summary.startswith("2 posts (1 flagged, 0 skipped), 2 faces, 1 leads (1 candidates)"), summary
    assert persons == ["  Tony_Blair: 1 lead"]
    assert "lfr: watching" in ran.err and "wanted@v1 at" in ran.err
