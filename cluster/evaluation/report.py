"""An open-set evaluation as typed records, computed once, that `report.json` and `report.html` both render.

`lfr evaluate` fills an `EvaluationInput` (what was evaluated, each system's probe outcomes, the FPIR
targets that matter for the deployment); `build_report` computes every figure from it; the writers only
format. So the JSON and the page can never disagree, and the figures can be tested without either.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from cluster.evaluation.calibration_trials import CalibrationTrial
from cluster.evaluation.openset import (
    CONFIDENCE,
    RESAMPLE_UNITS,
    CalibrationCheck,
    DetCurve,
    GroupOutcome,
    OperatingPoint,
    ProbeOutcomes,
    Resample,
    ScoreHistogram,
    TpirAtFpir,
    TpirDifference,
    bootstrap_tpir_at_fpir,
    calibration_check,
    check_fpirs,
    check_same_probes,
    det_curve,
    group_breakdown,
    paired_bootstrap_difference,
    rank1,
    score_histogram,
    threshold_at_fpir,
)
from cluster.private_files import write_private_text

FORMAT = "lfr-evaluation-report/1"
JSON_NAME = "report.json"
# A stated FPIR expecting fewer false alarms than this on the sample is tested only for gross miscalibration.
MIN_EXPECTED_FALSE_ALARMS = 5


@dataclass(frozen=True)
class Dataset:
    """What was evaluated: a name, a free description (sources, how probes were chosen), the gallery's size."""

    name: str
    description: str
    gallery_people: int
    gallery_entries: int


@dataclass(frozen=True)
class CalibrationSpec:
    """A threshold a system is stated to run at and the FPIR it is stated to give there.

    source: where the statement comes from (a configuration key, a calibration run), shown with the check.
    """

    system: str
    threshold: float
    stated_fpir: float
    source: str


@dataclass(frozen=True, eq=False)
class EvaluationInput:
    """Everything the report is computed from, as the CLI fills it.

    systems: name -> outcomes, in report order, all on the same probes in the same order (the paired
    differences rest on that). baseline: a system every other one is compared with (system minus
    baseline); None for no comparison. groups: one label per probe, for the breakdown at the threshold
    meeting group_fpir (default: the first of fpirs). rounds, seed, resample: the bootstrap.
    """

    dataset: Dataset
    systems: Mapping[str, ProbeOutcomes]
    fpirs: tuple[float, ...]
    baseline: str | None = None
    groups: tuple[str, ...] | None = None
    group_fpir: float | None = None
    calibration: tuple[CalibrationSpec, ...] = ()
    notes: tuple[str, ...] = ()
    trials: tuple[CalibrationTrial, ...] = ()
    rounds: int = 1000
    seed: int = 0
    resample: Resample = "cluster"

    def __post_init__(self) -> None:
        object.__setattr__(self, "systems", MappingProxyType(dict(self.systems)))
        object.__setattr__(self, "fpirs", check_fpirs(self.fpirs))
        if not self.systems:
            raise ValueError("systems: give at least one system's outcomes (name -> ProbeOutcomes)")
        first, *others = self.systems.values()
        for other in others:
            check_same_probes(first, other)
        names = ", ".join(self.systems)
        if self.baseline is not None and (self.baseline not in self.systems or len(self.systems) < 2):
            raise ValueError(f"baseline: expected one of two or more systems ({names}), got {self.baseline!r}")
        if self.groups is not None:
            object.__setattr__(self, "groups", tuple(str(group) for group in self.groups))
            if len(self.groups) != len(first):
                raise ValueError(f"groups: expected one label per probe ({len(first)}), got {len(self.groups)}")
        if self.group_fpir is not None:
            check_fpirs((self.group_fpir,))
        for spec in self.calibration:
            if spec.system not in self.systems:
                raise ValueError(f"calibration: system {spec.system!r} is not one of the systems ({names})")
            check_fpirs((spec.stated_fpir,))
        if self.resample not in RESAMPLE_UNITS:
            raise ValueError(f"resample: expected one of {', '.join(RESAMPLE_UNITS)}, got {self.resample!r}")


@dataclass(frozen=True)
class ProbeCounts:
    """The probes behind every figure, and the people (clusters) they come from."""

    probes: int
    mated: int
    nonmated: int
    mated_clusters: int
    nonmated_clusters: int


@dataclass(frozen=True)
class GroupResult:
    """The group breakdown of one system at its threshold for the breakdown's FPIR target."""

    operating_point: OperatingPoint
    rows: tuple[GroupOutcome, ...]


@dataclass(frozen=True, eq=False)
class SystemResult:
    """One system's figures. failed: probes in which it found no usable face (failures to acquire).
    groups is None when the input had no groups."""

    name: str
    failed: int
    rank1: float
    estimates: tuple[TpirAtFpir, ...]
    det: DetCurve
    histogram: ScoreHistogram
    groups: GroupResult | None


@dataclass(frozen=True)
class SystemDifference:
    """A system against the baseline at each FPIR target (tpir_a is the system's, tpir_b the baseline's)."""

    system: str
    baseline: str
    differences: tuple[TpirDifference, ...]


@dataclass(frozen=True)
class CalibrationResult:
    spec: CalibrationSpec
    check: CalibrationCheck


@dataclass(frozen=True, eq=False)
class EvaluationReport:
    """The computed report. limits: what these figures can and cannot show, worked out from the sample."""

    dataset: Dataset
    counts: ProbeCounts
    fpirs: tuple[float, ...]
    rounds: int
    seed: int
    resample: Resample
    confidence: float
    systems: tuple[SystemResult, ...]
    differences: tuple[SystemDifference, ...]
    calibration: tuple[CalibrationResult, ...]
    group_fpir: float | None
    limits: tuple[str, ...]
    notes: tuple[str, ...] = ()
    trials: tuple[CalibrationTrial, ...] = ()


def _counts(outcomes: ProbeOutcomes) -> ProbeCounts:
    return ProbeCounts(
        probes=len(outcomes),
        mated=outcomes.n_mated,
        nonmated=outcomes.n_nonmated,
        mated_clusters=np.unique(outcomes.cluster[outcomes.mated]).shape[0],
        nonmated_clusters=np.unique(outcomes.cluster[~outcomes.mated]).shape[0],
    )


def _system(name: str, outcomes: ProbeOutcomes, spec: EvaluationInput, group_fpir: float | None) -> SystemResult:
    groups = None
    if spec.groups is not None and group_fpir is not None:  # both or neither: see build_report
        point = threshold_at_fpir(outcomes, group_fpir)
        groups = GroupResult(point, group_breakdown(outcomes, spec.groups, point.threshold))
    return SystemResult(
        name=name,
        failed=outcomes.n_failed,
        rank1=rank1(outcomes),
        estimates=bootstrap_tpir_at_fpir(outcomes, spec.fpirs, spec.rounds, spec.seed, spec.resample),
        det=det_curve(outcomes),
        histogram=score_histogram(outcomes),
        groups=groups,
    )


def _limits(
    counts: ProbeCounts,
    spec: EvaluationInput,
    systems: tuple[SystemResult, ...],
    calibration: tuple[CalibrationResult, ...],
) -> tuple[str, ...]:
    """Plain sentences on what this sample can resolve, so no figure is read for more than it holds."""
    unit = "people (clusters)" if spec.resample == "cluster" else "single probes"
    limits = [
        f"FPIR is counted on {counts.nonmated} non-mated probes of {counts.nonmated_clusters} people: the smallest "
        f"FPIR above zero that can be observed is 1/{counts.nonmated} = {1 / counts.nonmated:.2g}. A lower FPIR "
        "cannot be observed on this sample, however good the system.",
        f"TPIR is counted on {counts.mated} mated probes of {counts.mated_clusters} people: one probe moves it by "
        f"{1 / counts.mated:.2g}.",
        f"Intervals are {CONFIDENCE:.0%} percentile bootstrap intervals over {spec.rounds} resamples of {unit} drawn "
        "with replacement, mated and non-mated separately; each resample sets its own threshold for the target. "
        "They cover the luck of which people were sampled, not footage unlike this dataset (other cameras, light, "
        "pose, ages or demographics).",
        "Rank-1 ignores the threshold: it is how often the right person tops the list, not how often an alarm "
        "would be raised.",
    ]
    if any(system.failed for system in systems):
        limits.append(
            "Probes in which no usable face was found (failures to acquire) count as misses when mated and as no "
            "alarm when non-mated, and stay in every denominator, as in NIST FRVT; they have no score to plot."
        )
    unresolvable = [estimate.fpir_target for estimate in systems[0].estimates if not estimate.resolvable]
    if unresolvable:
        limits.append(
            f"FPIR targets below 1/{counts.nonmated} ({', '.join(f'{target:g}' for target in unresolvable)}) are "
            "marked *: their threshold is set just above the highest non-mated score, and the TPIR shown is "
            "optimistic, since the threshold that truly meets the target may be higher."
        )
    if spec.resample == "probe":
        limits.append(
            "Resampling single probes treats one person's photos as independent, which they are not: "
            "these intervals are too narrow. Resample by cluster for intervals to rely on."
        )
    if spec.baseline is not None:
        limits.append(
            f"Differences from {spec.baseline} use the same resamples for both systems; an interval that excludes 0 "
            "is evidence of a real difference on people like these."
        )
    breakdown = systems[0].groups
    if breakdown is not None:
        target = breakdown.operating_point.fpir_target
        limits.append(
            "Group rows carry no intervals: a group's rates rest on its own, smaller, counts and move more by chance."
        )
        small = [row.group for row in breakdown.rows if row.nonmated * target < 1]
        if small:
            limits.append(
                f"Groups {', '.join(small)} have fewer than {1 / target:g} non-mated probes, so their FPIR cannot "
                f"be compared with the target of {target:g}."
            )
    weak = [
        f"{result.spec.system} at {result.spec.threshold:g}"
        for result in calibration
        if result.check.expected_false_alarms < MIN_EXPECTED_FALSE_ALARMS
    ]
    if weak:
        limits.append(
            f"Calibration checks expecting fewer than {MIN_EXPECTED_FALSE_ALARMS} false alarms on this sample "
            f"({'; '.join(weak)}) rest on a handful of events: chance alone can put a correct threshold outside "
            "a factor of 2 or a wrong one inside it, so only a gross miscalibration shows. Add non-mated probes."
        )
    return tuple(limits)


def build_report(spec: EvaluationInput) -> EvaluationReport:
    """Compute every figure of the report (the bootstraps take most of the time: well under a second each)."""
    first = next(iter(spec.systems.values()))
    counts = _counts(first)
    group_fpir = None
    if spec.groups is not None:
        group_fpir = spec.fpirs[0] if spec.group_fpir is None else spec.group_fpir
    systems = tuple(_system(name, outcomes, spec, group_fpir) for name, outcomes in spec.systems.items())
    differences: tuple[SystemDifference, ...] = ()
    if spec.baseline is not None:
        baseline = spec.systems[spec.baseline]
        differences = tuple(
            SystemDifference(
                system=name,
                baseline=spec.baseline,
                differences=paired_bootstrap_difference(
                    outcomes, baseline, spec.fpirs, spec.rounds, spec.seed, spec.resample
                ),
            )
            for name, outcomes in spec.systems.items()
            if name != spec.baseline
        )
    calibration = tuple(
        CalibrationResult(
            spec=claim, check=calibration_check(spec.systems[claim.system], claim.threshold, claim.stated_fpir)
        )
        for claim in spec.calibration
    )
    return EvaluationReport(
        dataset=spec.dataset,
        counts=counts,
        fpirs=spec.fpirs,
        rounds=spec.rounds,
        seed=spec.seed,
        resample=spec.resample,
        confidence=CONFIDENCE,
        systems=systems,
        differences=differences,
        calibration=calibration,
        group_fpir=group_fpir,
        limits=_limits(counts, spec, systems, calibration),
        notes=spec.notes,
        trials=spec.trials,
    )


def _floats(values: np.ndarray) -> list[float]:
    return [float(value) for value in values]


def _estimate(estimate: TpirAtFpir) -> dict[str, Any]:
    return {
        "fpir_target": estimate.fpir_target,
        "threshold": estimate.threshold,
        "tpir": estimate.tpir,
        "low": estimate.low,
        "high": estimate.high,
        "resolvable": estimate.resolvable,
    }


def _group(row: GroupOutcome) -> dict[str, Any]:
    return {
        "group": row.group,
        "probes": row.probes,
        "mated": row.mated,
        "nonmated": row.nonmated,
        "hits": row.hits,
        "false_alarms": row.false_alarms,
        "fpir": row.fpir,
        "tpir": row.tpir,
    }


def _groups(result: GroupResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    point = result.operating_point
    return {
        "fpir_target": point.fpir_target,
        "threshold": point.threshold,
        "rows": [_group(row) for row in result.rows],
    }


def _system_document(system: SystemResult) -> dict[str, Any]:
    return {
        "name": system.name,
        "failed_to_acquire": system.failed,
        "rank1": system.rank1,
        "tpir_at_fpir": [_estimate(estimate) for estimate in system.estimates],
        "det": {
            "thresholds": _floats(system.det.thresholds),
            "fpir": _floats(system.det.fpir),
            "fnir": _floats(system.det.fnir),
        },
        "score_histogram": {
            "edges": _floats(system.histogram.edges),
            "mated": [int(count) for count in system.histogram.mated],
            "nonmated": [int(count) for count in system.histogram.nonmated],
        },
        "groups": _groups(system.groups),
    }


def _difference(difference: SystemDifference) -> dict[str, Any]:
    return {
        "system": difference.system,
        "baseline": difference.baseline,
        "at": [
            {
                "fpir_target": item.fpir_target,
                "tpir_system": item.tpir_a,
                "tpir_baseline": item.tpir_b,
                "difference": item.difference,
                "low": item.low,
                "high": item.high,
            }
            for item in difference.differences
        ],
    }


def _calibration(result: CalibrationResult) -> dict[str, Any]:
    check = result.check
    return {
        "system": result.spec.system,
        "source": result.spec.source,
        "threshold": check.threshold,
        "stated_fpir": check.stated_fpir,
        "observed_fpir": check.observed_fpir,
        "false_alarms": check.false_alarms,
        "nonmated": check.nonmated,
        "expected_false_alarms": check.expected_false_alarms,
        "low": check.low,
        "high": check.high,
        "within_factor_2": check.within_factor_2,
    }


def report_document(report: EvaluationReport) -> dict[str, Any]:
    """The report as plain JSON-ready data (no NaN or infinity; absent figures are null)."""
    counts = report.counts
    return {
        "format": FORMAT,
        "dataset": {
            "name": report.dataset.name,
            "description": report.dataset.description,
            "gallery_people": report.dataset.gallery_people,
            "gallery_entries": report.dataset.gallery_entries,
        },
        "probes": {
            "probes": counts.probes,
            "mated": counts.mated,
            "nonmated": counts.nonmated,
            "mated_clusters": counts.mated_clusters,
            "nonmated_clusters": counts.nonmated_clusters,
        },
        "method": {
            "fpirs": list(report.fpirs),
            "bootstrap_rounds": report.rounds,
            "seed": report.seed,
            "resample": report.resample,
            "confidence": report.confidence,
            "group_fpir": report.group_fpir,
        },
        "systems": [_system_document(system) for system in report.systems],
        "differences": [_difference(difference) for difference in report.differences],
        "calibration": [_calibration(result) for result in report.calibration],
        "calibration_trials": [trial.record() for trial in report.trials],
        "limits": list(report.limits),
        "notes": list(report.notes),
    }


def write_json_report(report: EvaluationReport, out_dir: Path) -> Path:
    """Write `report.json` into `out_dir`; its path."""
    path = out_dir / JSON_NAME
    text = json.dumps(report_document(report), indent=2, ensure_ascii=False, allow_nan=False)
    write_private_text(path, text + "\n")
    return path
