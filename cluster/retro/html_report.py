"""`report.html`: a retrospective search as one self-contained page for the officer who adjudicates it.

Everything is inside the file: styles inline, crops as base64 JPEG data URIs, no scripts and no
links to anything else, so it opens the same offline, attached to a case file, years later.
Every text that came from outside (labels, file names) is HTML-escaped.
"""

import base64
from collections import defaultdict
from html import escape
from pathlib import Path

from cluster.gallery.records import WatchlistVersion
from cluster.private_files import write_private_text
from cluster.retro.json_report import iso_time
from cluster.retro.report import RetroMatch, RetroReport

HTML_NAME = "report.html"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1b1b1b; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #c8c8c8; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
.matches { display: flex; flex-wrap: wrap; gap: 0.8em; }
.match { border: 1px solid #c8c8c8; padding: 0.5em; width: 15em; font-size: 0.9em; overflow-wrap: anywhere; }
.match img { width: 9em; height: auto; display: block; margin-bottom: 0.4em; }
.note { color: #555; }
.error { color: #a00000; }
"""


def video_time(seconds: float) -> str:
    """'h:mm:ss.s' into the video (rounded to tenths before splitting, so 59.96 s is 0:01:00.0)."""
    minutes, tenths = divmod(round(seconds * 10), 600)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{tenths / 10:04.1f}"


def _when(match: RetroMatch) -> str:
    """Where in its source the face was: a time and frame in a video, or a still image."""
    if match.frame_time_s is None:
        return "still image"
    return f"{video_time(match.frame_time_s)}, frame {match.frame_index}"


def _threshold_text(report: RetroReport) -> str:
    calibration = report.calibration
    if calibration is None:
        return f"{report.threshold:.3f} (uncalibrated)"
    return calibration.summary()


def _model_scores_text(match: RetroMatch) -> str:
    """'cosines: dlib_resnet_v1 0.951, faceres 0.702': every model's own score behind the fused one."""
    return "cosines: " + ", ".join(f"{model} {score:.3f}" for model, score in sorted(match.model_scores.items()))


def _row(name: str, value: object) -> str:
    return f"<tr><th>{escape(name)}</th><td>{escape(str(value))}</td></tr>"


def _query_rows(report: RetroReport) -> list[str]:
    """What was searched for: the watchlist version, or the post whose faces were the query."""
    query = report.query
    if isinstance(query, WatchlistVersion):
        return [
            _row("Watchlist version", f"{query.version_id} ({query.entry_count} entries)"),
            _row("Version digest", query.digest),
            _row("Frozen at", iso_time(query.frozen_at)),
        ]
    return [
        _row("Post searched for", query.name),
        _row("Post URL", query.url),
        _row("Stored faces searched with", ", ".join(query.face_ids)),
        _row("Query digest", query.digest),
    ]


def _summary(report: RetroReport) -> str:
    rows = [
        *_query_rows(report),
        _row("Match threshold", _threshold_text(report)),
        _row("Face models", report.model_name),
        _row("Video sampling", f"{report.sample_fps:g} frames per second"),
        _row("Searched by", report.officer),
        _row("Started / finished", f"{iso_time(report.started_at)} / {iso_time(report.finished_at)}"),
        _row("Sources searched", len(report.sources)),
        _row("Faces seen", report.faces_seen),
        _row("Faces matched", len(report.matches)),
        _row("Faces that matched nobody (not kept)", report.faces_unmatched),
    ]
    return f"<table>{''.join(rows)}</table>"


def _match_card(match: RetroMatch) -> str:
    crop = base64.b64encode(match.crop_jpeg).decode("ascii")
    x1, y1, x2, y2 = match.box
    return (
        '<div class="match">'
        f'<img alt="face matched to {escape(match.label)}" src="data:image/jpeg;base64,{crop}">'
        f"<div><b>score {match.similarity:.3f}</b> (threshold {match.threshold:.3f})</div>"
        f"<div>{escape(_model_scores_text(match))}</div>"
        f'<div title="{escape(str(match.source))}">{escape(match.source.name)}</div>'
        f"<div>{escape(_when(match))}</div>"
        f'<div class="note">box ({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f})</div>'
        "</div>"
    )


def _matches(report: RetroReport) -> str:
    if not report.matches:
        return f"<p>No face reached the threshold of {report.threshold:.3f}.</p>"
    by_person: dict[tuple[str, str, str], list[RetroMatch]] = defaultdict(list)
    for match in report.matches:
        by_person[match.person_id, match.label, match.category].append(match)
    sections = []
    for (person_id, label, category), matches in sorted(by_person.items()):
        count = f"{len(matches)} match{'es' if len(matches) != 1 else ''}"
        sections.append(
            f'<h3>{escape(label)} <span class="note">({escape(person_id)}, {escape(category)}): {count}</span></h3>'
            f'<div class="matches">{"".join(_match_card(match) for match in matches)}</div>'
        )
    return "".join(sections)


def _sources(report: RetroReport) -> str:
    rows = ["<tr><th>Source</th><th>Kind</th><th>Frames searched</th><th>Faces</th><th>Matches</th><th>Error</th></tr>"]
    for source in report.sources:
        error = f'<span class="error">{escape(source.error)}</span>' if source.error else ""
        rows.append(
            f"<tr><td>{escape(str(source.path))}</td><td>{source.kind}</td><td>{source.frames}</td>"
            f"<td>{source.faces}</td><td>{source.matches}</td><td>{error}</td></tr>"
        )
    return f"<table>{''.join(rows)}</table>"


def render_html(report: RetroReport) -> str:
    """The whole page as one string."""
    title = f"Retrospective search against {report.query_name}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        '<p class="note">Each match is a candidate for an officer to adjudicate, not an identification.'
        " Faces that matched nobody were counted and discarded: no image of them is kept.</p>"
        f"{_summary(report)}"
        f"<h2>Matches</h2>{_matches(report)}"
        f"<h2>Sources</h2>{_sources(report)}"
        "</body></html>\n"
    )


def write_html_report(report: RetroReport, out_dir: Path) -> Path:
    """Write `report.html` into `out_dir`; its path."""
    path = out_dir / HTML_NAME
    write_private_text(path, render_html(report))
    return path
