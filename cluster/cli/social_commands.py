"""`lfr social ...`: social-media faces for retrospective search, kept only as long as policy allows.

    lfr social ingest SOURCE [--format auto|jsonl|mastodon] --authorised-by OFFICER --reason TEXT
                                           every face of every post's images, stored with its post;
                                           each post's text scored and flagged for an officer
    lfr social watch SOURCE --watchlist NAME [--watchlist NAME ...] --authorised-by OFFICER --reason TEXT
                       [--once | --duration S] [--ray-address ADDR]
                                           follows a growing export (an appended JSON-lines manifest or a
                                           folder of post files) through the cameras' face service: each
                                           new post ingested within seconds, a flagged post's faces
                                           searched against the watchlists, each match a lead in a case
    lfr social search PHOTO --officer NAME --reason TEXT [--top-k K] [--face N] [--json]
                                           where else this face appears (platform, post, URL, time, place),
                                           opened as a case for an officer to confirm or reject
    lfr social footage PLATFORM:POST_ID FOOTAGE... --officer NAME --reason TEXT --out DIR [--fps 2] [--face N]
                                           a flagged post's stored faces searched for in recorded
                                           images and videos, as `lfr retro` searches a watchlist:
                                           each match an item in one case, reports in DIR
    lfr social delete --platform P --post ID --reason TEXT    every face and the record of one post
    lfr social delete --ingest ID --reason TEXT               every face and post one ingest stored
    lfr social purge                       every face and post past its expiry

SOURCE is a JSON-lines manifest (`cluster.social.manifest`) or an extracted Mastodon
account archive, its folder or its outbox.json (`cluster.social.mastodon`); `--format auto`
tells them apart by the path. Media are read from local files only: a remote URL is refused
with a message to download it. A bad line or item is reported with its position and the field at
fault and skipped; the rest is still ingested. Each post's text is scored by the text classifier
(`cluster.social.triage`) and flagged for an officer at `social.triage.threshold`; a flag
decides nothing. An ingest, like a watchlist, needs an authorising officer and a reason; its
faces and posts expire after `gallery.social.retention_days` (at most 31) and are purged then
(by `lfr social purge`, and on their own wherever the gallery is served). A search needs a named
officer and a reason (no fallback to the operating-system user), and its matches become a case,
adjudicated in the control room and purged after `retention.case_days` like `lfr retro`'s. Every
command is audited by `cluster.application.social` (an ingest as an enrolment into `social_media`, a search
as a search, a deletion or purge as a purge); no embedding is ever logged.
`lfr social watch` runs until Ctrl-C or SIGTERM (or after one pass with --once, or --duration
seconds), showing its progress and lag on one line, and stops cleanly: the posts read so far are
stored and the watch's outcome audited.
`lfr social footage` searches only a post whose text the triage flagged, and refuses any other
(or one not stored, or whose faces were purged) before reading anything; its search is audited by
`cluster.application.social_footage`.
Exit status as for `lfr watchlist`: 0 done, 1 some input refused (or nothing found to delete; for
`footage`, some sources could not be read), 2 nothing done.
"""

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from tqdm import tqdm

from cluster.application.live_run import stop_and_reload_signals
from cluster.application.ray_runtime import RayStartError, start_ray, stop_ray
from cluster.application.social import IngestAuthorisation, SocialService
from cluster.application.social_footage import SocialFootageService
from cluster.application.social_watch import SocialWatchRun, WatchSettings
from cluster.cli.case_arguments import add_authorisation_arguments, authorisation_of
from cluster.cli.retro_commands import DEFAULT_FPS, MAX_FPS
from cluster.cli.watchlist_commands import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_REFUSED,
    add_officer_argument,
    gallery_service,
    guarded,
    iso,
    officer_of,
    one_step,
)
from cluster.config import LfrConfig
from cluster.enrolment.faces import RefusedPhoto
from cluster.gallery.records import SocialMatch
from cluster.retro.footage import find_footage
from cluster.social.feeds import FeedFormat, read_feed
from cluster.social.footage_search import split_post_key
from cluster.social.watch import WatchProgress

MAX_TOP_K = 1024


def register(commands: argparse._SubParsersAction) -> None:
    social = commands.add_parser("social", help="Social-media faces: ingest posts, search where a face appears.")
    actions = social.add_subparsers(dest="social_action", required=True, metavar="ACTION")

    ingest = actions.add_parser(
        "ingest", help="Store every face of the posts of an export (JSON-lines manifest or Mastodon archive)."
    )
    ingest.add_argument(
        "source",
        type=Path,
        metavar="SOURCE",
        help="A JSON-lines manifest, or an extracted Mastodon archive (its folder or outbox.json).",
    )
    ingest.add_argument(
        "--format",
        type=FeedFormat,
        choices=list(FeedFormat),
        default=FeedFormat.AUTO,
        help="The export's format (default: told from the path: a folder or .json is mastodon, .jsonl is jsonl).",
    )
    ingest.add_argument(
        "--authorised-by", required=True, metavar="OFFICER", help="Who authorised the ingest (name, rank)."
    )
    ingest.add_argument("--reason", required=True, help="Why it is necessary and proportionate (the investigation).")
    add_officer_argument(ingest)
    ingest.set_defaults(handler=run_ingest)

    watch = actions.add_parser(
        "watch", help="Follow a growing export; ingest new posts within seconds, open leads for flagged posts."
    )
    watch.add_argument(
        "source",
        type=Path,
        metavar="SOURCE",
        help="A JSON-lines manifest being appended to (.jsonl), or a folder of post files (*.json, one post each).",
    )
    watch.add_argument(
        "--watchlist",
        action="append",
        required=True,
        metavar="NAME",
        help="A watchlist a flagged post's faces are searched against (repeat for several).",
    )
    watch.add_argument(
        "--authorised-by", required=True, metavar="OFFICER", help="Who authorised the watch (name, rank)."
    )
    watch.add_argument("--reason", required=True, help="Why it is necessary and proportionate (the operation).")
    bounded = watch.add_mutually_exclusive_group()
    bounded.add_argument("--once", action="store_true", help="Process what the export holds now, then stop.")
    bounded.add_argument("--duration", type=float, default=None, metavar="S", help="Stop after S seconds.")
    watch.add_argument(
        "--ray-address", default=None, help="Join this Ray cluster (default: start a local one for the watch)."
    )
    add_officer_argument(watch)
    watch.set_defaults(handler=run_watch)

    search = actions.add_parser("search", help="Find the posts where the face of a photo appears.")
    search.add_argument("photo", type=Path, metavar="PHOTO", help="A photo of the face to look for.")
    search.add_argument("--top-k", type=int, default=None, help="Most posts to list (default gallery.top_k).")
    search.add_argument(
        "--min-similarity",
        type=float,
        default=None,
        help="Lowest similarity listed (default matching.similarity_threshold).",
    )
    search.add_argument("--face", type=int, default=None, metavar="N", help="Search with face N of a group photo.")
    search.add_argument("--json", action="store_true", help="Print one JSON document instead of text.")
    add_authorisation_arguments(search, "the search")
    search.set_defaults(handler=run_search)

    footage = actions.add_parser(
        "footage", help="Search recorded images and videos for the faces of a flagged post; matches become a case."
    )
    footage.add_argument(
        "post", metavar="PLATFORM:POST_ID", help="The stored, flagged post (such as x:1001), as its case items name it."
    )
    footage.add_argument("footage", nargs="+", type=Path, metavar="FOOTAGE", help="Images, videos or folders of them.")
    footage.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="Folder for report.json and report.html."
    )
    footage.add_argument(
        "--fps", type=float, default=DEFAULT_FPS, help=f"Video frames searched per second (default {DEFAULT_FPS:g})."
    )
    footage.add_argument(
        "--face",
        type=int,
        default=None,
        metavar="N",
        help="Search only for the post's face N (numbered from 0 by image, then left to right; default: all of them).",
    )
    add_authorisation_arguments(footage, "the search")
    footage.set_defaults(handler=run_footage)

    delete = actions.add_parser("delete", help="Delete the stored faces of one post, or of one ingest.")
    delete.add_argument("--platform", default=None, help="The post's platform (with --post).")
    delete.add_argument("--post", default=None, metavar="POST_ID", help="The post whose faces to delete.")
    delete.add_argument(
        "--ingest",
        default=None,
        metavar="INGEST_ID",
        help="Delete every face this ingest stored (its audit entries"
        " name the id; use it for an ingest that stopped part-way).",
    )
    delete.add_argument("--reason", required=True, help="Why the faces are deleted (a request, a correction).")
    add_officer_argument(delete)
    delete.set_defaults(handler=run_delete)

    purge = actions.add_parser("purge", help="Delete every stored face whose expiry has passed.")
    add_officer_argument(purge)
    purge.set_defaults(handler=run_purge)


def run_ingest(args: argparse.Namespace, config: LfrConfig) -> int:
    def ingest() -> int:
        authorisation = IngestAuthorisation(args.authorised_by, args.reason)
        feed = read_feed(args.source, args.format)
        for problem in feed.problems:
            sys.stderr.write(f"lfr: {feed.where(problem.position)}: {problem.message}; skipped\n")
        with (
            gallery_service(config, SocialService) as service,
            tqdm(total=len(feed.posts), unit="post", file=sys.stderr, disable=None) as progress,
        ):
            result = service.ingest(
                feed, officer=officer_of(args), authorisation=authorisation, on_post=one_step(progress)
            )
        summary = result.summary
        for problem in summary.problems:
            sys.stderr.write(f"lfr: {feed.where(problem.position)}: {problem.message}; skipped\n")
        skipped = summary.skipped(feed)
        unit = str(feed.unit)
        sys.stdout.write(
            f"stored {summary.faces} face{'s' if summary.faces != 1 else ''} from {summary.posts} post"
            f"{'s' if summary.posts != 1 else ''} ({len(summary.without_face)} without a face);"
            f" {len(skipped)} {unit}{'s' if len(skipped) != 1 else ''} skipped\n"
            f"flagged {len(summary.flagged)} post{'s' if len(summary.flagged) != 1 else ''} for an officer's review"
            f" ({summary.model.name} {summary.model.version}, score >= {summary.threshold:g})"
            + (f": {unit}s {', '.join(str(p) for p in summary.flagged)}" if summary.flagged else "")
            + "\n"
            f"ingest {result.ingest_id}: kept until {iso(result.expires_at)}, then purged\n"
        )
        return EXIT_REFUSED if skipped else EXIT_OK

    return guarded(ingest)


def run_watch(args: argparse.Namespace, config: LfrConfig) -> int:
    if args.duration is not None and not args.duration > 0:
        sys.stderr.write(f"lfr: --duration is seconds > 0, got {args.duration}\n")
        return EXIT_FAILED

    def watch() -> int:
        settings = WatchSettings(
            args.source,
            tuple(args.watchlist),
            IngestAuthorisation(args.authorised_by, args.reason),
            officer_of(args),
        )
        try:
            start_ray(args.ray_address, progress=_say)
        except RayStartError as exc:
            raise ValueError(str(exc)) from exc
        try:
            with gallery_service(config, SocialWatchRun) as run, stop_and_reload_signals() as (stopping, _):
                run.start(settings, progress=_say)
                _say(
                    f"watching {args.source} (ingest {run.ingest_id}, kept until {iso(run.expires_at)}); leads against "
                    + ", ".join(f"{version} at {threshold:.3f}" for version, threshold in run.versions)
                )
                return _watched(run, stopping, once=args.once, duration_s=args.duration)
        finally:
            stop_ray(stop_serve=args.ray_address is None)

    return guarded(watch)


def _watched(run: SocialWatchRun, stopping: threading.Event, *, once: bool, duration_s: float | None) -> int:
    """Run a started watch to its end and stop it; the summary on stdout."""
    try:
        run.run(stopping, _show, once=once, duration_s=duration_s)
    except BaseException as exc:
        run.stop(exc)
        raise
    final = run.stop()
    sys.stderr.write("\n")
    if final is None:
        return EXIT_FAILED
    sys.stdout.write(
        f"{final.line()}\n"
        + "".join(
            f"  {person}: {count} lead{'s' if count != 1 else ''}\n"
            for person, count in sorted(final.leads_per_person.items())
        )
    )
    return EXIT_REFUSED if final.skipped else EXIT_OK


def _show(progress: WatchProgress) -> None:
    for problem in progress.problems:
        sys.stderr.write(f"\nlfr: {problem.position}: {problem.message}; skipped\n")
    sys.stderr.write(f"\r{progress.line()}")
    sys.stderr.flush()


def _say(line: str) -> None:
    sys.stderr.write(f"lfr: {line}\n")


def run_footage(args: argparse.Namespace, config: LfrConfig) -> int:
    authorisation = authorisation_of(args)
    if authorisation is None:
        return EXIT_FAILED
    if not 0 < args.fps <= MAX_FPS:
        sys.stderr.write(f"lfr: --fps must be above 0 and at most {MAX_FPS:g}, got {args.fps}\n")
        return EXIT_FAILED

    def footage() -> int:
        platform, post_id = split_post_key(args.post)
        sources = find_footage(args.footage)
        if not sources:
            raise ValueError(f"no images or videos found in {', '.join(str(p) for p in args.footage)}")
        with (
            gallery_service(config, SocialFootageService) as service,
            tqdm(unit="frame", file=sys.stderr, disable=None) as progress,
        ):
            outcome = service.search(
                platform,
                post_id,
                sources,
                face_index=args.face,
                out_dir=args.out,
                fps=args.fps,
                authorisation=authorisation,
                on_frame=one_step(progress),
            )
        report, post = outcome.report, outcome.post
        for failed in report.failed_sources:
            sys.stderr.write(f"lfr: not searched: {failed.error}\n")
        sys.stdout.write(
            f"searched {len(report.sources) - len(report.failed_sources)} of {len(report.sources)} sources for"
            f" {post.name} at {post.calibration.summary()}: {report.faces_seen} faces, {len(report.matches)}"
            f" matched, {report.faces_unmatched} matched none of the post's faces (not kept)\n"
            f"report: {outcome.html_path} and {outcome.json_path}\n"
            f"case {outcome.case.case_id}: {len(outcome.case.items)} candidates for an officer to confirm or reject"
            " in the control room\n"
        )
        return EXIT_REFUSED if report.failed_sources else EXIT_OK

    return guarded(footage)


def run_delete(args: argparse.Namespace, config: LfrConfig) -> int:
    def delete() -> int:
        by_post = args.platform is not None or args.post is not None
        if by_post == (args.ingest is not None) or (by_post and (args.platform is None or args.post is None)):
            raise ValueError("name what to delete: --platform P --post POST_ID, or --ingest INGEST_ID")
        with gallery_service(config, SocialService) as service:
            if by_post:
                deleted = service.delete_post(args.platform, args.post, officer=officer_of(args), reason=args.reason)
                what = f"{args.platform} post {args.post}"
            else:
                deleted = service.delete_ingest(args.ingest, officer=officer_of(args), reason=args.reason)
                what = f"ingest {args.ingest}"
        sys.stdout.write(
            f"deleted {deleted.faces} face{'s' if deleted.faces != 1 else ''} and {deleted.posts}"
            f" post{'s' if deleted.posts != 1 else ''} of {what}\n"
        )
        return EXIT_OK if deleted.faces or deleted.posts else EXIT_REFUSED

    return guarded(delete)


def run_purge(args: argparse.Namespace, config: LfrConfig) -> int:
    def purge() -> int:
        with gallery_service(config, SocialService) as service:
            purged = service.purge_expired(officer=officer_of(args))
        sys.stdout.write(
            f"purged {purged.faces} expired face{'s' if purged.faces != 1 else ''} and {purged.posts}"
            f" post{'s' if purged.posts != 1 else ''}\n"
        )
        return EXIT_OK

    return guarded(purge)


def _match_record(match: SocialMatch) -> dict[str, Any]:
    face = match.face
    return {
        "rank": match.rank,
        "similarity": round(match.similarity, 4),
        "platform": face.platform,
        "post_id": face.post_id,
        "url": face.url,
        "posted_at": iso(face.captured_at),
        "place": face.place,
        "image_path": face.image_path,
        "box": [round(value, 1) for value in face.box],
        "face_id": face.face_id,
    }


def run_search(args: argparse.Namespace, config: LfrConfig) -> int:
    authorisation = authorisation_of(args)
    if authorisation is None:
        return EXIT_FAILED
    top_k = args.top_k or config.gallery.top_k
    threshold = config.matching.similarity_threshold if args.min_similarity is None else args.min_similarity
    if not 1 <= top_k <= MAX_TOP_K:
        sys.stderr.write(f"lfr: --top-k must be within 1..{MAX_TOP_K}, got {top_k}\n")
        return EXIT_FAILED
    if not -1.0 <= threshold <= 1.0:
        sys.stderr.write(f"lfr: --min-similarity is a cosine similarity within -1..1, got {threshold}\n")
        return EXIT_FAILED

    def search() -> int:
        with gallery_service(config, SocialService) as service:
            result = service.search(
                args.photo, authorisation=authorisation, face_index=args.face, top_k=top_k, min_similarity=threshold
            )
        if isinstance(result, RefusedPhoto):
            sys.stderr.write(f"lfr: refused {result.reason}\n")
            return EXIT_REFUSED
        chosen, case = result.probe, result.case
        records = [_match_record(match) for match in result.matches]
        if args.json:
            document = {
                "probe": str(args.photo),
                "face": chosen.index,
                "min_similarity": threshold,
                "case_id": case.case_id,
                "matches": records,
            }
            sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
            return EXIT_OK
        sys.stdout.write(
            f"{len(records)} appearance{'s' if len(records) != 1 else ''} of face {chosen.index} of {args.photo}"
            f" at or above {threshold:.2f}\n"
        )
        for r in records:
            place = f"  {r['place']}" if r["place"] else ""
            sys.stdout.write(
                f"  {r['rank']}. {r['similarity']:.4f}  {r['platform']} post {r['post_id']}  {r['posted_at']}{place}"
                f"  {r['url']}  ({r['image_path']})\n"
            )
        sys.stdout.write(
            f"case {case.case_id}: {len(case.items)} candidates for an officer to confirm or reject"
            " in the control room\n"
        )
        return EXIT_OK

    return guarded(search)
