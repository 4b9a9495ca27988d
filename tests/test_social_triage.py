"""Text triage with the real packaged classifier: scores, the flag at the threshold, its configuration, its quality.

The quality floors come from the classifier's own published figures (precision 0.861, recall
0.896 on its held-out comments) less a margin for a set this small (one post moves recall on the
24 `offensive` posts by four points). The seven `abusive` posts carry no swear words and the
classifier is known not to see them (docs/benchmarks.md says so), so the overall recall floor is
the `offensive` floor scaled by 24 of 31 positives: 0.85 * 24 / 31 = 0.66, taken as 0.65.
"""

import pytest

from cluster.config import ConfigError, load_config
from cluster.social.config import DEFAULT_FLAG_THRESHOLD, TriageConfig
from cluster.social.triage import MODEL_PACKAGE, TextTriage
from loadtest.bench_triage import BENCHMARKS, HEADING, markdown, measure, read_labelled

PRECISION_FLOOR = 0.80
OFFENSIVE_RECALL_FLOOR = 0.85
RECALL_FLOOR = 0.65


@pytest.fixture(scope="module")
def triage() -> TextTriage:
    return TextTriage(TriageConfig())


def test_scores_flag_at_the_threshold_and_skip_posts_without_text(triage):
    texts = ["fuck the police, absolute scum", "coaches leave at eight from the bus station", "", "   "]
    offensive, calm, empty, blank = triage.score(texts)
    assert offensive.score is not None and offensive.score >= DEFAULT_FLAG_THRESHOLD and offensive.flagged
    assert calm.score is not None and calm.score < DEFAULT_FLAG_THRESHOLD and not calm.flagged
    assert (empty.score, empty.flagged, blank.score, blank.flagged) == (None, False, None, False)
    assert (triage.model.name, triage.model.version) == (MODEL_PACKAGE, "1.9.1")

    strict = TextTriage(TriageConfig(threshold=0.999_999_99))
    (same,) = strict.score(texts[:1])
    assert same.score == pytest.approx(offensive.score) and not same.flagged, "the configured threshold decides"


@pytest.mark.parametrize(
    ("yaml", "error"),
    [
        ("social:\n  triage:\n    threshold: 1.5\n", "social.triage.threshold: Input should be less than 1"),
        ("social:\n  triage:\n    threshold: 0\n", "social.triage.threshold: Input should be greater than 0"),
        ("social:\n  triage:\n    treshold: 0.4\n", "social.triage.treshold: Extra inputs are not permitted"),
        ("social:\n  triage:\n    threshold: high\n", "social.triage.threshold: Input should be a valid number"),
    ],
)
def test_a_bad_triage_setting_is_refused_naming_its_key(tmp_path, yaml, error):
    path = tmp_path / "lfr.yaml"
    path.write_text(yaml)
    with pytest.raises(ConfigError, match=error.replace(".", r"\.")):
        load_config(path)


def test_the_configured_threshold_is_read(tmp_path):
    path = tmp_path / "lfr.yaml"
    path.write_text("social:\n  triage:\n    threshold: 0.8\n")
    assert load_config(path).social.triage.threshold == 0.8
    assert load_config(None).social.triage.threshold == DEFAULT_FLAG_THRESHOLD


def test_flag_quality_on_the_labelled_posts_is_above_its_floors_and_the_docs_are_current():
    quality = measure(read_labelled(), TriageConfig())
    assert sum(quality.posts_by_label.values()) == 85
    assert quality.precision >= PRECISION_FLOOR, quality
    assert quality.recall_of("offensive") >= OFFENSIVE_RECALL_FLOOR, quality
    assert quality.recall >= RECALL_FLOOR, quality

    documented = BENCHMARKS.read_text(encoding="utf-8")
    assert HEADING in documented, "run python -m loadtest.bench_triage --write-docs"
    figures = [line for line in markdown(quality, "", "").splitlines() if line.startswith("| ")]
    stale = [line for line in figures if line not in documented]
    assert stale == [], "docs/benchmarks.md is out of date: run python -m loadtest.bench_triage --write-docs"


@pytest.mark.parametrize(
    "text",
    [
        "du bist ein Arschloch",
        "va te faire foutre, connard",
        "f.u.c.k the police",
        "f u c k you",
        "fck the police",
    ],
)
def test_the_limits_docs_state_hold(triage, text):
    """docs/social_media.md says plainly what the classifier misses, with these examples: they must stay true."""
    (score,) = triage.score([text])
    assert not score.flagged, f"{text!r} is now flagged ({score.score:.2f}): update docs/social_media.md"
    documented = " ".join((BENCHMARKS.parent / "social_media.md").read_text(encoding="utf-8").split())
    assert f'"{text}"' in documented
