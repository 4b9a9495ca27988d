"""Writing an extracted Mastodon account archive as Mastodon's export lays it out, with real face photos as media.

outbox.json is an ActivityStreams OrderedCollection of the account's activities; each post is a
`Create` of a `Note` whose `attachment`s name files under media_attachments/ relative to the
archive folder (the export strips the server's /system/ prefix); actor.json names the account.
"""

import json
import shutil
from pathlib import Path
from typing import Any

SERVER = "https://protest.example"
ACCOUNT = f"{SERVER}/users/marcher"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def note(status: str, content: str, published: str = "2025-06-14T09:32:00Z", **extra: Any) -> dict[str, Any]:
    """A Note as Mastodon serialises one (the fields the reader uses, and some it ignores)."""
    return {
        "id": f"{ACCOUNT}/statuses/{status}",
        "type": "Note",
        "summary": None,
        "inReplyTo": None,
        "published": published,
        "url": f"{SERVER}/@marcher/{status}",
        "attributedTo": ACCOUNT,
        "to": [PUBLIC],
        "cc": [f"{ACCOUNT}/followers"],
        "sensitive": False,
        "content": content,
        "attachment": [],
        "tag": [],
        **extra,
    }


def image(path: str, media_type: str = "image/jpeg") -> dict[str, Any]:
    return {"type": "Document", "mediaType": media_type, "url": path, "name": None, "blurhash": "UAB"}


def create(post: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{post['id']}/activity",
        "type": "Create",
        "actor": ACCOUNT,
        "published": post.get("published", "2025-06-14T09:32:00Z"),
        "to": post["to"],
        "cc": post["cc"],
        "object": post,
    }


def boost(status: str) -> dict[str, Any]:
    return {
        "id": f"{ACCOUNT}/statuses/{status}/activity",
        "type": "Announce",
        "actor": ACCOUNT,
        "published": "2025-06-14T11:00:00Z",
        "object": "https://elsewhere.example/users/someone/statuses/1",
    }


def media_path(status: str, name: str) -> str:
    """Where Mastodon's export puts an attachment, relative to the archive folder."""
    return f"media_attachments/files/110/{status}/original/{name}"


def write_archive(folder: Path, items: list[Any], media: dict[str, Path]) -> Path:
    """The archive folder: outbox.json with `items`, actor.json, and each `media` path copied from its photo."""
    folder.mkdir(parents=True, exist_ok=True)
    outbox = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "outbox.json",
        "type": "OrderedCollection",
        "totalItems": len(items),
        "orderedItems": items,
    }
    (folder / "outbox.json").write_text(json.dumps(outbox), encoding="utf-8")
    actor = {"id": ACCOUNT, "type": "Person", "preferredUsername": "marcher", "outbox": "outbox.json"}
    (folder / "actor.json").write_text(json.dumps(actor), encoding="utf-8")
    for relative, source in media.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return folder
