"""The manifest of social-media images to ingest: one JSON object per line.

    {"image": "posts/123.jpg", "platform": "x", "post_id": "123", "url": "https://x.com/a/status/123",
     "posted_at": "2025-06-14T10:32:00+01:00", "place": "Trafalgar Square"}

`image` is a local file, relative to the manifest's folder unless absolute; `posted_at` is ISO
8601 with its UTC offset (a time without one is ambiguous, so it is refused); `place` may be
left out. A bad line is reported with its number and skipped; the good lines are still read.
"""

from dataclasses import dataclass
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, field_validator

from cluster.gallery.records import PLACE_MAX, POST_ID_MAX, URL_MAX, check_id, check_text


class ManifestError(ValueError):
    """The manifest as a whole cannot be read; the message names the file."""


class ManifestLine(BaseModel):
    """One line as written: its fields are checked as the gallery will store them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str
    platform: str
    post_id: str
    url: str
    posted_at: AwareDatetime
    place: str = ""

    @field_validator("image")
    @classmethod
    def _image_named(cls, image: str) -> str:
        if not image.strip():
            raise ValueError("must name an image file")
        return image

    @field_validator("platform")
    @classmethod
    def _platform_is_an_id(cls, platform: str) -> str:
        return check_id(platform, "platform")

    @field_validator("post_id")
    @classmethod
    def _post_id_fits(cls, post_id: str) -> str:
        return check_text(post_id, "post_id", POST_ID_MAX)

    @field_validator("url")
    @classmethod
    def _url_fits(cls, url: str) -> str:
        return check_text(url, "url", URL_MAX)

    @field_validator("place")
    @classmethod
    def _place_fits(cls, place: str) -> str:
        return check_text(place, "place", PLACE_MAX, required=False)


@dataclass(frozen=True)
class ManifestPost:
    """A good line: the image resolved to a path, the time as unix seconds."""

    line: int
    image_path: Path
    platform: str
    post_id: str
    url: str
    posted_at: int
    place: str


@dataclass(frozen=True)
class ManifestProblem:
    """A line (or its image) that was skipped, and why."""

    line: int
    message: str


@dataclass(frozen=True)
class Manifest:
    posts: tuple[ManifestPost, ...]
    problems: tuple[ManifestProblem, ...]


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "line"
        message = str(item["msg"]).removeprefix("Value error, ")
        parts.append(f"{key}: {message}")
    return "; ".join(parts)


def parse_line(number: int, text: str, folder: Path) -> ManifestPost:
    """One line as a post; ValueError with what is wrong (without the line number)."""
    try:
        line = ManifestLine.model_validate_json(text)
    except ValidationError as exc:
        if any(item["type"] == "json_invalid" for item in exc.errors()):
            raise ValueError("not a JSON object; write one object per line") from exc
        raise ValueError(_describe(exc)) from exc
    image = Path(line.image).expanduser()
    return ManifestPost(
        line=number,
        image_path=image if image.is_absolute() else folder / image,
        platform=line.platform,
        post_id=line.post_id,
        url=line.url,
        posted_at=int(line.posted_at.timestamp()),
        place=line.place,
    )


def read_manifest(path: Path) -> Manifest:
    """The manifest's good lines and its problems; blank lines are skipped. ManifestError when unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: no such manifest file") from exc
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc.reason}); write the manifest as UTF-8 JSON lines") from exc
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror})") from exc
    folder = path.resolve().parent
    posts: list[ManifestPost] = []
    problems: list[ManifestProblem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            posts.append(parse_line(number, line, folder))
        except ValueError as exc:
            problems.append(ManifestProblem(number, str(exc)))
    return Manifest(tuple(posts), tuple(problems))
