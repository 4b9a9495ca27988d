"""Triage of a post's text: an offensive-language score from a maintained classifier, and a flag for an officer.

The classifier is alt-profanity-check (PyPI, MIT): a linear SVM over a bag of words, calibrated to
a probability, trained on about 200k labelled English comments (Davidson et al.'s hate-speech and
offensive-language tweets and the Wikipedia comments of the Jigsaw toxic-comment challenge). Its
model ships inside the package and is loaded from there; nothing is downloaded. What it measures is
offensive language (profanity, insults, slurs) in English. It does not see threats made in polite
words, sarcasm, context, images or other languages, and it flags quoted or reclaimed words as
readily as abuse (docs/benchmarks.md gives its precision and recall on our labelled set). So a
score only orders posts for a person to read: a post at or above the configured threshold is
flagged, which marks it for an officer's review and decides nothing.

A post without text gets no score and is not flagged. Each score is stored with the model's name
and the installed package's version (the package's own `__version__` attribute lags its release
and is not used).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import structlog

from cluster.social.config import TriageConfig

log = structlog.get_logger(__name__)

MODEL_PACKAGE = "alt-profanity-check"


class TriageUnavailableError(LookupError):
    """The classifier's package is not installed; the message says how to install it."""


@dataclass(frozen=True)
class TriageModel:
    """Which classifier scored a text: its package name and installed version."""

    name: str
    version: str


@dataclass(frozen=True)
class TriageScore:
    """One text's score (None: no text to score) and whether it reached the threshold."""

    score: float | None
    flagged: bool


class TextTriage:
    """Scores texts with the packaged classifier and flags those at or above `config.threshold`."""

    def __init__(self, config: TriageConfig) -> None:
        self.threshold = config.threshold
        try:
            installed = version(MODEL_PACKAGE)
        except PackageNotFoundError as exc:
            raise TriageUnavailableError(
                f"the text classifier {MODEL_PACKAGE} is not installed: pip install {MODEL_PACKAGE}==1.9.1"
            ) from exc
        self.model = TriageModel(MODEL_PACKAGE, installed)
        self._predict_prob: Any = None

    def score(self, texts: Sequence[str]) -> list[TriageScore]:
        """One score per text, in order; empty texts get none. The model is loaded at the first call."""
        scored = [index for index, text in enumerate(texts) if text.strip()]
        probabilities = self._probabilities([texts[index] for index in scored]) if scored else []
        results = [TriageScore(None, False)] * len(texts)
        for index, probability in zip(scored, probabilities):
            results[index] = TriageScore(probability, probability >= self.threshold)
        return results

    def _probabilities(self, texts: list[str]) -> list[float]:
        if self._predict_prob is None:
            from profanity_check import predict_prob  # loads the packaged model from the package's files

            self._predict_prob = predict_prob
            log.info("triage_model_loaded", model=self.model.name, version=self.model.version)
        return [float(value) for value in self._predict_prob(texts)]
