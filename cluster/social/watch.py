"""`SocialWatch`: a growing export followed, its new posts ingested within seconds and their leads opened.

Each `step` polls the export (`social_follow`), stores the new posts in batches with their faces
and triage exactly as `lfr social ingest` does (`SocialIngest`, the faces found by whatever
`FaceFinder` it is given: the cameras' face service under `lfr social watch`), and searches the
faces of each flagged post against the authorised watchlists (`LeadSearch`). It keeps the counts
and, over the most recent posts, the lag from a post's own time and from the moment the follower
saw it in the export to the moment it was processed (stored, and searched when flagged). The
follower marks a batch's posts read only once they are stored and searched, so a step that fails
(the face service down past `RetriedFaceFinder`'s retries) leaves them unread. Nothing of a
person is kept here beyond the leads' counts per watchlist person for the watch's summary.
"""

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import structlog
from tenacity import Retrying, stop_after_attempt, wait_exponential

from cluster.social.follow import Follower, ManifestFollower, ReadUpTo, SeenPost
from cluster.social.ingest import POSTS_PER_BATCH, FaceFinder, SocialIngest
from cluster.social.leads import Lead, LeadSearch
from cluster.social.post import PostProblem
from cluster.vision.face import Face

log = structlog.get_logger(__name__)

LAG_SAMPLES = 1024
"""Lag percentiles are over this many most recent posts."""
FIND_ATTEMPTS = 4
"""Tries at finding a batch's faces before the step fails and the watch stops, its posts left unread."""
RETRY_WAIT_S = 1.0
"""Wait before the first retry; each further wait doubles, up to MAX_RETRY_WAIT_S."""
MAX_RETRY_WAIT_S = 8.0


class RetriedFaceFinder:
    """A face finder whose failures (a face service restarting, a request timed out) are retried with backoff.

    Finding faces is the first thing a batch's store does, before anything is written, so a retry
    stores nothing twice; when every attempt fails the last error is raised, the step fails, and the
    follower keeps the batch's posts unread.
    """

    def __init__(
        self, find_faces: FaceFinder, attempts: int = FIND_ATTEMPTS, first_wait_s: float = RETRY_WAIT_S
    ) -> None:
        self._find_faces = find_faces
        self._retrying = Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=first_wait_s, max=MAX_RETRY_WAIT_S),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "social_face_finding_retried",
                attempt=state.attempt_number,
                error=None if state.outcome is None else str(state.outcome.exception()),
            ),
        )

    def __call__(self, images: Sequence[np.ndarray], /) -> list[list[Face]]:
        return self._retrying(self._find_faces, images)


@dataclass(frozen=True)
class PostDone:
    """One post processed: when, and its lag from its own time and from when it was seen in the export."""

    url: str
    flagged: bool
    faces: int
    leads: int
    processed_at: float
    lag_from_post_s: float
    lag_from_seen_s: float


@dataclass(frozen=True)
class WatchProgress:
    """A watch's figures so far, and what its last step did.

    lag_*: seconds to processing over the last LAG_SAMPLES posts (None before the first post):
    from the post's own time, and from when the follower saw it in the export. backlog_bytes: of a
    manifest, written and not yet read. done: the posts the last step processed. problems: of the
    last step, each at its position in the export. leads_per_person: cases' candidates per watchlist person.
    """

    posts: int
    faces: int
    flagged: int
    searched: int
    leads: int
    candidates: int
    skipped: int
    backlog_bytes: int
    lag_from_post_p50_s: float | None
    lag_from_post_p99_s: float | None
    lag_from_seen_p50_s: float | None
    lag_from_seen_p99_s: float | None
    done: tuple[PostDone, ...] = ()
    problems: tuple[PostProblem, ...] = ()
    leads_per_person: dict[str, int] = field(default_factory=dict)
    read_up_to: ReadUpTo | None = None
    """Of a manifest, in the final figures only: how far it is marked read, for a later watch to resume from."""

    def line(self) -> str:
        """The terminal's status line."""

        def seconds(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}s"

        return (
            f"{self.posts} posts ({self.flagged} flagged, {self.skipped} skipped), {self.faces} faces, {self.leads}"
            f" leads ({self.candidates} candidates); lag from post p50 {seconds(self.lag_from_post_p50_s)} p99"
            f" {seconds(self.lag_from_post_p99_s)}, from export p50 {seconds(self.lag_from_seen_p50_s)} p99"
            f" {seconds(self.lag_from_seen_p99_s)}; {self.backlog_bytes} bytes waiting"
        )


class SocialWatch:
    """Follows one export; see the module docstring."""

    def __init__(
        self,
        follower: Follower,
        ingest: SocialIngest,
        leads: LeadSearch,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.follower = follower
        self.ingest = ingest
        self.leads = leads
        self._clock = clock
        self._from_post: deque[float] = deque(maxlen=LAG_SAMPLES)
        self._from_seen: deque[float] = deque(maxlen=LAG_SAMPLES)
        self._flagged = 0
        self._leads = 0
        self._candidates = 0
        self._skipped: set[int] = set()
        self._per_person: Counter[str] = Counter()
        self._backlog = 0

    def step(self) -> WatchProgress:
        """Read what the export gained since the last step and process it; the figures after."""
        polled = self.follower.poll()
        self._backlog = polled.backlog_bytes
        problems = list(polled.problems)
        done: list[PostDone] = []
        for start in range(0, len(polled.posts), POSTS_PER_BATCH):
            batch = polled.posts[start : start + POSTS_PER_BATCH]
            done.extend(self._process(batch, problems))
            self.follower.commit(start + len(batch))
        self.follower.commit()
        self._skipped.update(problem.position for problem in problems)
        for problem in problems:
            log.warning("social_watch_skipped", position=problem.position, problem=problem.message)
        return self.progress(tuple(done), tuple(problems))

    def progress(self, done: tuple[PostDone, ...] = (), problems: tuple[PostProblem, ...] = ()) -> WatchProgress:
        post50, post99 = _percentiles(self._from_post)
        seen50, seen99 = _percentiles(self._from_seen)
        return WatchProgress(
            posts=self.ingest.posts_read,
            faces=self.ingest.faces_stored,
            flagged=self._flagged,
            searched=self.leads.searched_posts,
            leads=self._leads,
            candidates=self._candidates,
            skipped=len(self._skipped),
            backlog_bytes=self._backlog,
            lag_from_post_p50_s=post50,
            lag_from_post_p99_s=post99,
            lag_from_seen_p50_s=seen50,
            lag_from_seen_p99_s=seen99,
            done=done,
            problems=problems,
            leads_per_person=dict(self._per_person),
        )

    def final(self) -> WatchProgress:
        """The figures, with how far a manifest was read (a folder's files read are not kept for a later watch)."""
        read = self.follower.read_up_to() if isinstance(self.follower, ManifestFollower) else None
        return dataclasses.replace(self.progress(), read_up_to=read)

    def _process(self, batch: tuple[SeenPost, ...], problems: list[PostProblem]) -> list[PostDone]:
        seen_at = {seen.post.position: seen.seen_at for seen in batch}
        stored = self.ingest.store([seen.post for seen in batch], problems)
        done = []
        for item in stored:
            leads: list[Lead] = self.leads.search(item)
            processed_at = self._clock()
            post = item.post
            from_post, from_seen = processed_at - post.posted_at, processed_at - seen_at[post.position]
            self._from_post.append(from_post)
            self._from_seen.append(from_seen)
            self._flagged += item.score.flagged
            self._leads += len(leads)
            for lead in leads:
                self._candidates += len(lead.case.items)
                self._per_person.update(case_item.person_id for case_item in lead.case.items)
            done.append(
                PostDone(
                    post.url,
                    item.score.flagged,
                    len(item.faces),
                    sum(len(lead.case.items) for lead in leads),
                    processed_at,
                    from_post,
                    from_seen,
                )
            )
        return done


def _percentiles(samples: deque[float]) -> tuple[float | None, float | None]:
    if not samples:
        return None, None
    p50, p99 = np.percentile(np.asarray(samples), [50, 99])
    return float(p50), float(p99)
