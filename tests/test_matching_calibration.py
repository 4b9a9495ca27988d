"""Fusion and threshold calibration on synthetic cohorts whose true tails are known.

The lfw-public tests (tests/test_calibration_lfw.py) check the shipped cohort on real faces;
these check the maths: the threshold rises with the list's size, holds the stated rate where
the truth is known, refuses what the cohort cannot support, and fusing two models separates
better than either alone.
"""

import numpy as np
import pytest
from scipy.stats import norm

from cluster.matching.calibration import CalibrationRefused, ThresholdCalibration
from cluster.matching.cohort import CohortError, ImpostorCohort, PairScores
from cluster.matching.fusion import COSINE_SLACK, ModelNormalisation, ScoreFusion, fit_fusion


def gaussian_pairs(pairs: int = 400_000, people: int = 300, seed: int = 0) -> PairScores:
    """Impostor cosines N(0.5, 0.05) for two models, genuine ones higher; people indices spread evenly."""
    rng = np.random.default_rng(seed)
    impostor = {"a": rng.normal(0.5, 0.05, pairs), "b": rng.normal(0.3, 0.1, pairs)}
    genuine = {"a": rng.normal(0.75, 0.05, 5000), "b": rng.normal(0.8, 0.1, 5000)}
    first = rng.integers(0, people, pairs)
    second = (first + rng.integers(1, people, pairs)) % people
    return PairScores(impostor, (first, second), genuine, people)


@pytest.fixture(scope="module")
def one_model() -> ThresholdCalibration:
    pairs = gaussian_pairs()
    pairs = PairScores({"a": pairs.impostor["a"]}, pairs.impostor_people, {"a": pairs.genuine["a"]}, pairs.people)
    fusion = fit_fusion(("a",), pairs.impostor, pairs.genuine)
    return ThresholdCalibration.fit(pairs, fusion, "test")


def test_a_longer_list_needs_a_higher_threshold_for_the_same_rate(one_model):
    short = one_model.threshold_for(1e-3, 10)
    long = one_model.threshold_for(1e-3, 250)
    assert long.threshold > short.threshold
    assert long.expected_tpir < short.expected_tpir
    assert (short.list_size, long.list_size) == (10, 250)


@pytest.mark.parametrize(("rate", "size"), [(1e-2, 10), (1e-3, 50), (1e-3, 250), (1 / 6000, 1000)])
def test_the_threshold_holds_the_rate_of_a_known_gaussian_tail(one_model, rate, size):
    """With z-scored N(0, 1) impostors, the true FPIR at t is 1 - (1 - sf(t)) ** N: within the safety factor."""
    threshold = one_model.threshold_for(rate, size).threshold
    true_fpir = -np.expm1(size * np.log1p(-norm.sf(threshold)))
    assert rate / (2 * one_model.safety_factor) <= true_fpir <= rate * 1.25


def test_a_rate_the_cohort_cannot_support_is_refused_with_what_to_do(one_model):
    with pytest.raises(CalibrationRefused, match=r"per-pair impostor rate .* split the list \(at most about \d+"):
        one_model.threshold_for(1e-6, 1_000_000)


@pytest.mark.parametrize("rate", [0.0, -1e-3, 0.9, float("nan")])
def test_a_rate_that_is_not_a_rate_is_refused(one_model, rate):
    with pytest.raises(CalibrationRefused, match="is not a rate"):
        one_model.threshold_for(rate, 10)


def test_too_small_a_cohort_is_refused():
    pairs = gaussian_pairs(pairs=10_000)
    fusion = fit_fusion(("a", "b"), pairs.impostor, pairs.genuine)
    with pytest.raises(CalibrationRefused, match="impostor pairs"):
        ThresholdCalibration.fit(pairs, fusion, "test")


def test_fusing_two_independent_models_separates_better_than_either_alone():
    """Each model puts genuine pairs 5 impostor sd up; with independent errors the fused score puts them higher."""
    pairs = gaussian_pairs()
    fusion = fit_fusion(("a", "b"), pairs.impostor, pairs.genuine)
    assert fusion.models == ("a", "b")
    fused = fusion.fuse(pairs.impostor)
    assert abs(fused.mean()) < 0.01 and abs(fused.std() - 1.0) < 0.01
    genuine = fusion.fuse(pairs.genuine)
    alone = {m: (pairs.genuine[m] - pairs.impostor[m].mean()) / pairs.impostor[m].std() for m in ("a", "b")}
    assert np.median(genuine) > max(np.median(alone["a"]), np.median(alone["b"]))


def test_fusing_without_a_models_cosine_says_which_is_missing():
    fusion = ScoreFusion((ModelNormalisation("a", 0.5, 0.05, 0.5), ModelNormalisation("b", 0.3, 0.1, 0.5)), 1.0)
    with pytest.raises(ValueError, match="no cosines for b"):
        fusion.fuse({"a": 0.9})


@pytest.mark.parametrize("weights", [(1.0,), (0.4, 0.6), (0.05, 0.95), (0.0, 1.0)])
def test_no_candidate_below_the_lowest_cosine_reaches_the_threshold(weights):
    """The floor a search may cut at: below it no cosine of the other models lifts the fused score to the threshold."""
    parts = tuple(
        ModelNormalisation(name, mean, std, weight)
        for name, mean, std, weight in zip(("a", "b"), (0.3, 0.1), (0.08, 0.05), weights)
    )
    fusion = ScoreFusion(parts, 1.3)
    threshold = 5.0
    floor = fusion.lowest_cosine("a", threshold)
    others_at_best = {part.model: 1.0 + COSINE_SLACK for part in parts[1:]}
    if floor == -1.0:
        assert fusion.fuse({"a": -1.0, **others_at_best}) >= threshold, "-1: the other model alone can reach it"
        return
    rng = np.random.default_rng(7)
    below = rng.uniform(-1.0, floor, size=100_000)
    others = {part.model: rng.uniform(-1.0, 1.0, size=below.size) for part in parts[1:]}
    assert (fusion.fuse({"a": below, **others}) < threshold).all()
    assert (fusion.fuse({"a": below, **others_at_best}) < threshold).all()
    assert fusion.fuse({"a": floor + 2 * COSINE_SLACK, **others_at_best}) >= threshold, "the floor is not too high"


def test_the_lowest_cosine_of_a_model_not_fused_is_refused():
    fusion = ScoreFusion((ModelNormalisation("a", 0.5, 0.05, 1.0),), 1.0)
    with pytest.raises(ValueError, match="'b' is not fused here"):
        fusion.lowest_cosine("b", 3.0)


def test_a_cohort_without_the_configured_model_says_how_to_rebuild(tmp_path):
    cohort = ImpostorCohort(np.array(["x", "y"]), {"a": np.eye(2, dtype=np.float32)}, "two")
    cohort.save(tmp_path / "c.npz")
    loaded = ImpostorCohort.load(tmp_path / "c.npz")
    assert loaded.digest == cohort.digest
    with pytest.raises(CohortError, match="lfr cohort build"):
        loaded.pair_scores(("a", "faceres"))


def test_an_unreadable_cohort_file_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"not a cohort")
    with pytest.raises(CohortError, match="cannot read the impostor cohort"):
        ImpostorCohort.load(broken)
