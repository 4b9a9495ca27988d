"""Open-set identification figures on hand-built score matrices whose answers are worked out by hand,
the bootstrap on synthetic galleries, and the report files.

The definitions (NIST FRVT 1:N): a probe alarms when its best score over the gallery >= t; FPIR counts
non-mated probes that alarm; TPIR counts mated probes whose top-ranked person is their own AND whose
score >= t. A wrong-person top hit is a miss, however high the mate scored.
"""

import base64
import json
import os
import re
import stat
import time

import numpy as np
import pytest

from cluster.evaluation.html_report import render_html, write_html_report
from cluster.evaluation.openset import (
    ProbeOutcomes,
    bootstrap_tpir_at_fpir,
    calibration_check,
    det_curve,
    fpir_at_threshold,
    group_breakdown,
    paired_bootstrap_difference,
    rank1,
    score_histogram,
    threshold_at_fpir,
    tpir_at_threshold,
    wilson_interval,
)
from cluster.evaluation.report import (
    FORMAT,
    CalibrationSpec,
    Dataset,
    EvaluationInput,
    build_report,
    report_document,
    write_json_report,
)

# Gallery: one entry each for a, b, c. Probes (rows):
#   0: a, mate first at 0.9              -> hit at t <= 0.9
#   1: b, mate 0.7 but a scores 0.8      -> a miss at every threshold (the alarm would name a)
#   2: x, not enrolled, best 0.6         -> false alarm at t <= 0.6
#   3: y, not enrolled, best 0.85        -> false alarm at t <= 0.85
#   4: c, mate first at 0.4              -> hit at t <= 0.4
GALLERY = ["a", "b", "c"]
PROBES = ["a", "b", "x", "y", "c"]
SCORES = np.array(
    [
        [0.9, 0.2, 0.1],
        [0.8, 0.7, 0.1],
        [0.3, 0.6, 0.2],
        [0.5, 0.1, 0.85],
        [0.1, 0.2, 0.4],
    ]
)


@pytest.fixture(scope="module")
def hand() -> ProbeOutcomes:
    return ProbeOutcomes.from_scores(SCORES, GALLERY, PROBES)


def nonmated_only(scores: list[float], hits: list[float]) -> ProbeOutcomes:
    """Outcomes with the given non-mated best scores and mated probes whose mates ranked first at `hits`."""
    n_nonmated, n_mated = len(scores), len(hits)
    return ProbeOutcomes(
        mated=np.array([False] * n_nonmated + [True] * n_mated),
        top_score=np.array(scores + hits, dtype=float),
        mate_score=np.array([np.nan] * n_nonmated + hits, dtype=float),
        top_is_mate=np.array([False] * n_nonmated + [True] * n_mated),
        cluster=np.array([f"n{i}" for i in range(n_nonmated)] + [f"m{i}" for i in range(n_mated)]),
    )


def synthetic(
    rng: np.random.Generator,
    mated_people: int,
    nonmated_people: int,
    photos: int = 2,
    separation: float = 2.5,
    acquired: np.ndarray | None = None,
) -> ProbeOutcomes:
    """A gallery of `mated_people`, `photos` probes per person; a person's photos share a random offset on
    their mate score, as real photos of one person share their difficulty."""
    gallery = [f"m{i}" for i in range(mated_people)]
    people = gallery + [f"n{i}" for i in range(nonmated_people)]
    labels = [person for person in people for _ in range(photos)]
    scores = rng.normal(size=(len(labels), mated_people))
    difficulty = rng.normal(size=mated_people)
    for row, person in enumerate(labels[: mated_people * photos]):
        index = int(person[1:])
        scores[row, index] += separation + difficulty[index]
    return ProbeOutcomes.from_scores(scores, gallery, labels, acquired=acquired)


# --- per-probe outcomes ------------------------------------------------------------------------------


def test_from_scores_reduces_each_probe_to_its_outcome(hand: ProbeOutcomes) -> None:
    assert hand.mated.tolist() == [True, True, False, False, True]
    assert hand.top_score.tolist() == [0.9, 0.8, 0.6, 0.85, 0.4]
    assert hand.top_is_mate.tolist() == [True, False, False, False, True]
    np.testing.assert_array_equal(hand.mate_score, [0.9, 0.7, np.nan, np.nan, 0.4])
    assert hand.cluster.tolist() == PROBES
    with pytest.raises(ValueError, match="read-only"):
        hand.top_score[0] = 0.0


@pytest.mark.parametrize(
    ("threshold", "tpir", "fpir"),
    [
        (0.3, 2 / 3, 1.0),
        (0.4, 2 / 3, 1.0),  # >=: a score equal to the threshold alarms
        (0.5, 1 / 3, 1.0),
        (0.6, 1 / 3, 1.0),
        (0.7, 1 / 3, 0.5),  # probe 1's mate clears 0.7, but a outranks it: still a miss
        (0.85, 1 / 3, 0.5),
        (0.9, 1 / 3, 0.0),
        (0.95, 0.0, 0.0),
    ],
)
def test_tpir_and_fpir_at_threshold(hand: ProbeOutcomes, threshold: float, tpir: float, fpir: float) -> None:
    assert tpir_at_threshold(hand, threshold) == pytest.approx(tpir)
    assert fpir_at_threshold(hand, threshold) == pytest.approx(fpir)


def test_a_wrong_person_top_hit_is_never_a_true_positive(hand: ProbeOutcomes) -> None:
    """Probe 1 (b) scores 0.7 for b and 0.8 for a: an alarm there names a. Counting it as a true positive
    (TPIR = share of mates scoring >= t) would give 2/3 at t = 0.5; the right answer is 1/3."""
    assert tpir_at_threshold(hand, 0.5) == pytest.approx(1 / 3)
    assert tpir_at_threshold(hand, -10.0) == pytest.approx(2 / 3)
    assert rank1(hand) == pytest.approx(2 / 3)


def test_a_person_scores_the_maximum_over_their_entries() -> None:
    """a has two entries. Probe 0's best entry for a (0.8) beats b (0.5); probe 1 scores 0.6 at best for a,
    below b's 0.7; probe 2 (not enrolled) takes its best score over every entry of everyone."""
    outcomes = ProbeOutcomes.from_scores(
        [[0.3, 0.8, 0.5], [0.6, 0.1, 0.7], [0.2, 0.65, 0.4]], ["a", "a", "b"], ["a", "a", "z"]
    )
    assert outcomes.mate_score[:2].tolist() == [0.8, 0.6]
    assert outcomes.top_is_mate.tolist() == [True, False, False]
    assert outcomes.top_score.tolist() == [0.8, 0.7, 0.65]
    assert rank1(outcomes) == 0.5


def test_a_mate_tied_for_first_is_not_rank_1() -> None:
    outcomes = ProbeOutcomes.from_scores([[0.7, 0.7], [0.7, 0.6]], ["a", "b"], ["a", "a"])
    assert outcomes.top_is_mate.tolist() == [False, True]
    assert tpir_at_threshold(outcomes, 0.5) == 0.5


def test_a_gallery_of_one_person_ranks_every_mate_first() -> None:
    outcomes = ProbeOutcomes.from_scores([[0.1], [0.4]], ["a"], ["a", "q"])
    assert outcomes.top_is_mate.tolist() == [True, False]
    assert rank1(outcomes) == 1.0


@pytest.mark.parametrize(
    ("scores", "gallery", "probes", "error"),
    [
        ([0.1, 0.2], ["a", "b"], ["a"], r"expected a \(n_probes, n_gallery\) matrix, got shape \(2,\)"),
        (np.zeros((2, 0)), [], ["a", "b"], "gallery has no entries"),
        ([[0.1, 0.2]], ["a"], ["a"], r"gallery_labels: expected 2 labels"),
        ([[0.1, 0.2]], ["a", "b"], ["a", "b"], r"probe_labels: expected 1 labels"),
        ([[0.1, np.nan], [0.2, 0.3]], ["a", "b"], ["a", "b"], "1 scores are NaN or infinite .*probe 0 .*entry 1"),
    ],
)
def test_from_scores_says_what_it_expected(scores: object, gallery: list[str], probes: list[str], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ProbeOutcomes.from_scores(scores, gallery, probes)


def test_a_failure_to_acquire_is_a_miss_or_no_alarm_and_stays_in_every_denominator() -> None:
    """No usable face in probe 0 (a, else a hit at 0.9) nor probe 2 (x, else a false alarm at 0.6): probe 0
    becomes a miss at every threshold, probe 2 never alarms, and both still count."""
    scores = SCORES.copy()
    scores[[0, 2]] = np.nan  # ignored: nothing was scored
    failed = ProbeOutcomes.from_scores(scores, GALLERY, PROBES, acquired=[False, True, False, True, True])
    assert failed.n_failed == 2
    assert failed.top_score.tolist() == [-np.inf, 0.8, -np.inf, 0.85, 0.4]
    assert failed.mate_score[[0, 1, 4]].tolist() == [-np.inf, 0.7, 0.4]
    assert (tpir_at_threshold(failed, -100.0), fpir_at_threshold(failed, -100.0)) == (pytest.approx(1 / 3), 0.5)
    assert rank1(failed) == pytest.approx(1 / 3)
    point = threshold_at_fpir(failed, 0.5)
    assert (point.false_alarms, point.nonmated, point.resolvable) == (1, 2, True)
    assert det_curve(failed).thresholds.tolist() == [0.4, 0.85]
    histogram = score_histogram(failed)
    assert (histogram.mated.sum(), histogram.nonmated.sum()) == (2, 1)
    (estimate,) = bootstrap_tpir_at_fpir(failed, [0.5], rounds=50)
    assert estimate.tpir == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"acquired: expected 5 flags"):
        ProbeOutcomes.from_scores(SCORES, GALLERY, PROBES, acquired=[True])


def test_outcomes_refuse_an_inconsistent_probe() -> None:
    with pytest.raises(ValueError, match="non-mated probe has no mate"):
        ProbeOutcomes(mated=[False], top_score=[0.5], mate_score=[np.nan], top_is_mate=[True], cluster=["x"])
    with pytest.raises(ValueError, match=r"top_score: expected shape \(2,\)"):
        ProbeOutcomes(
            mated=[True, False], top_score=[0.5], mate_score=[0.5, np.nan], top_is_mate=[True, False], cluster=["x"]
        )


# --- thresholds ------------------------------------------------------------------------------------

# Non-mated best scores 0.9, 0.8, 0.8, 0.5, 0.3 (five probes).
TIED = [0.9, 0.8, 0.8, 0.5, 0.3]


@pytest.mark.parametrize(
    ("target", "above", "false_alarms", "resolvable"),
    [
        (0.2, 0.8, 1, True),  # one false alarm allowed: just above 0.8
        (0.4, 0.8, 1, True),  # two allowed, but the tie at 0.8 would make three: it stays above 0.8
        (0.6, 0.5, 3, True),
        (0.8, 0.3, 4, True),
        (0.99, 0.3, 4, True),  # 4.95 allowed rounds down to 4
        (0.199, 0.9, 0, False),  # below 1/5: not resolvable, above the highest non-mated score
        (0.01, 0.9, 0, False),
    ],
)
def test_threshold_at_fpir_is_the_lowest_meeting_the_target(
    target: float, above: float, false_alarms: int, resolvable: bool
) -> None:
    outcomes = nonmated_only(TIED, [0.95])
    point = threshold_at_fpir(outcomes, target)
    assert point.threshold == np.nextafter(above, np.inf)
    assert (point.false_alarms, point.nonmated, point.resolvable) == (false_alarms, 5, resolvable)
    assert point.fpir == fpir_at_threshold(outcomes, point.threshold) <= target
    assert fpir_at_threshold(outcomes, np.nextafter(point.threshold, -np.inf)) > target


def test_threshold_at_fpir_does_not_lose_a_false_alarm_to_rounding() -> None:
    """0.29 * 100 is 28.999999999999996 in binary: 29 false alarms are allowed, not 28."""
    outcomes = nonmated_only([float(score) for score in range(100)], [1000.0])
    assert threshold_at_fpir(outcomes, 0.29).false_alarms == 29


@pytest.mark.parametrize("target", [0.0, 1.0, -0.1, 1.5])
def test_threshold_at_fpir_refuses_a_target_that_is_not_a_rate(hand: ProbeOutcomes, target: float) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        threshold_at_fpir(hand, target)


def test_fpir_without_non_mated_probes_is_a_clear_error() -> None:
    mated = ProbeOutcomes.from_scores([[0.9, 0.1], [0.2, 0.8]], ["a", "b"], ["a", "b"])
    for figure in (
        lambda: threshold_at_fpir(mated, 0.01),
        lambda: fpir_at_threshold(mated, 0.5),
        lambda: det_curve(mated),
        lambda: calibration_check(mated, 0.5, 0.01),
        lambda: bootstrap_tpir_at_fpir(mated, [0.01], rounds=10),
    ):
        with pytest.raises(ValueError, match="non-mated probes .* there are none; add probes of people who are not"):
            figure()


def test_tpir_without_mated_probes_is_a_clear_error() -> None:
    strangers = ProbeOutcomes.from_scores([[0.9, 0.1]], ["a", "b"], ["z"])
    with pytest.raises(ValueError, match="mated probes .* there are none"):
        tpir_at_threshold(strangers, 0.5)
    with pytest.raises(ValueError, match="mated probes .* there are none"):
        rank1(strangers)


# --- DET ---------------------------------------------------------------------------------------------


def test_det_curve_is_monotone_and_agrees_with_the_point_figures() -> None:
    outcomes = synthetic(np.random.default_rng(3), mated_people=60, nonmated_people=80)
    det = det_curve(outcomes)
    assert np.all(np.diff(det.thresholds) > 0)
    assert np.all(np.diff(det.fpir) <= 0)
    assert np.all(np.diff(det.fnir) >= 0)
    for index in (0, len(det.thresholds) // 3, len(det.thresholds) - 1):
        threshold = det.thresholds[index]
        assert det.fpir[index] == fpir_at_threshold(outcomes, threshold)
        assert det.fnir[index] == pytest.approx(1 - tpir_at_threshold(outcomes, threshold))


def test_det_curve_of_the_hand_matrix(hand: ProbeOutcomes) -> None:
    det = det_curve(hand)
    assert det.thresholds.tolist() == [0.4, 0.6, 0.85, 0.9]
    assert det.fpir.tolist() == [1.0, 1.0, 0.5, 0.0]
    assert det.fnir == pytest.approx([1 / 3, 2 / 3, 2 / 3, 2 / 3])


# --- bootstrap -----------------------------------------------------------------------------------------


def test_bootstrap_interval_contains_the_point_estimate_and_narrows_with_more_people() -> None:
    rng = np.random.default_rng(7)
    small = synthetic(rng, mated_people=40, nonmated_people=60)
    large = synthetic(rng, mated_people=640, nonmated_people=960)
    widths = []
    for outcomes in (small, large):
        (estimate,) = bootstrap_tpir_at_fpir(outcomes, [0.05], rounds=400, seed=1)
        point = threshold_at_fpir(outcomes, 0.05)
        assert estimate.threshold == point.threshold
        assert estimate.tpir == tpir_at_threshold(outcomes, point.threshold)
        assert estimate.low <= estimate.tpir <= estimate.high
        widths.append(estimate.high - estimate.low)
    assert widths[1] < widths[0] / 2


def test_bootstrap_is_repeatable_by_seed() -> None:
    outcomes = synthetic(np.random.default_rng(5), mated_people=50, nonmated_people=50)
    first = bootstrap_tpir_at_fpir(outcomes, [0.1, 0.02], rounds=200, seed=11)
    assert first == bootstrap_tpir_at_fpir(outcomes, [0.1, 0.02], rounds=200, seed=11)
    assert first != bootstrap_tpir_at_fpir(outcomes, [0.1, 0.02], rounds=200, seed=12)


def test_resampling_one_cluster_reproduces_the_sample_exactly() -> None:
    """With every mated probe in one cluster and every non-mated probe in another, each resample draws the
    sample itself: the resampled thresholds and TPIRs (ties included) must equal the point figures."""
    outcomes = nonmated_only(TIED + [0.7, 0.2], [0.95, 0.8, 0.8, 0.6, 0.5])
    one_each = np.where(outcomes.mated, "mated", "stranger")
    clustered = ProbeOutcomes(
        outcomes.mated, outcomes.top_score, outcomes.mate_score, outcomes.top_is_mate, cluster=one_each
    )
    for estimate in bootstrap_tpir_at_fpir(clustered, [0.01, 0.15, 0.3, 0.45, 0.6], rounds=20):
        assert estimate.low == estimate.tpir == estimate.high


def test_resampling_people_widens_the_interval_when_their_photos_agree() -> None:
    """Four identical photos per person carry the information of one: resampling photos as if independent
    understates the uncertainty, which is why the bootstrap resamples people by default."""
    outcomes = synthetic(np.random.default_rng(9), mated_people=80, nonmated_people=120, photos=1)
    arrays = (outcomes.mated, outcomes.top_score, outcomes.mate_score, outcomes.top_is_mate, outcomes.cluster)
    photos = ProbeOutcomes(*(np.repeat(array, 4) for array in arrays))
    (by_person,) = bootstrap_tpir_at_fpir(photos, [0.1], rounds=1000, seed=2)
    (by_photo,) = bootstrap_tpir_at_fpir(photos, [0.1], rounds=1000, seed=2, resample="probe")
    assert by_person.tpir == by_photo.tpir
    assert (by_person.high - by_person.low) > 1.5 * (by_photo.high - by_photo.low)  # about 2 = sqrt(4) here


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"fpirs": []}, "at least one FPIR target"),
        ({"fpirs": [0.1, 0.1]}, "each FPIR target once"),
        ({"rounds": 0}, "at least 1 bootstrap round"),
        ({"resample": "photo"}, "expected one of cluster, probe"),
        ({"confidence": 95}, "strictly between 0 and 1"),
    ],
)
def test_bootstrap_says_what_it_expected(hand: ProbeOutcomes, arguments: dict, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        bootstrap_tpir_at_fpir(hand, **{"fpirs": [0.1], **arguments})


def test_paired_difference_of_a_system_with_itself_is_exactly_zero() -> None:
    outcomes = synthetic(np.random.default_rng(4), mated_people=70, nonmated_people=90)
    for difference in paired_bootstrap_difference(outcomes, outcomes, [0.1, 0.01], rounds=300, seed=3):
        assert (difference.difference, difference.low, difference.high) == (0.0, 0.0, 0.0)
        assert difference.tpir_a == difference.tpir_b


def test_paired_difference_sees_a_better_system() -> None:
    """Same probes, stronger mate scores: the difference is the difference of the point figures, and its
    paired interval sits above 0."""
    weak = synthetic(np.random.default_rng(6), mated_people=150, nonmated_people=150, separation=1.5)
    strong = synthetic(np.random.default_rng(6), mated_people=150, nonmated_people=150, separation=2.5)
    (difference,) = paired_bootstrap_difference(strong, weak, [0.05], rounds=300)
    expected = tpir_at_threshold(strong, threshold_at_fpir(strong, 0.05).threshold) - tpir_at_threshold(
        weak, threshold_at_fpir(weak, 0.05).threshold
    )
    assert difference.difference == pytest.approx(expected)
    assert 0 < difference.low <= difference.difference <= difference.high


def test_paired_difference_needs_the_same_probes(hand: ProbeOutcomes) -> None:
    other = ProbeOutcomes.from_scores(SCORES, GALLERY, ["a", "b", "x", "y", "q"])
    with pytest.raises(ValueError, match="1 probes differ in mated status or cluster .* probe 4"):
        paired_bootstrap_difference(hand, other, [0.5], rounds=10)
    with pytest.raises(ValueError, match="scored 5 and 2 probes"):
        paired_bootstrap_difference(hand, nonmated_only([0.1], [0.2]), [0.5], rounds=10)


def test_bootstrap_at_deployment_scale_takes_seconds() -> None:
    """3,000 probes against 1,000 gallery entries, 1,000 rounds, three FPIR targets, paired too."""
    rng = np.random.default_rng(0)
    labels = [f"m{i}" for i in range(1000) for _ in range(2)] + [f"n{i}" for i in range(1000)]
    scores = rng.normal(size=(3000, 1000))
    scores[np.arange(2000), np.repeat(np.arange(1000), 2)] += 3.0
    start = time.perf_counter()
    outcomes = ProbeOutcomes.from_scores(scores, [f"m{i}" for i in range(1000)], labels)
    bootstrap_tpir_at_fpir(outcomes, [0.01, 0.001, 0.0001], rounds=1000)
    paired_bootstrap_difference(outcomes, outcomes, [0.01, 0.001, 0.0001], rounds=1000)
    assert time.perf_counter() - start < 30


# --- groups, calibration, histograms -----------------------------------------------------------------


def test_group_breakdown_of_the_hand_matrix_sums_to_the_totals(hand: ProbeOutcomes) -> None:
    rows = group_breakdown(hand, ["g1", "g1", "g2", "g1", "g2"], threshold=0.5)
    assert [(row.group, row.probes, row.mated, row.nonmated, row.hits, row.false_alarms) for row in rows] == [
        ("g1", 3, 2, 1, 1, 1),
        ("g2", 2, 1, 1, 0, 1),
    ]
    assert [(row.tpir, row.fpir) for row in rows] == [(0.5, 1.0), (0.0, 1.0)]


def test_group_breakdown_sums_to_the_totals_and_leaves_empty_rates_undefined() -> None:
    outcomes = synthetic(np.random.default_rng(8), mated_people=40, nonmated_people=40)
    groups = np.where(outcomes.mated, np.array(["f", "m"])[np.arange(len(outcomes)) % 2], "only strangers")
    threshold = threshold_at_fpir(outcomes, 0.1).threshold
    rows = group_breakdown(outcomes, groups, threshold)
    assert sum(row.probes for row in rows) == len(outcomes)
    assert sum(row.false_alarms for row in rows) == round(fpir_at_threshold(outcomes, threshold) * outcomes.n_nonmated)
    assert sum(row.hits for row in rows) == round(tpir_at_threshold(outcomes, threshold) * outcomes.n_mated)
    strangers = next(row for row in rows if row.group == "only strangers")
    assert strangers.tpir is None and strangers.fpir is not None
    with pytest.raises(ValueError, match=r"groups: expected 160 labels \(one per probe\)"):
        group_breakdown(outcomes, groups[:80], threshold)


@pytest.mark.parametrize(
    ("false_alarms", "stated", "within"),
    [
        (40, 0.01, False),  # observed 4x the stated FPIR
        (10, 0.04, False),  # observed a quarter of it
        (15, 0.01, True),
        (20, 0.01, True),  # exactly 2x is still within
        (5, 0.01, True),  # exactly half
        (0, 0.01, False),
    ],
)
def test_calibration_check_flags_a_threshold_off_by_more_than_2x(
    false_alarms: int, stated: float, within: bool
) -> None:
    outcomes = nonmated_only([1.0] * false_alarms + [0.0] * (1000 - false_alarms), [2.0])
    check = calibration_check(outcomes, 0.5, stated)
    assert (check.false_alarms, check.nonmated, check.within_factor_2) == (false_alarms, 1000, within)
    assert check.observed_fpir == false_alarms / 1000
    assert check.expected_false_alarms == pytest.approx(stated * 1000)
    assert check.low <= check.observed_fpir <= check.high


def test_wilson_interval_matches_the_textbook() -> None:
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    with pytest.raises(ValueError, match="successes <= trials"):
        wilson_interval(3, 2)


def test_score_histogram_counts_mate_scores_and_non_mated_maxima(hand: ProbeOutcomes) -> None:
    histogram = score_histogram(hand, bins=2)
    assert histogram.edges.tolist() == [0.4, 0.65, 0.9]
    assert histogram.mated.tolist() == [1, 2]  # mates 0.4 | 0.7 (outranked, still its mate's score), 0.9
    assert histogram.nonmated.tolist() == [1, 1]  # best scores 0.6 | 0.85


# --- the report ----------------------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def evaluation() -> EvaluationInput:
    baseline = synthetic(np.random.default_rng(12), mated_people=60, nonmated_people=90, separation=2.0)
    acquired = np.arange(300) % 50 != 7  # six probes with no usable face
    hostile = synthetic(np.random.default_rng(12), 60, 90, separation=3.0, acquired=acquired)
    groups = tuple(np.array(["A", HOSTILE, "C & D"])[np.arange(len(baseline)) % 3])
    return EvaluationInput(
        dataset=Dataset("lfw <test>", "Synthetic scores; " + HOSTILE, gallery_people=60, gallery_entries=60),
        systems={"dlib": baseline, HOSTILE: hostile},
        fpirs=(0.1, 0.01, 0.001),
        baseline="dlib",
        groups=groups,
        calibration=(CalibrationSpec("dlib", 2.0, 0.01, HOSTILE),),
        notes=(f"note {HOSTILE}",),
        rounds=200,
    )


@pytest.fixture(scope="module")
def report(evaluation: EvaluationInput):
    return build_report(evaluation)


def test_report_figures_are_the_library_figures(evaluation: EvaluationInput, report) -> None:
    dlib = report.systems[0]
    assert [system.name for system in report.systems] == ["dlib", HOSTILE]
    assert dlib.rank1 == rank1(evaluation.systems["dlib"])
    assert dlib.estimates == bootstrap_tpir_at_fpir(evaluation.systems["dlib"], evaluation.fpirs, rounds=200)
    assert [difference.system for difference in report.differences] == [HOSTILE]
    assert report.counts.probes == 300 and report.counts.nonmated_clusters == 90
    assert dlib.groups.operating_point == threshold_at_fpir(evaluation.systems["dlib"], 0.1)
    assert report.calibration[0].check == calibration_check(evaluation.systems["dlib"], 2.0, 0.01)
    limits = " ".join(report.limits)
    assert "1/180" in limits and "(0.001) are marked *" in limits and "failures to acquire" in limits
    assert [system.failed for system in report.systems] == [0, 6]


def test_report_html_is_self_contained_and_escapes_outside_text(report) -> None:
    html = render_html(report)
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # system, group, source, note, description
    assert "C &amp; D" in html
    assert 'src="http' not in html and "href=" not in html and "@import" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert len(sources) == 1 + len(report.systems) + 1  # DET, a histogram per system, groups
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert "What these figures can and cannot show" in html


def test_report_json_round_trips_with_stable_keys(report, tmp_path) -> None:
    path = write_json_report(report, tmp_path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document == report_document(report)
    assert list(document) == [
        "format",
        "dataset",
        "probes",
        "method",
        "systems",
        "differences",
        "calibration",
        "calibration_trials",
        "limits",
        "notes",
    ]
    assert document["format"] == FORMAT
    system = document["systems"][1]
    assert system["name"] == HOSTILE
    assert list(system) == ["name", "failed_to_acquire", "rank1", "tpir_at_fpir", "det", "score_histogram", "groups"]
    assert [row["group"] for row in system["groups"]["rows"]] == sorted(["A", HOSTILE, "C & D"])
    assert document["calibration"][0]["within_factor_2"] in (True, False)
    assert write_html_report(report, tmp_path).read_text(encoding="utf-8") == render_html(report)


def test_report_files_are_owner_only_whatever_the_umask(report, tmp_path) -> None:
    previous = os.umask(0o022)
    try:
        written = [write_json_report(report, tmp_path), write_html_report(report, tmp_path)]
    finally:
        os.umask(previous)
    assert [stat.S_IMODE(path.stat().st_mode) for path in written] == [0o600, 0o600]


def test_report_without_groups_baseline_or_calibration(evaluation: EvaluationInput) -> None:
    plain = build_report(
        EvaluationInput(
            dataset=evaluation.dataset, systems={"dlib": evaluation.systems["dlib"]}, fpirs=(0.1,), rounds=50
        )
    )
    assert plain.systems[0].groups is None and plain.differences == () and plain.calibration == ()
    html = render_html(plain)
    assert "No groups were given" in html and "No baseline was named" in html
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 2
    json.dumps(report_document(plain), allow_nan=False)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"baseline": "faceres"}, "baseline: expected one of two or more systems"),
        ({"groups": ("A",)}, r"groups: expected one label per probe \(300\), got 1"),
        ({"calibration": (CalibrationSpec("faceres", 0.5, 0.01, "config"),)}, "calibration: system 'faceres'"),
        ({"fpirs": (0.01, 2.0)}, "strictly between 0 and 1"),
        ({"systems": {}}, "at least one system"),
        ({"resample": "photo"}, "resample: expected one of cluster, probe"),
    ],
)
def test_evaluation_input_says_what_it_expected(evaluation: EvaluationInput, change: dict, error: str) -> None:
    fields = {
        "dataset": evaluation.dataset,
        "systems": evaluation.systems,
        "fpirs": evaluation.fpirs,
        "baseline": evaluation.baseline,
        "groups": evaluation.groups,
    }
    with pytest.raises(ValueError, match=error):
        EvaluationInput(**{**fields, **change})


def test_evaluation_input_needs_every_system_on_the_same_probes(evaluation: EvaluationInput, hand) -> None:
    with pytest.raises(ValueError, match="scored 300 and 5 probes"):
        EvaluationInput(
            dataset=evaluation.dataset, systems={"dlib": evaluation.systems["dlib"], "x": hand}, fpirs=(0.1,)
        )
