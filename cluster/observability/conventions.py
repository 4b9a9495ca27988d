"""`MetricSpec`: one metric's name, kind, help and labels, checked against the Prometheus conventions we keep.

Both exporters (the Ray actors through `ray.util.metrics`, the control room through
`prometheus_client`) build their instruments from specs, so every name is listed in one place
per side and one test checks them all: an `lfr_` prefix, snake case, the unit in the name
(`_seconds`, `_bytes`, `_total` for counters), and only labels of bounded cardinality. A person,
a face, an alert or a sighting is never a label: metrics leave the cluster for dashboards that
hold no personal data.
"""

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "lfr_"
NAME_PATTERN = re.compile(r"^lfr_[a-z][a-z0-9_]*[a-z0-9]$")
ALLOWED_LABELS = frozenset(
    {"camera_id", "stage", "outcome", "reason", "state", "status", "method", "route", "code", "job"}
)
"""Labels whose values come from a short fixed list or from the configured cameras."""
FORBIDDEN_LABEL_WORDS = ("person", "face", "alert", "sighting", "tracklet", "user", "key", "embedding", "name", "ip")
"""Words that mark a label as per-person or per-event (unbounded, and personal data)."""
UNIT_SUFFIXES = (
    "_seconds",
    "_bytes",
    "_total",
    "_frames",
    "_requests",
    "_clients",
    "_ratio",
    "_info",
    "_alerts",
    "_replicas",
)
"""A gauge or histogram ends in its unit (or what it counts); a counter ends in `_total`."""


class MetricKind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class MetricSpec:
    """One metric as exported (before Ray's `ray_` prefix, which the scrape config strips)."""

    name: str
    kind: MetricKind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


def convention_problems(spec: MetricSpec) -> list[str]:
    """What is wrong with `spec`'s name and labels (empty: it follows the conventions)."""
    problems = []
    if not NAME_PATTERN.match(spec.name):
        problems.append(f"{spec.name}: names are snake case and start with {PREFIX!r}")
    if spec.kind is MetricKind.COUNTER and not spec.name.endswith("_total"):
        problems.append(f"{spec.name}: a counter's name ends in _total")
    if spec.kind is not MetricKind.COUNTER and spec.name.endswith("_total"):
        problems.append(f"{spec.name}: only a counter's name ends in _total")
    if spec.kind is not MetricKind.COUNTER and not spec.name.endswith(UNIT_SUFFIXES):
        problems.append(f"{spec.name}: a {spec.kind} names its unit at the end, one of {', '.join(UNIT_SUFFIXES)}")
    if spec.kind is MetricKind.HISTOGRAM and not spec.buckets:
        problems.append(f"{spec.name}: a histogram lists its buckets")
    for label in spec.labels:
        if any(word in label for word in FORBIDDEN_LABEL_WORDS) and label != "camera_id":
            problems.append(f"{spec.name}: label {label!r} would hold a person or an event (unbounded, personal)")
        elif label not in ALLOWED_LABELS:
            problems.append(f"{spec.name}: label {label!r} is not one of the bounded labels {sorted(ALLOWED_LABELS)}")
    if not spec.help.strip():
        problems.append(f"{spec.name}: has no help text")
    return problems
