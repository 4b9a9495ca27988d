"""Reading a Mastodon account archive: the ActivityStreams 2.0 outbox Mastodon exports, and its media files.

Mastodon's "Request your archive" gives a .tar.gz which, extracted, holds:

    outbox.json         an OrderedCollection; `orderedItems` are the account's activities
    actor.json          the account (preferredUsername, id), optional here
    media_attachments/  the files of the account's own attachments

Each post is a `Create` activity whose `object` is a `Note` (a `Question` for a poll): `id`,
`published` (ISO 8601), `url`, `attributedTo` (the account's URI), `content` (HTML), `summary`
(the content warning, or null) and `attachment`, a list of `Document`s with `mediaType` and
`url`. In the archive an attachment's `url` is the file's path inside the archive folder (the
server's `/system/` prefix removed); an attachment that names a remote URL is refused with a
message to download it, never fetched. A `location` `Place` (name, or latitude and longitude),
which ActivityStreams defines and other servers send, becomes the post's place. A boost
(`Announce`) holds only the address of another account's post, so it is skipped, as is any
activity that is not a post; each skip names the item and why. The author handle is
`@preferredUsername@host` from actor.json, else from `attributedTo`.
"""

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from cluster.social.post import (
    Feed,
    FeedError,
    Post,
    PostProblem,
    Unit,
    describe_validation,
    read_export_text,
    refuse_remote,
)
from cluster.social.text import html_to_text

FORMAT = "mastodon"
PLATFORM = "mastodon"
OUTBOX = "outbox.json"
ACTOR = "actor.json"
POST_TYPES = frozenset({"Note", "Question", "Article", "Page"})
PACKED_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class _Attachment(_Entry):
    type: str
    media_type: str = Field("", alias="mediaType")
    url: str | None = None


class _Place(_Entry):
    name: str = ""
    latitude: float | None = None
    longitude: float | None = None

    def describe(self) -> str:
        if self.name.strip():
            return self.name.strip()
        if self.latitude is not None and self.longitude is not None:
            return f"{self.latitude:.6f}, {self.longitude:.6f}"
        return ""


class _Note(_Entry):
    id: str
    type: str
    published: AwareDatetime
    url: str | None = None
    attributed_to: str = Field("", alias="attributedTo")
    content: str | None = ""
    summary: str | None = None
    attachment: list[_Attachment] = []
    location: _Place | list[_Place] | None = None

    def place(self) -> str:
        places = self.location if isinstance(self.location, list) else [self.location] if self.location else []
        return "; ".join(found for found in (place.describe() for place in places) if found)

    def text(self) -> str:
        body = html_to_text(self.content or "")
        warning = (self.summary or "").strip()
        return f"{warning}\n\n{body}".strip() if warning else body


class _Create(_Entry):
    object: _Note


def outbox_path(path: Path) -> Path:
    """The outbox.json of an extracted archive folder, or the file itself; FeedError for a packed archive."""
    if path.is_dir():
        return path / OUTBOX
    if path.name.endswith(PACKED_SUFFIXES):
        raise FeedError(
            f"{path}: a packed archive; extract it first (tar xzf {path.name} -C FOLDER) and give the folder"
        )
    return path


def read_archive(path: Path) -> Feed:
    """The posts of an extracted Mastodon archive (its folder or its outbox.json) and the items skipped."""
    outbox = outbox_path(path)
    folder = outbox.resolve().parent
    collection = _json_document(outbox, "outbox")
    items = collection.get("orderedItems") if isinstance(collection, dict) else None
    if not isinstance(items, list):
        raise FeedError(
            f"{outbox}: no orderedItems list; give the outbox.json of a Mastodon archive (an ActivityStreams"
            " OrderedCollection)"
        )
    handle = _account_handle(folder / ACTOR)
    posts: list[Post] = []
    problems: list[PostProblem] = []
    for number, item in enumerate(items, start=1):
        try:
            post, skipped = _post(number, item, folder, handle)
        except ValueError as exc:
            problems.append(PostProblem(number, str(exc)))
            continue
        posts.append(post)
        problems.extend(skipped)
    return Feed(outbox, FORMAT, Unit.ITEM, tuple(posts), tuple(problems))


def _json_document(path: Path, what: str) -> Any:
    text = read_export_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FeedError(f"{path}: not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc


def _account_handle(actor_path: Path) -> tuple[str, str] | None:
    """(the actor's URI, `@name@host`) from actor.json, or None when the archive has none."""
    if not actor_path.exists():
        return None
    actor = _json_document(actor_path, "actor")
    name, uri = (actor.get("preferredUsername"), actor.get("id")) if isinstance(actor, dict) else (None, None)
    if not isinstance(name, str) or not isinstance(uri, str) or not urlparse(uri).hostname:
        raise FeedError(f"{actor_path}: needs preferredUsername and an id URL naming the account's server")
    return uri, f"@{name}@{urlparse(uri).hostname}"


def _author(attributed_to: str, handle: tuple[str, str] | None) -> str:
    if handle is not None and attributed_to in ("", handle[0]):
        return handle[1]
    address = urlparse(attributed_to)
    parts = address.path.strip("/").split("/")
    if address.hostname and len(parts) == 2 and parts[0] == "users":
        return f"@{parts[1]}@{address.hostname}"
    return attributed_to


def _post(number: int, item: object, folder: Path, handle: tuple[str, str] | None) -> tuple[Post, list[PostProblem]]:
    if not isinstance(item, dict):
        raise ValueError(f"not an activity object but {type(item).__name__}")
    kind = item.get("type")
    if kind == "Announce":
        raise ValueError("a boost (Announce) of another post: the archive holds only its address, not its content")
    if kind != "Create":
        raise ValueError(f"an activity of type {kind!r}, not a post (Create)")
    target = item.get("object")
    if not isinstance(target, dict):
        raise ValueError("object: the post itself is not in the archive, only a reference to it")
    if target.get("type") not in POST_TYPES:
        raise ValueError(f"object.type: {target.get('type')!r} is not a post ({', '.join(sorted(POST_TYPES))})")
    try:
        note = _Create.model_validate(item).object
    except ValidationError as exc:
        raise ValueError(describe_validation(exc)) from exc
    media: list[Path] = []
    problems: list[PostProblem] = []
    for index, attachment in enumerate(note.attachment):
        try:
            media.append(_media_file(attachment, index, folder))
        except ValueError as exc:
            problems.append(PostProblem(number, str(exc)))
    try:
        post = Post(
            position=number,
            platform=PLATFORM,
            post_id=note.id,
            author=_author(note.attributed_to, handle),
            url=note.url or note.id,
            posted_at=int(note.published.timestamp()),
            place=note.place(),
            text=note.text(),
            media=tuple(media),
        )
    except ValueError as exc:
        raise ValueError("; ".join([problem.message for problem in problems] + [str(exc)])) from exc
    return post, problems


def _media_file(attachment: _Attachment, index: int, folder: Path) -> Path:
    """The local file of one attachment; ValueError (naming it) for a link, a non-image, a URL or a path outside."""
    what = f"object.attachment.{index}"
    if attachment.url is None:
        raise ValueError(f"{what}: a {attachment.type} without a file (a link preview); not read")
    if attachment.media_type and not attachment.media_type.startswith("image/"):
        raise ValueError(f"{what}: {attachment.media_type} is not an image; only images are searched for faces")
    refuse_remote(attachment.url, f"{what}.url")
    file = (folder / attachment.url.lstrip("/")).resolve()
    if not file.is_relative_to(folder):
        raise ValueError(f"{what}.url: {attachment.url} lies outside the archive folder {folder}; not read")
    return file
