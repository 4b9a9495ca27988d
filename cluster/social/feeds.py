"""Which reader an export needs: named by the caller, or told from the path.

    jsonl     the documented JSON-lines manifest (`social_manifest`): a .jsonl or .ndjson file
    mastodon  a Mastodon account archive (`social_mastodon`): its extracted folder, or its outbox.json

`auto` tells them apart by the path alone (a folder or a .json file is an archive, a .jsonl or
.ndjson file a manifest) and otherwise asks the caller to name the format.
"""

import enum
from pathlib import Path

from cluster.social import manifest, mastodon
from cluster.social.post import Feed, FeedError


class FeedFormat(enum.StrEnum):
    AUTO = "auto"
    JSONL = manifest.FORMAT
    MASTODON = mastodon.FORMAT


def detect_format(path: Path) -> FeedFormat:
    """The format `path` is in, from its kind and name; FeedError asking for --format when it cannot tell."""
    if path.is_dir() or path.suffix == ".json" or path.name.endswith(mastodon.PACKED_SUFFIXES):
        return FeedFormat.MASTODON
    if path.suffix in (".jsonl", ".ndjson"):
        return FeedFormat.JSONL
    if not path.exists():
        raise FeedError(f"{path}: no such file or folder")
    raise FeedError(
        f"{path}: cannot tell its format from its name; give --format jsonl (a JSON-lines manifest) or"
        " --format mastodon (a Mastodon archive's folder or outbox.json)"
    )


def read_feed(path: Path, export_format: FeedFormat = FeedFormat.AUTO) -> Feed:
    """The posts and problems of the export at `path`, read as `export_format` (told from the path for `auto`)."""
    chosen = detect_format(path) if export_format is FeedFormat.AUTO else export_format
    if chosen is FeedFormat.MASTODON:
        return mastodon.read_archive(path)
    return manifest.read_manifest(path)
