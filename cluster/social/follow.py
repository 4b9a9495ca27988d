"""Following a growing export: the new posts of an append-only JSON-lines manifest, or of a folder of post files.

    a .jsonl / .ndjson file   lines of the manifest format (`social_manifest`), appended as posts arrive;
                              the byte offset read up to is kept, and a last line without its newline is
                              a line still being written: it is read once its newline arrives, never
                              reported as an error
    a folder                  one post per `*.json` file, in the manifest's line format (media named
                              relative to the folder); each file is read once, in name order; a file that
                              is not yet whole JSON is waited for while it is younger than SETTLE_S

A poll moves nothing on by itself: the watch `commit`s the first posts of the last poll once they
are stored (or all it read, problems included), so posts whose processing failed are read again
by the next poll, never lost. A file replaced by a shorter one (rotated, truncated) is refused
with what to do: an append-only export never shrinks, and reading it again from the start would
ingest its posts twice. Each poll says when it saw what it read (`seen_at`): the time a post
reached the export, as near as the follower can tell, from which the watch measures its lag.
"""

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cluster.social.manifest import parse_line
from cluster.social.post import FeedError, Post, PostProblem, Unit

SETTLE_S = 5.0
"""A folder's post file that is still not whole JSON this long after it was last written is reported and skipped."""
READ_LIMIT_BYTES = 4 * 1024 * 1024
"""Most bytes of a manifest read in one poll; the rest waits for the next."""
MANIFEST_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class ReadUpTo:
    """How far a watch read a manifest: the byte offset and line it marked read, and a SHA-256 of the bytes before."""

    offset: int
    line: int
    sha256: str

    def details(self) -> dict[str, object]:
        return {"offset": self.offset, "line": self.line, "sha256": self.sha256}


def prefix_sha256(path: Path, size: int) -> str | None:
    """The SHA-256 (hex) of the first `size` bytes of `path`; None when it is missing or shorter."""
    digest = hashlib.sha256()
    left = size
    try:
        with path.open("rb") as file:
            while left:
                chunk = file.read(min(left, READ_LIMIT_BYTES))
                if not chunk:
                    return None
                digest.update(chunk)
                left -= len(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


@dataclass(frozen=True)
class SeenPost:
    """A post the follower read, and when (unix seconds) it first saw it in the export."""

    post: Post
    seen_at: float


@dataclass(frozen=True)
class Polled:
    """What one poll found: new posts and the problems of new lines or files, each at its position."""

    posts: tuple[SeenPost, ...]
    problems: tuple[PostProblem, ...]
    backlog_bytes: int
    """Bytes of the manifest written but not yet read (a folder: 0)."""


class ManifestFollower:
    """Reads the lines appended to a JSON-lines manifest since the last poll."""

    unit = Unit.LINE

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.offset = 0
        self.line = 0
        self._marks: list[tuple[int, int]] = []
        """Of the last poll: (offset, line) after each post it read, then after all it read."""
        self._folder = path.resolve().parent
        self._clock = clock

    def poll(self) -> Polled:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return Polled((), (), 0)
        if size < self.offset:
            raise FeedError(
                f"{self.path} shrank from {self.offset} to {size} bytes while it was followed: the export must only"
                " grow; start a new watch on the new file (its posts would otherwise be ingested twice)"
            )
        if size == self.offset:
            return Polled((), (), 0)
        with self.path.open("rb") as file:
            file.seek(self.offset)
            chunk = file.read(READ_LIMIT_BYTES)
        seen_at = self._clock()
        whole = chunk[: chunk.rfind(b"\n") + 1]
        posts: list[SeenPost] = []
        problems: list[PostProblem] = []
        self._marks = []
        offset, number = self.offset, self.line
        for raw in whole.splitlines(keepends=True):
            offset += len(raw)
            number += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(PostProblem(number, f"not UTF-8 text ({exc.reason}); write the manifest as UTF-8"))
                continue
            if not text.strip():
                continue
            try:
                post, skipped = parse_line(number, text.rstrip("\r\n"), self._folder)
            except ValueError as exc:
                problems.append(PostProblem(number, str(exc)))
                continue
            posts.append(SeenPost(post, seen_at))
            problems.extend(skipped)
            self._marks.append((offset, number))
        self._marks.append((offset, number))
        return Polled(tuple(posts), tuple(problems), size - offset)

    def commit(self, posts: int | None = None) -> None:
        """Mark read the first `posts` posts of the last poll and the lines before them; all it read when None."""
        if self._marks and posts != 0:
            self.offset, self.line = self._marks[-1 if posts is None else posts - 1]

    def read_up_to(self) -> ReadUpTo | None:
        """How far the manifest is marked read, with the digest of its bytes up to there, for a later watch to
        resume from; None when the manifest is gone or no longer holds those bytes."""
        digest = prefix_sha256(self.path, self.offset)
        return None if digest is None else ReadUpTo(self.offset, self.line, digest)

    def resume(self, read: ReadUpTo) -> bool:
        """Start after what an earlier watch read, when the manifest still begins with the bytes it read."""
        if prefix_sha256(self.path, read.offset) != read.sha256:
            return False
        self.offset, self.line, self._marks = read.offset, read.line, []
        return True


class FolderFollower:
    """Reads the post files (`*.json`, one post each) added to a folder since the last poll."""

    unit = Unit.ITEM

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.items = 0
        self._read: set[str] = set()
        self._clock = clock
        self._new: list[str] = []
        """Of the last poll: the files it read, in order."""
        self._marks: list[int] = []
        """Of the last poll: how many of `_new` each post ends, then all of them."""
        self._committed = 0
        """How many of `_new` are committed."""

    def poll(self) -> Polled:
        posts: list[SeenPost] = []
        problems: list[PostProblem] = []
        self._new, self._marks, self._committed = [], [], 0
        for file in sorted(self.path.glob("*.json")):
            if file.name in self._read:
                continue
            try:
                text = file.read_text(encoding="utf-8")
                written_at = file.stat().st_mtime
            except (OSError, UnicodeDecodeError):
                continue  # still being written, or gone again: looked at on the next poll
            seen_at = self._clock()
            number = self.items + len(self._new) + 1
            try:
                post, skipped = parse_line(number, text.strip(), self.path)
            except ValueError as exc:
                if "not a JSON object" in str(exc) and seen_at - written_at < SETTLE_S:
                    continue
                self._new.append(file.name)
                problems.append(PostProblem(number, f"{file.name}: {exc}"))
                continue
            self._new.append(file.name)
            posts.append(SeenPost(post, seen_at))
            problems.extend(PostProblem(number, f"{file.name}: {p.message}") for p in skipped)
            self._marks.append(len(self._new))
        self._marks.append(len(self._new))
        return Polled(tuple(posts), tuple(problems), 0)

    def commit(self, posts: int | None = None) -> None:
        """Mark read the first `posts` posts of the last poll and the files before them; all it read when None."""
        if not self._marks or posts == 0:
            return
        upto = self._marks[-1 if posts is None else posts - 1]
        read = self._new[self._committed : upto]
        self._read.update(read)
        self.items += len(read)
        self._committed = max(self._committed, upto)


Follower = ManifestFollower | FolderFollower


def follower_for(path: Path, clock: Callable[[], float] = time.time) -> Follower:
    """The follower for `path`: a folder of post files, or a JSON-lines manifest (which may not exist yet)."""
    if path.is_dir():
        return FolderFollower(path, clock)
    if path.suffix in MANIFEST_SUFFIXES:
        if not path.parent.is_dir():
            raise FeedError(f"{path}: its folder {path.parent} does not exist; create it or name another file")
        return ManifestFollower(path, clock)
    raise FeedError(
        f"{path}: a watch follows a JSON-lines manifest (.jsonl or .ndjson, appended to) or a folder of post files"
        " (*.json, one post each); name one of those"
    )
