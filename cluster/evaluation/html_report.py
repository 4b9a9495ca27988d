"""`report.html`: an open-set evaluation as one self-contained page.

Everything is inside the file: styles inline, plots as base64 PNG data URIs, no scripts and no links to
anything else, so it opens the same offline and can be filed with the deployment's paperwork. Every text
that came from outside (dataset, system, group and source names, notes) is HTML-escaped.
"""

import base64
from html import escape
from pathlib import Path

from cluster.evaluation.openset import TpirAtFpir
from cluster.evaluation.plots import det_png, groups_png, histogram_png
from cluster.evaluation.report import EvaluationReport, GroupResult
from cluster.private_files import write_private_text

HTML_NAME = "report.html"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #1b1b1b; max-width: 75em; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #c8c8c8; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
.note { color: #555; font-size: 0.9em; }
.yes { color: #1d6b1d; } .no { color: #a00000; }
"""


def _image(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A table from already-escaped cells."""
    head = "".join(f"<th>{cell}</th>" for cell in header)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _text(value: object) -> str:
    return f"<td>{escape(str(value))}</td>"


def _number(text: str) -> str:
    return f'<td class="number">{text}</td>'


def _rate(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.3f}"


def _fpir(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.3g}"


def _verdict(good: bool) -> str:
    return '<td class="yes">yes</td>' if good else '<td class="no">no</td>'


def _overview(report: EvaluationReport) -> str:
    dataset, counts = report.dataset, report.counts
    unit = "people (clusters)" if report.resample == "cluster" else "single probes"
    rows: list[tuple[str, object]] = [
        ("Gallery", f"{dataset.gallery_people} people, {dataset.gallery_entries} entries"),
        ("Mated probes", f"{counts.mated} of {counts.mated_clusters} people"),
        ("Non-mated probes", f"{counts.nonmated} of {counts.nonmated_clusters} people"),
        ("FPIR targets", ", ".join(f"{target:g}" for target in report.fpirs)),
        ("Intervals", f"{report.confidence:.0%} percentile bootstrap, {report.rounds} resamples of {unit}"),
        ("Bootstrap seed", report.seed),
    ]
    return "<table>" + "".join(f"<tr><th>{escape(name)}</th>{_text(value)}</tr>" for name, value in rows) + "</table>"


def _estimate_cell(estimate: TpirAtFpir) -> str:
    star = "*" if not estimate.resolvable else ""
    return _number(
        f'{estimate.tpir:.3f}{star} <span class="note">({estimate.low:.3f}&ndash;{estimate.high:.3f})</span>'
        f'<br><span class="note">threshold {estimate.threshold:.4f}</span>'
    )


def _summary(report: EvaluationReport) -> str:
    header = ["System", "Rank-1"]
    header += [f"TPIR at FPIR {target:g}" for target in report.fpirs]
    header += ["Mated probes", "Non-mated probes", "Failed to acquire"]
    rows = [
        [_text(system.name), _number(f"{system.rank1:.3f}")]
        + [_estimate_cell(estimate) for estimate in system.estimates]
        + [_number(str(report.counts.mated)), _number(str(report.counts.nonmated)), _number(str(system.failed))]
        for system in report.systems
    ]
    return (
        _table(header, rows) + '<p class="note">TPIR with its interval in brackets; * marks an FPIR target below '
        "1 / non-mated probes, which this sample cannot observe (the TPIR shown there is optimistic).</p>"
    )


def _differences(report: EvaluationReport) -> str:
    if not report.differences:
        return '<p class="note">No baseline was named, so no systems were compared.</p>'
    header = ["Comparison"] + [f"TPIR difference at FPIR {target:g}" for target in report.fpirs]
    rows = []
    for comparison in report.differences:
        cells = [_text(f"{comparison.system} minus {comparison.baseline}")]
        for item in comparison.differences:
            clear = item.low > 0 or item.high < 0
            cells.append(
                f'<td class="number {"yes" if clear else ""}">{item.difference:+.3f} '
                f'<span class="note">({item.low:+.3f} to {item.high:+.3f})</span></td>'
            )
        rows.append(cells)
    return (
        _table(header, rows) + '<p class="note">Paired bootstrap: both systems on the same resamples. In green: '
        "the interval excludes 0.</p>"
    )


def _group_table(name: str, result: GroupResult) -> str:
    point = result.operating_point
    header = ["Group", "Probes", "Mated", "Non-mated", "False alarms", "FPIR", "True matches", "TPIR"]
    rows = [
        [
            _text(row.group),
            _number(str(row.probes)),
            _number(str(row.mated)),
            _number(str(row.nonmated)),
            _number(str(row.false_alarms)),
            _number(_fpir(row.fpir)),
            _number(str(row.hits)),
            _number(_rate(row.tpir)),
        ]
        for row in result.rows
    ]
    return (
        f'<h3>{escape(name)} <span class="note">at threshold {point.threshold:.4f} '
        f"(FPIR {point.fpir_target:g} over all non-mated probes)</span></h3>{_table(header, rows)}"
    )


def _groups(report: EvaluationReport) -> str:
    tables = [_group_table(system.name, system.groups) for system in report.systems if system.groups is not None]
    if not tables:
        return '<p class="note">No groups were given.</p>'
    plot = _image(groups_png(report), "FPIR and FNIR per group and system")
    return "".join(tables) + plot


def _calibration(report: EvaluationReport) -> str:
    if not report.calibration:
        return '<p class="note">No stated thresholds were given to check.</p>'
    header = [
        "System",
        "Stated by",
        "Threshold",
        "Stated FPIR",
        "Observed FPIR",
        "False alarms / non-mated",
        f"{report.confidence:.0%} interval",
        "Expected false alarms",
        "Within factor 2",
    ]
    rows = [
        [
            _text(result.spec.system),
            _text(result.spec.source),
            _number(f"{result.check.threshold:.4f}"),
            _number(f"{result.check.stated_fpir:g}"),
            _number(_fpir(result.check.observed_fpir)),
            _number(f"{result.check.false_alarms} / {result.check.nonmated}"),
            _number(f"{result.check.low:.3g}&ndash;{result.check.high:.3g}"),
            _number(f"{result.check.expected_false_alarms:.3g}"),
            _verdict(result.check.within_factor_2),
        ]
        for result in report.calibration
    ]
    return _table(header, rows)


def _trials(report: EvaluationReport) -> str:
    if not report.trials:
        return '<p class="note">No random-list trials were run.</p>'
    header = [
        "List size",
        "Stated FPIR",
        "Threshold",
        "Observed FPIR",
        "False alarms / searches",
        "Distinct probes",
        "Draws",
        f"{report.confidence:.0%} interval",
        "Observed / stated",
        "Within factor 2",
    ]
    rows = [
        [
            _number(str(trial.list_size)),
            _number(f"{trial.stated_fpir:g}"),
            _number(f"{trial.threshold:.4f}"),
            _number(_fpir(trial.observed_fpir)),
            _number(f"{trial.false_alarms} / {trial.searches}"),
            _number(str(trial.distinct_probes)),
            _number(str(trial.draws)),
            _number(f"{trial.low:.3g}&ndash;{trial.high:.3g}"),
            _number(f"{trial.ratio:.2f}"),
            _verdict(trial.within_factor_2),
        ]
        for trial in report.trials
    ]
    note = (
        '<p class="note">Each trial draws random lists of people not in the impostor cohort, enrols one photo each,'
        " applies the threshold calibrated for that list size and rate, and counts the photos of everyone else"
        " whose best fused score reaches it. Draws reuse probes against different lists.</p>"
    )
    return note + _table(header, rows)


def _items(texts: tuple[str, ...]) -> str:
    return "<ul>" + "".join(f"<li>{escape(text)}</li>" for text in texts) + "</ul>"


def render_html(report: EvaluationReport) -> str:
    """The whole page as one string."""
    title = f"Open-set identification: {report.dataset.name}"
    histograms = "".join(
        _image(histogram_png(system), f"score histograms of {system.name}") for system in report.systems
    )
    notes = f"<h2>Notes</h2>{_items(report.notes)}" if report.notes else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>{escape(report.dataset.description)}</p>"
        f"{_overview(report)}"
        f"<h2>TPIR at the stated FPIRs</h2>{_summary(report)}"
        f"<h2>Differences between systems</h2>{_differences(report)}"
        "<h2>Detection error trade-off</h2>"
        f"{_image(det_png(report), 'DET curves: FNIR against FPIR for every system')}"
        "<h2>Score distributions</h2>"
        '<p class="note">Dotted lines: each system\'s threshold for each FPIR target.</p>'
        f"{histograms}"
        f"<h2>By group</h2>{_groups(report)}"
        f"<h2>Calibration checks</h2>{_calibration(report)}"
        f"<h2>Calibration on random lists</h2>{_trials(report)}"
        f"<h2>What these figures can and cannot show</h2>{_items(report.limits)}"
        f"{notes}"
        "</body></html>\n"
    )


def write_html_report(report: EvaluationReport, out_dir: Path) -> Path:
    """Write `report.html` into `out_dir`; its path."""
    path = out_dir / HTML_NAME
    write_private_text(path, render_html(report))
    return path
