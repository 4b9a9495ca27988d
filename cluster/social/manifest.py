"""The JSON-lines manifest of social-media posts to ingest: one JSON object per line, one post per line.

    {"image": "posts/123.jpg", "platform": "x", "post_id": "123", "url": "https://x.com/a/status/123",
     "posted_at": "2025-06-14T10:32:00+01:00", "place": "Trafalgar Square",
     "author": "@someone", "text": "what the post says"}

`image` is a local file, relative to the manifest's folder unless absolute; `images` (a list)
names several instead. A remote URL is refused: media are downloaded by the caller, never
fetched here. `posted_at` is ISO 8601 with its UTC offset (a time without one is ambiguous, so it
is refused). `place`, `author` and `text` may be left out, and so may the image of a post whose
text alone is to be triaged. A bad line is reported with its number and the field at fault and
skipped; the good lines are still read.
"""

from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError, model_validator

from cluster.social.post import (
    Feed,
    Post,
    PostProblem,
    Unit,
    describe_validation,
    read_export_text,
    refuse_remote,
)

FORMAT = "jsonl"


class ManifestLine(BaseModel):
    """One line as written; the fields are checked as they will be stored when the `Post` is made."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    image: str | None = None
    images: list[str] | None = None
    platform: str
    post_id: str
    url: str
    posted_at: AwareDatetime
    place: str = ""
    author: str = ""
    text: str = ""

    @model_validator(mode="after")
    def _one_way_to_name_images(self) -> "ManifestLine":
        if self.image is not None and self.images is not None:
            raise ValueError("give image or images, not both")
        if any(not name.strip() for name in self.named_images()):
            raise ValueError("an image must name a file")
        return self

    def named_images(self) -> list[str]:
        return [self.image] if self.image is not None else list(self.images or ())


def parse_line(number: int, text: str, folder: Path) -> tuple[Post, list[PostProblem]]:
    """One line as a post, with the problems of any image skipped; ValueError saying what is wrong with the line."""
    try:
        line = ManifestLine.model_validate_json(text)
    except ValidationError as exc:
        if any(item["type"] == "json_invalid" for item in exc.errors()):
            raise ValueError("not a JSON object; write one object per line") from exc
        raise ValueError(describe_validation(exc)) from exc
    media: list[Path] = []
    problems: list[PostProblem] = []
    for name in line.named_images():
        try:
            refuse_remote(name, f"image {name!r}")
        except ValueError as exc:
            problems.append(PostProblem(number, str(exc)))
            continue
        image = Path(name).expanduser()
        media.append(image if image.is_absolute() else folder / image)
    try:
        post = Post(
            position=number,
            platform=line.platform,
            post_id=line.post_id,
            author=line.author,
            url=line.url,
            posted_at=int(line.posted_at.timestamp()),
            place=line.place,
            text=line.text,
            media=tuple(media),
        )
    except ValueError as exc:
        raise ValueError("; ".join([problem.message for problem in problems] + [str(exc)])) from exc
    return post, problems


def read_manifest(path: Path) -> Feed:
    """The manifest's good lines as posts, and its problems; blank lines are skipped. FeedError when unreadable."""
    text = read_export_text(path, "manifest")
    folder = path.resolve().parent
    posts: list[Post] = []
    problems: list[PostProblem] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            post, skipped = parse_line(number, line, folder)
        except ValueError as exc:
            problems.append(PostProblem(number, str(exc)))
            continue
        posts.append(post)
        problems.extend(skipped)
    return Feed(path, FORMAT, Unit.LINE, tuple(posts), tuple(problems))
