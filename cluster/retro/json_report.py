"""`report.json`: a retrospective search as one JSON document, for case files and other programs.

It lists matches only. Faces that matched nobody are a count; crops live in `report.html`. A search
against a watchlist names its version under "watchlist", one against a post's faces the post under
"post"; the other is null.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cluster.gallery.records import WatchlistVersion
from cluster.private_files import write_private_text
from cluster.retro.report import FORMAT, PostQuery, RetroMatch, RetroReport, SourceSummary

JSON_NAME = "report.json"


def iso_time(unix_s: float) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat(timespec="seconds")


def _match(match: RetroMatch) -> dict[str, Any]:
    return {
        "source": str(match.source),
        "kind": match.kind,
        "frame_index": match.frame_index,
        "frame_time_s": match.frame_time_s,
        "box": [round(value, 1) for value in match.box],
        "detection_score": round(match.detection_score, 4),
        "quality": round(match.quality, 3),
        "person_id": match.person_id,
        "label": match.label,
        "category": match.category,
        "entry_id": match.entry_id,
        "similarity": round(match.similarity, 4),
        "model_scores": {model: round(score, 4) for model, score in sorted(match.model_scores.items())},
        "threshold": match.threshold,
        "model_name": match.model_name,
        "watchlist_version": match.watchlist_version,
    }


def _source(source: SourceSummary) -> dict[str, Any]:
    return {
        "path": str(source.path),
        "kind": source.kind,
        "frames_searched": source.frames,
        "faces": source.faces,
        "matches": source.matches,
        "error": source.error,
    }


def _watchlist(version: WatchlistVersion) -> dict[str, Any]:
    return {
        "watchlist_id": version.watchlist_id,
        "version": version.version_id,
        "entries": version.entry_count,
        "digest": version.digest,
        "frozen_at": iso_time(version.frozen_at),
    }


def _post(post: PostQuery) -> dict[str, Any]:
    return {
        "platform": post.platform,
        "post_id": post.post_id,
        "url": post.url,
        "ingest_id": post.ingest_id,
        "face_ids": list(post.face_ids),
        "digest": post.digest,
    }


def report_document(report: RetroReport) -> dict[str, Any]:
    """The report as JSON-ready data."""
    query = report.query
    return {
        "format": FORMAT,
        "watchlist": _watchlist(query) if isinstance(query, WatchlistVersion) else None,
        "post": _post(query) if isinstance(query, PostQuery) else None,
        "threshold": report.threshold,
        "calibration": report.calibration.record() if report.calibration else None,
        "model_name": report.model_name,
        "sample_fps": report.sample_fps,
        "officer": report.officer,
        "started_at": iso_time(report.started_at),
        "finished_at": iso_time(report.finished_at),
        "faces_seen": report.faces_seen,
        "faces_unmatched": report.faces_unmatched,
        "sources": [_source(source) for source in report.sources],
        "matches": [_match(match) for match in report.matches],
    }


def write_json_report(report: RetroReport, out_dir: Path) -> Path:
    """Write `report.json` into `out_dir`; its path."""
    path = out_dir / JSON_NAME
    write_private_text(path, json.dumps(report_document(report), indent=2, ensure_ascii=False) + "\n")
    return path
