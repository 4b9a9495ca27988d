"""Following a growing export: only whole lines are read, a partial last line waits for its newline, the offset is
kept, a shrunken file is refused; a folder's post files are each read once, a file still being written waits."""

import hashlib
import io
import json
import os
from collections.abc import Sequence
from contextlib import redirect_stderr
from pathlib import Path

import numpy as np
import pytest
import ray
import sqlalchemy as sa

from cluster.application.audited import AuditedOperation
from cluster.application.social import SOCIAL_SUBJECT
from cluster.application.social_watch import resume_point
from cluster.audit.actions import AuditAction
from cluster.audit.log import AuditLog
from cluster.cli.main import build_parser
from cluster.config import LfrConfig
from cluster.database.engine import Database
from cluster.social.follow import (
    SETTLE_S,
    FolderFollower,
    Follower,
    ManifestFollower,
    Polled,
    ReadUpTo,
    follower_for,
)
from cluster.social.post import FeedError
from cluster.social.watch import RetriedFaceFinder
from cluster.vision.face import Face


def line(post_id: str, text: str = "we march at noon") -> str:
    return json.dumps(
        {
            "platform": "x",
            "post_id": post_id,
            "url": f"https://x.example/a/{post_id}",
            "posted_at": "2026-12-07T10:00:00+00:00",
            "text": text,
        }
    )


def read(follower: Follower) -> Polled:
    """A poll whose every post was processed: all it read marked read, as a watch's successful step does."""
    polled = follower.poll()
    follower.commit()
    return polled


def test_a_manifest_is_read_line_by_line_as_it_grows_and_a_partial_line_waits(tmp_path):
    feed = tmp_path / "feed.jsonl"
    follower = ManifestFollower(feed, clock=lambda: 100.0)
    assert read(follower).posts == (), "a manifest not written yet is waited for"
    whole, partial = line("1") + "\n", line("2")
    feed.write_text(whole + partial[:20])
    first = read(follower)
    assert [seen.post.post_id for seen in first.posts] == ["1"] and first.problems == ()
    assert first.backlog_bytes == 20 and follower.offset == len(whole.encode())
    assert read(follower).posts == (), "the partial line is not read, nor reported, until its newline arrives"
    with feed.open("a") as file:
        file.write(partial[20:] + "\n" + "{not json\n\n" + line("4") + "\n")
    second = read(follower)
    assert [(seen.post.position, seen.post.post_id) for seen in second.posts] == [(2, "2"), (5, "4")]
    assert [problem.position for problem in second.problems] == [3]
    assert "not a JSON object" in second.problems[0].message
    assert {seen.seen_at for seen in second.posts} == {100.0}


def test_a_manifest_that_shrinks_is_refused_with_what_to_do(tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text(line("1") + "\n" + line("2") + "\n")
    follower = ManifestFollower(feed)
    assert len(read(follower).posts) == 2
    feed.write_text(line("3") + "\n")
    with pytest.raises(FeedError, match="shrank .* start a new watch on the new file"):
        read(follower)


def test_a_folder_reads_each_post_file_once_and_waits_for_one_still_written(tmp_path):
    clock = [1000.0]
    follower = FolderFollower(tmp_path, clock=lambda: clock[0])
    (tmp_path / "a.json").write_text(line("1"))
    (tmp_path / "b.json").write_text(line("2")[:15])
    os.utime(tmp_path / "b.json", (clock[0], clock[0]))
    (tmp_path / "photo.jpg").write_bytes(b"not a post")
    first = read(follower)
    assert [seen.post.post_id for seen in first.posts] == ["1"] and first.problems == ()
    clock[0] += SETTLE_S + 1
    late = read(follower)
    assert late.posts == () and [problem.message.split(":")[0] for problem in late.problems] == ["b.json"]
    (tmp_path / "c.json").write_text(line("3"))
    assert [seen.post.post_id for seen in read(follower).posts] == ["3"]
    assert read(follower).posts == ()


def test_posts_not_committed_are_read_again_and_a_commit_keeps_the_rest(tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text(line("1") + "\n{not json\n" + line("3") + "\n" + line("4") + "\n")
    follower = ManifestFollower(feed)
    failed = follower.poll()
    assert [seen.post.post_id for seen in failed.posts] == ["1", "3", "4"] and follower.offset == 0
    again = follower.poll()
    assert [(seen.post.position, seen.post.post_id) for seen in again.posts] == [(1, "1"), (3, "3"), (4, "4")]
    follower.commit(2)
    assert follower.line == 3 and follower.offset == len((line("1") + "\n{not json\n" + line("3") + "\n").encode())
    rest = follower.poll()
    assert [(seen.post.position, seen.post.post_id) for seen in rest.posts] == [(4, "4")] and rest.problems == ()

    folder = tmp_path / "posts"
    folder.mkdir()
    for name, post_id in (("a", "1"), ("b", "2"), ("c", "3")):
        (folder / f"{name}.json").write_text(line(post_id))
    files = FolderFollower(folder)
    assert [seen.post.post_id for seen in files.poll().posts] == ["1", "2", "3"]
    files.commit(1)
    second = files.poll()
    assert [(seen.post.position, seen.post.post_id) for seen in second.posts] == [(2, "2"), (3, "3")]
    files.commit(1)
    files.commit()
    assert files.poll().posts == () and files.items == 3


def test_a_face_finder_that_fails_is_retried_and_one_that_keeps_failing_fails_the_step():
    images = [np.zeros((4, 4, 3), np.uint8)]
    calls = []

    def flaky(batch: Sequence[np.ndarray], /) -> list[list[Face]]:
        calls.append(len(batch))
        if len(calls) == 1:
            raise TimeoutError("the face service did not answer in 60 s")
        return [[] for _ in batch]

    assert RetriedFaceFinder(flaky, attempts=3, first_wait_s=0.0)(images) == [[]] and calls == [1, 1]

    def down(batch: Sequence[np.ndarray], /) -> list[list[Face]]:
        calls.append(len(batch))
        raise TimeoutError("the face service did not answer in 60 s")

    calls.clear()
    with pytest.raises(TimeoutError, match="did not answer"):
        RetriedFaceFinder(down, attempts=3, first_wait_s=0.0)(images)
    assert calls == [1, 1, 1]


def record_watch(audit: AuditLog, source: Path, read: ReadUpTo | None) -> None:
    """A watch of `source` audited as `SocialWatchRun` audits one: its intent, then its outcome with how far it read."""
    operation = AuditedOperation(audit, "DS Patel", AuditAction.ENROLMENT, SOCIAL_SUBJECT, {"source": str(source)})
    operation.done({"source": str(source.resolve()), **({} if read is None else {"read_up_to": read.details()})})


def test_a_second_watch_of_a_manifest_reads_only_its_new_posts_and_a_replaced_one_from_the_start(tmp_path):
    feed = tmp_path / "feed.jsonl"
    first_two = line("1") + "\n" + line("2") + "\n"
    feed.write_text(first_two)
    said: list[str] = []
    with Database(tmp_path / "audit.sqlite3") as database:
        audit = AuditLog(database)
        assert resume_point(audit, feed, said.append) == (None, {}) and said == [], "never watched: from the start"
        first = ManifestFollower(feed)
        assert len(read(first).posts) == 2
        record_watch(audit, feed, first.read_up_to())
        record_watch(audit, tmp_path / "other.jsonl", ReadUpTo(1, 1, "0" * 64))
        record_watch(audit, feed, None)

        with feed.open("a") as file:
            file.write(line("3") + "\n")
        start, intent = resume_point(audit, feed, said.append)
        assert start == ReadUpTo(len(first_two.encode()), 2, hashlib.sha256(first_two.encode()).hexdigest())
        assert intent == {"resumes_from": start.details()} and said == [
            f"resuming after line 2 (byte {start.offset}), where the last watch of {feed} stopped"
        ]
        second = ManifestFollower(feed)
        assert second.resume(start)
        assert [(seen.post.position, seen.post.post_id) for seen in read(second).posts] == [(3, "3")]

        replaced = line("7") + "\n" + line("8") + "\n"
        assert len(replaced) == len(first_two)
        feed.write_text(replaced + line("9") + "\n")
        said.clear()
        assert resume_point(audit, feed, said.append) == (
            None,
            {"resume_refused": {**start.details(), "why": "the manifest's first bytes changed"}},
        )
        assert said == [
            f"{feed} no longer begins with the {start.offset} bytes the last watch of it read (replaced or rewritten):"
            " reading it from the beginning"
        ]
        third = ManifestFollower(feed)
        assert not third.resume(start)
        assert [seen.post.post_id for seen in read(third).posts] == ["7", "8", "9"]
        assert resume_point(audit, tmp_path, said.append) == (None, {}), "a folder is read from its first file"


def test_the_resume_point_reads_only_the_social_ingests_entries_newest_first_through_their_index(tmp_path):
    """Regression: every enrolment entry of the audit log, which is kept for ever, was read at each watch's start."""
    feed = tmp_path / "feed.jsonl"
    feed.write_text(line("1") + "\n")
    with Database(tmp_path / "audit.sqlite3") as database:
        audit = AuditLog(database)
        first = ManifestFollower(feed)
        read(first)
        record_watch(audit, feed, first.read_up_to())
        for number in range(60):
            record_watch(audit, tmp_path / f"other-{number}.jsonl", ReadUpTo(1, 1, "0" * 64))
        audit.record("DS Patel", AuditAction.ENROLMENT, "watchlist:wanted", {"source": str(feed.resolve())})
        reads: list[tuple[str, object]] = []

        def seen(connection, cursor, statement, parameters, context, executemany):
            if statement.lstrip().startswith("SELECT") and "FROM audit_log" in statement:
                reads.append((statement, parameters))

        sa.event.listen(database.engine, "before_cursor_execute", seen)
        try:
            assert resume_point(audit, feed, lambda said: None)[0] == first.read_up_to()
        finally:
            sa.event.remove(database.engine, "before_cursor_execute", seen)
        assert len(reads) == 2, "122 social-media entries: a page of 100 newest first, then the rest"
        with database.engine.connect() as connection:
            for statement, parameters in reads:
                assert "audit_log.subject = " in statement and "ORDER BY audit_log.seq DESC" in statement, statement
                plan = str(connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all())
                assert "USING INDEX audit_log_by_action_subject" in plan, plan


def test_a_source_that_cannot_be_followed_is_refused_naming_what_can(tmp_path):
    with pytest.raises(FeedError, match="JSON-lines manifest .* or a folder of post files"):
        follower_for(tmp_path / "outbox.json")
    with pytest.raises(FeedError, match="does not exist"):
        follower_for(tmp_path / "missing" / "feed.jsonl")
    assert isinstance(follower_for(tmp_path / "feed.jsonl"), ManifestFollower)
    assert isinstance(follower_for(tmp_path), FolderFollower)


def watch(*argv: object) -> tuple[int, str]:
    args = build_parser().parse_args(["social", "watch", *map(str, argv)])
    err = io.StringIO()
    with redirect_stderr(err):
        code = args.handler(args, LfrConfig())
    return code, err.getvalue()


AUTHORISED = ("--watchlist", "wanted", "--authorised-by", "Supt. A. Example", "--reason", "Operation Bramble")


def test_lfr_social_watch_refuses_what_it_cannot_follow_before_starting_anything(tmp_path):
    code, err = watch(tmp_path / "outbox.json", *AUTHORISED)
    assert code == 2 and "a watch follows a JSON-lines manifest (.jsonl or .ndjson" in err
    code, err = watch(tmp_path / "feed.jsonl", *AUTHORISED, "--duration", "0")
    assert code == 2 and "--duration is seconds > 0" in err
    assert not ray.is_initialized()
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()):
        build_parser().parse_args(["social", "watch", str(tmp_path), *AUTHORISED, "--once", "--duration", "5"])
    with pytest.raises(SystemExit), redirect_stderr(io.StringIO()):
        build_parser().parse_args(["social", "watch", str(tmp_path), "--authorised-by", "A", "--reason", "R"])
