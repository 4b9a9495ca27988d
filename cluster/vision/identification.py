"""Identification accuracy from labelled embeddings: rank-1 and true-accept at a false-accept rate.

Used by the accuracy test and benchmark to calibrate and report the match threshold on real
faces; plain numpy so that any labelled set (lfw10 today, a larger one later) can be scored.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VerificationRates:
    """Rates over all pairs of a labelled set at one similarity threshold."""

    threshold: float
    true_accept_rate: float
    false_accept_rate: float
    genuine_pairs: int
    impostor_pairs: int


def rank1_accuracy(
    gallery: np.ndarray, gallery_labels: list[str], probes: np.ndarray, probe_labels: list[str]
) -> float:
    """Share of probes whose most similar gallery embedding has the probe's label."""
    if len(probes) == 0:
        raise ValueError("no probes to score")
    nearest = np.argmax(probes @ gallery.T, axis=1)
    hits = sum(gallery_labels[i] == label for i, label in zip(nearest, probe_labels))
    return hits / len(probes)


def _pair_similarities(embeddings: np.ndarray, labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    similarity = embeddings @ embeddings.T
    label_ids = np.unique(np.asarray(labels), return_inverse=True)[1]
    upper = np.triu_indices(len(labels), k=1)
    same = label_ids[upper[0]] == label_ids[upper[1]]
    return similarity[upper][same], similarity[upper][~same]


def rates_at_threshold(embeddings: np.ndarray, labels: list[str], threshold: float) -> VerificationRates:
    """True- and false-accept rates over all pairs when `similarity >= threshold` means a match."""
    genuine, impostor = _pair_similarities(embeddings, labels)
    return VerificationRates(
        threshold=threshold,
        true_accept_rate=float((genuine >= threshold).mean()),
        false_accept_rate=float((impostor >= threshold).mean()),
        genuine_pairs=len(genuine),
        impostor_pairs=len(impostor),
    )


def rates_at_false_accept(embeddings: np.ndarray, labels: list[str], false_accept_rate: float) -> VerificationRates:
    """Rates at the lowest threshold whose false-accept rate does not exceed the one asked for."""
    genuine, impostor = _pair_similarities(embeddings, labels)
    if len(genuine) == 0 or len(impostor) == 0:
        raise ValueError("need at least two people and two faces of one person")
    ordered = np.sort(impostor)[::-1]
    allowed = int(np.floor(false_accept_rate * len(impostor)))
    threshold = float(np.nextafter(ordered[allowed], np.inf)) if allowed < len(ordered) else float(ordered[-1])
    return rates_at_threshold(embeddings, labels, threshold)
