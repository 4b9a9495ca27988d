"""Identification accuracy on lfw10: rank-1, true-accept at fixed false-accept rates, threshold sweep.

    python -m loadtest.bench_accuracy

Embeds one face per photo (the one nearest the photo's centre, where LFW puts its person),
enrols each person's first photo and queries the other nine for rank-1, then scores every
pair of photos for true- and false-accept rates. The figures calibrate
`matching.similarity_threshold`.
"""

import argparse

from cluster.logging_setup import configure_logging
from cluster.matching.config import MatchingConfig
from cluster.vision.config import FaceModelsConfig
from cluster.vision.identification import rank1_accuracy, rates_at_false_accept, rates_at_threshold
from cluster.vision.pipeline import FacePipeline
from loadtest.lfw10_embeddings import embed_lfw10
from loadtest.machine import describe_machine

SWEEP = (0.88, 0.90, 0.92, 0.93, 0.94)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    configure_logging("warning")
    print(describe_machine())
    embeddings, people, names = embed_lfw10(FacePipeline(FaceModelsConfig(device="cpu")))
    enrolled = [i for i, n in enumerate(names) if n.endswith("_0001.jpg")]
    queries = [i for i in range(len(names)) if i not in enrolled]
    rank1 = rank1_accuracy(
        embeddings[enrolled], [people[i] for i in enrolled], embeddings[queries], [people[i] for i in queries]
    )
    print(f"rank-1: {rank1:.3f} ({len(queries)} queries against {len(enrolled)} enrolled people)")
    for far in (0.01, 0.001):
        rates = rates_at_false_accept(embeddings, people, far)
        print(
            f"TAR at FAR {far:.1%}: {rates.true_accept_rate:.3f} at cosine {rates.threshold:.3f}"
            f" ({rates.genuine_pairs} genuine, {rates.impostor_pairs} impostor pairs)"
        )
    configured = MatchingConfig().similarity_threshold
    for threshold in sorted({*SWEEP, configured}):
        rates = rates_at_threshold(embeddings, people, threshold)
        marker = "  <- default" if threshold == configured else ""
        print(f"cosine {threshold:.2f}: TAR {rates.true_accept_rate:.3f}, FAR {rates.false_accept_rate:.4f}{marker}")


if __name__ == "__main__":
    main()
