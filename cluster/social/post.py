"""`Post`: one social-media post as every export reader yields it, with where it sits in its export.

Both readers (the JSON-lines manifest, `social_manifest`, and a Mastodon account archive,
`social_mastodon`) turn what they read into `Post`s and `PostProblem`s, so the ingest never sees
a raw line or activity. A post's media are local files the caller downloaded: a reader refuses a
media entry that names a remote URL (`refuse_remote`), and nothing here fetches anything.
"""

import enum
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from cluster.gallery.records import PLACE_MAX, POST_ID_MAX, URL_MAX, check_id, check_text, check_time

AUTHOR_MAX = 256
TEXT_MAX = 64 * 1024
"""Bytes of a post's text kept (Mastodon's default is 500 characters; servers may allow more)."""

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class FeedError(ValueError):
    """An export that cannot be read at all; the message names the file and what to do."""


class Unit(enum.StrEnum):
    """What a post's position counts in its export: lines of a manifest, items of an outbox."""

    LINE = "line"
    ITEM = "item"


@dataclass(frozen=True)
class Post:
    """One post: provenance (platform, id, author, url, time, place), its text, and its local media files.

    position: its line (manifest) or item (outbox) number, from 1, for messages and the audit log.
    posted_at: unix seconds. text: plain text (HTML already reduced), "" when the post has none.
    """

    position: int
    platform: str
    post_id: str
    author: str
    url: str
    posted_at: int
    place: str
    text: str
    media: tuple[Path, ...]

    def __post_init__(self) -> None:
        check_id(self.platform, "platform")
        check_text(self.post_id, "post_id", POST_ID_MAX)
        check_text(self.author, "author", AUTHOR_MAX, required=False)
        check_text(self.url, "url", URL_MAX)
        check_time(self.posted_at, "posted_at")
        check_text(self.place, "place", PLACE_MAX, required=False)
        check_text(self.text, "text", TEXT_MAX, required=False)
        if not self.media and not self.text.strip():
            raise ValueError("the post has neither text nor a local media file: nothing to ingest")


@dataclass(frozen=True)
class PostProblem:
    """A post, or one of its media entries, that was skipped, and why."""

    position: int
    message: str


@dataclass(frozen=True)
class Feed:
    """What a reader made of one export: its good posts and its problems, each at its position."""

    source: Path
    format: str
    unit: Unit
    posts: tuple[Post, ...]
    problems: tuple[PostProblem, ...]

    def where(self, position: int) -> str:
        """`SOURCE line 3` or `SOURCE item 3`, the prefix of every message about one post."""
        return f"{self.source} {self.unit} {position}"


def refuse_remote(reference: str, what: str) -> None:
    """ValueError when a media reference is a URL: media are read from local files only, never fetched."""
    if _URL_SCHEME.match(reference):
        raise ValueError(
            f"{what} is a remote URL ({reference}); media are never fetched from the internet: download the file"
            " and give its local path"
        )


def read_export_text(path: Path, what: str) -> str:
    """The UTF-8 text of an export file; FeedError naming the file and what to do when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FeedError(f"{path}: no such {what} file") from exc
    except IsADirectoryError as exc:
        raise FeedError(f"{path}: a folder, not a {what} file") from exc
    except UnicodeDecodeError as exc:
        raise FeedError(f"{path}: not UTF-8 text ({exc.reason}); write the {what} as UTF-8 JSON") from exc
    except OSError as exc:
        raise FeedError(f"{path}: cannot read the {what} ({exc.strerror})") from exc


def describe_validation(error: ValidationError) -> str:
    """`field.path: message; ...` for each error pydantic found, naming the bad field (none for the whole entry)."""
    parts = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{key}: {message}" if key else message)
    return "; ".join(parts)
