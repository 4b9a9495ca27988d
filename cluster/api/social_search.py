"""Social searches from the control room: `lfr social search` on a photo an officer uploads.

The same `SocialService.search` runs as on the command line, with the signed-in officer as the one
who answers for it and the reason they give: it opens a case of the posts the face appears in and
audits the search. Each match comes back with its post's record from the records database (author,
and whether the post's text was flagged for an officer), read after the search.

The control room opens the configured gallery for each search and closes it after, as every
`lfr social` command does. With the embedded milvus-lite backend (the default) that connects to the
one milvus-lite server of the data directory, starting it when none runs, so the control room and
the command line share the gallery rather than each opening its data. A gallery that cannot be
opened (another user's data directory, a Milvus server that does not answer) is
`SocialSearchUnavailable`, which says what to do. Searches run one at a time (each loads the face
models and holds a photo in memory); a search waits at most `WAIT_S` for the one before it.

The upload is checked before any model runs (empty, not an image, over `MAX_PHOTO_PIXELS`), then
written to a private temporary folder for the search to read and deleted with it; the case and
the audit log call it "upload NAME by OFFICER" and keep its SHA-256, as they keep a CLI photo's.
"""

import io
import re
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import structlog
from PIL import Image, UnidentifiedImageError

from cluster.application.social import SocialSearchResult, SocialService
from cluster.audit.log import AuditLog
from cluster.cases.model import CaseAuthorisation
from cluster.config import LfrConfig
from cluster.enrolment.faces import FaceOption, RefusedPhoto
from cluster.gallery.catalogue import Catalogue
from cluster.gallery.errors import GalleryError
from cluster.gallery.gallery import Gallery
from cluster.gallery.records import SocialMatch
from cluster.social.records import PostRecord

log = structlog.get_logger(__name__)

MAX_PHOTO_PIXELS = 50_000_000
"""Largest photo a search takes (50 megapixels, more than a phone's camera gives): the face is all it needs."""
WAIT_S = 60.0
"""How long a search waits for the one before it in this control room."""
MAX_NAME_CHARS = 100
DEFAULT_NAME = "photo"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
IMAGE_FORMATS = "a JPEG, PNG, BMP, WebP, TIFF or GIF"
API_FACE = FaceOption("face=", "send the form field face=N (numbered from 0 as listed here) to choose one")
"""The search request's `face` field, as a refused group photo names it (the CLI's is `--face`)."""


class PhotoRefusedError(ValueError):
    """The uploaded photo cannot be searched with; the message says why and what to upload instead."""


class SocialSearchUnavailableError(RuntimeError):
    """The control room cannot search now (no gallery it can open, or another search running); says what to do."""


@dataclass(frozen=True)
class FoundPost:
    """One match: the stored face and its similarity, and its post's record (None: deleted or purged since)."""

    match: SocialMatch
    post: PostRecord | None


@dataclass(frozen=True)
class ControlRoomSocialSearch:
    """A finished search: the service's result (probe, matches, the case opened) and each match's post."""

    result: SocialSearchResult
    found: tuple[FoundPost, ...]
    probe_name: str


def upload_name(filename: str | None) -> str:
    """The upload's file name as the case records it: its last part, letters, digits and . _ - only, bounded."""
    name = _UNSAFE.sub("_", Path(filename or "").name).strip("._")[:MAX_NAME_CHARS]
    return name or DEFAULT_NAME


def check_photo(name: str, data: bytes) -> None:
    """Refuse, before any model runs, an upload that is empty, not an image, or over MAX_PHOTO_PIXELS."""
    if not data:
        raise PhotoRefusedError(f"{name}: the upload is empty; choose a photo of the face ({IMAGE_FORMATS})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise PhotoRefusedError(
            f"{name}: not an image that can be read; upload {IMAGE_FORMATS} photo of the face"
        ) from None
    if width * height > MAX_PHOTO_PIXELS:
        raise PhotoRefusedError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} megapixels, over the"
            f" {MAX_PHOTO_PIXELS / 1e6:.0f} a search photo may have; crop it to the face or downscale it"
        )


class SocialSearches:
    """Runs the control room's social searches on the configured gallery, one at a time."""

    def __init__(self, config: LfrConfig, audit: AuditLog) -> None:
        self.config = config
        self.audit = audit
        self._one_at_a_time = threading.Lock()

    def search(
        self, filename: str | None, data: bytes, *, authorisation: CaseAuthorisation, face_index: int | None
    ) -> ControlRoomSocialSearch:
        """Search with the face of the uploaded photo; PhotoRefusedError when it cannot be searched with (nothing
        searched, nothing audited), SocialSearchUnavailableError when the gallery cannot be opened or is busy."""
        name = upload_name(filename)
        check_photo(name, data)
        if not self._one_at_a_time.acquire(timeout=WAIT_S):
            raise SocialSearchUnavailableError(
                f"another social search has been running in this control room for over {WAIT_S:.0f} s;"
                " try again when it has finished"
            )
        try:
            return self._search(name, data, authorisation, face_index)
        finally:
            self._one_at_a_time.release()

    def _search(
        self, name: str, data: bytes, authorisation: CaseAuthorisation, face_index: int | None
    ) -> ControlRoomSocialSearch:
        probe_name = f"upload {name} by {authorisation.officer}"
        with tempfile.TemporaryDirectory(prefix="lfr-social-search-") as folder:
            photo = Path(folder) / name
            photo.write_bytes(data)
            try:
                with Gallery.open(self.config.gallery, Catalogue(self.audit.database)) as gallery:
                    service = SocialService(gallery, self.audit, self.config)
                    result = service.search(
                        photo,
                        authorisation=authorisation,
                        face_index=face_index,
                        top_k=self.config.gallery.top_k,
                        min_similarity=self.config.matching.similarity_threshold,
                        probe_name=probe_name,
                        face_option=API_FACE,
                    )
            except GalleryError as exc:
                log.warning("social_search_gallery_unavailable", error=str(exc))
                raise SocialSearchUnavailableError(
                    f"the control room cannot open the gallery: {exc}. It opens the gallery of its configuration"
                    " (gallery.backend), as `lfr social` does, so start `lfr serve` with the same --config and as"
                    " the same user as `lfr social ingest`; meanwhile run `lfr social search` on the command line"
                ) from exc
            if isinstance(result, RefusedPhoto):
                raise PhotoRefusedError(result.reason.replace(str(photo), name))
        keys = [(m.face.ingest_id, m.face.platform, m.face.post_id) for m in result.matches]
        posts = service.posts.of_posts(keys)
        found = tuple(
            FoundPost(match, posts.get((match.face.ingest_id, match.face.platform, match.face.post_id)))
            for match in result.matches
        )
        return ControlRoomSocialSearch(result, found, probe_name)
