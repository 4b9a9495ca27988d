"""Triage quality: precision and recall of the text flag on the labelled protest posts, at the configured threshold.

    python -m loadtest.bench_triage [--threshold T] [--write-docs]

Scores every post of tests/data/social_triage/posts.jsonl with the product's own `TextTriage`
(the packaged classifier, the default `social.triage.threshold` unless --threshold is given) and
prints the figures as markdown: overall precision and recall of the flag (a post labelled
`offensive` or `abusive` should be flagged), and how many of each label were flagged. With
--write-docs the section replaces its predecessor in docs/benchmarks.md.
"""

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

from cluster.social.config import TriageConfig
from cluster.social.triage import TextTriage
from loadtest.machine import describe_machine

ROOT = Path(__file__).resolve().parents[1]
LABELLED = ROOT / "tests" / "data" / "social_triage" / "posts.jsonl"
BENCHMARKS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Text triage of posts (`python -m loadtest.bench_triage`)"
SHOULD_FLAG = ("offensive", "abusive")
LABELS = ("offensive", "abusive", "heated", "benign")


@dataclass(frozen=True)
class LabelledPost:
    post_id: int
    label: str
    text: str


@dataclass(frozen=True)
class TriageQuality:
    """The flag against the labels: counts, precision, recall, and what was flagged of each label."""

    model: str
    threshold: float
    true_positives: int
    false_positives: int
    false_negatives: int
    flagged_by_label: dict[str, int]
    posts_by_label: dict[str, int]
    ms_per_post: float

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / (self.true_positives + self.false_negatives)

    def recall_of(self, label: str) -> float:
        return self.flagged_by_label[label] / self.posts_by_label[label]


def read_labelled(path: Path = LABELLED) -> list[LabelledPost]:
    posts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["label"] not in LABELS:
            raise ValueError(f"{path}: post {row['id']} has label {row['label']!r}, not one of {', '.join(LABELS)}")
        posts.append(LabelledPost(row["id"], row["label"], row["text"]))
    return posts


def measure(posts: list[LabelledPost], config: TriageConfig) -> TriageQuality:
    triage = TextTriage(config)
    triage.score(["warm up: the model loads on the first call"])
    started = time.perf_counter()
    scores = triage.score([post.text for post in posts])
    elapsed = time.perf_counter() - started
    flagged = [score.flagged for score in scores]
    positive = [post.label in SHOULD_FLAG for post in posts]
    return TriageQuality(
        model=f"{triage.model.name} {triage.model.version}",
        threshold=config.threshold,
        true_positives=sum(f and p for f, p in zip(flagged, positive)),
        false_positives=sum(f and not p for f, p in zip(flagged, positive)),
        false_negatives=sum(p and not f for f, p in zip(flagged, positive)),
        flagged_by_label={
            label: sum(1 for post, f in zip(posts, flagged) if f and post.label == label) for label in LABELS
        },
        posts_by_label={label: sum(1 for post in posts if post.label == label) for label in LABELS},
        ms_per_post=1000 * elapsed / len(posts),
    )


def markdown(quality: TriageQuality, command: str, machine: str) -> str:
    rows = "\n".join(
        f"| `{label}` | {quality.posts_by_label[label]} | {quality.flagged_by_label[label]} |"
        f" {'yes' if label in SHOULD_FLAG else 'no'} |"
        for label in LABELS
    )
    return f"""{HEADING}

The classifier ({quality.model}) on the {sum(quality.posts_by_label.values())} labelled posts of
`tests/data/social_triage/` (written and labelled for this project; its README says how), flag
at score >= {quality.threshold:g}. A post labelled `offensive` or `abusive` should be flagged.
Command: `{command}`; machine: {machine}; {quality.ms_per_post:.2f} ms per post (one batch).

| | |
| --- | ---: |
| precision of the flag | {quality.precision:.3f} ({quality.true_positives} of \
{quality.true_positives + quality.false_positives} flagged) |
| recall of the flag | {quality.recall:.3f} ({quality.true_positives} of \
{quality.true_positives + quality.false_negatives} that should be) |
| recall on `offensive` (profanity, insults) | {quality.recall_of("offensive"):.3f} |
| recall on `abusive` (threats, doxxing, dehumanising, no swear words) | {quality.recall_of("abusive"):.3f} |

| label | posts | flagged | should be flagged |
| --- | ---: | ---: | --- |
{rows}

What this says: the flag finds swearing and insults well and almost never fires on calm posts,
but it misses threats and incitement written in polite words, and it flags swearing used in
enthusiasm or quoted in a report as readily as abuse. It reads English only and sees no context
(who is addressed, what came before, the image). It orders posts for an officer to read; it is
not evidence that a post is harmful or lawful, and a post it does not flag may still be either.
`tests/test_social_triage.py` holds these figures above floors and checks this section is current.
"""


def write_docs(section: str, path: Path = BENCHMARKS) -> None:
    """Replace the section (from its heading to the next `## ` heading) in docs/benchmarks.md, or append it."""
    text = path.read_text(encoding="utf-8")
    start = text.find(HEADING)
    if start < 0:
        path.write_text(text.rstrip("\n") + "\n\n" + section, encoding="utf-8")
        return
    after = text.find("\n## ", start + len(HEADING))
    rest = "" if after < 0 else text[after + 1 :]
    path.write_text(text[:start] + section + ("\n" + rest if rest else ""), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=None, help="Flag at this score (default: the config's).")
    parser.add_argument("--write-docs", action="store_true", help="Replace the section in docs/benchmarks.md.")
    args = parser.parse_args()
    config = TriageConfig() if args.threshold is None else TriageConfig(threshold=args.threshold)
    quality = measure(read_labelled(), config)
    command = "python -m loadtest.bench_triage" + ("" if args.threshold is None else f" --threshold {args.threshold}")
    section = markdown(quality, command, describe_machine())
    print(section)
    if args.write_docs:
        write_docs(section)
        print(f"written to {BENCHMARKS}")


if __name__ == "__main__":
    main()
