"""A screenshot-like preview of a dashboard: one matplotlib plot per panel, from the panels' own queries.

No Grafana runs where the docs are built, so the preview draws what each panel's queries returned
from a Prometheus (the tests' real one, over a real run): one line per series, named by the
query's legend with its labels filled in, on the dashboard's grid of panels.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cluster.observability.dashboards import DashboardSpec, Query

COLUMNS = 2
LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class Curve:
    """One series a query returned: its labels and its (Unix time, value) points."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class Preview:
    """The PNG written, and the panels that had nothing to draw."""

    path: Path
    empty_panels: tuple[str, ...]


def legend(query: Query, labels: Mapping[str, str]) -> str:
    """The query's legend with `{{label}}` filled in, as Grafana shows it."""
    return LEGEND.sub(lambda m: labels.get(m.group(1), ""), query.legend)


def plot(spec: DashboardSpec, curves: Callable[[Query], Sequence[Curve]], path: Path) -> Preview:
    """Draw every panel of `spec` from what `curves` returns for each of its queries; written as PNG to `path`."""
    rows = math.ceil(len(spec.panels) / COLUMNS)
    figure = Figure(figsize=(6 * COLUMNS, 2.8 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, COLUMNS, squeeze=False)
    start = None
    empty = []
    for index, panel in enumerate(spec.panels):
        ax = axes[index // COLUMNS][index % COLUMNS]
        for query in panel.queries:
            for curve in curves(query):
                if not curve.points:
                    continue
                start = curve.points[0][0] if start is None else min(start, curve.points[0][0])
                times = [t for t, _ in curve.points]
                ax.plot(times, [v for _, v in curve.points], label=legend(query, curve.labels), linewidth=1.2)
        ax.set_title(f"{panel.title} ({panel.unit})", fontsize=10)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7, loc="upper left")
        else:
            empty.append(panel.title)
    for index in range(len(spec.panels), rows * COLUMNS):
        axes[index // COLUMNS][index % COLUMNS].axis("off")
    if start is not None:
        for ax in axes.flat:
            ax.xaxis.set_major_formatter(lambda t, _: f"{t - start:.0f} s")
    figure.suptitle(spec.title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return Preview(path, tuple(empty))
