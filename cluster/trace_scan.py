"""Looking for face embeddings in raw bytes: the scanner behind the privacy tests and `lfr loadtest --chaos`.

An embedding is 128 float32 values of unit length, stored as raw bytes in SQLite blobs, Milvus
segments or anything else. The scanner views every file as float32 at each of the four byte
alignments, finds each run of 128 values whose squares sum to 1 (a prefix sum keeps that one
pass), and reports those close to a reference face: so a test can show that nothing of the
people who matched nobody is stored anywhere.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

EMBEDDING_SIZE = 128
UNIT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Found:
    path: Path
    offset: int
    similarity: float


def unit_vectors(data: bytes) -> list[tuple[int, np.ndarray]]:
    """(byte offset, vector) of every run of 128 float32 values with unit length."""
    found = []
    for alignment in range(4):
        usable = (len(data) - alignment) // 4
        if usable < EMBEDDING_SIZE:
            continue
        values = np.frombuffer(data, dtype="<f4", count=usable, offset=alignment).astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            squares = np.where(np.isfinite(values) & (np.abs(values) <= 1.0), values * values, 2.0)
        sums = np.concatenate([[0.0], np.cumsum(squares)])
        window = sums[EMBEDDING_SIZE:] - sums[:-EMBEDDING_SIZE]
        for start in np.flatnonzero(np.abs(window - 1.0) < UNIT_TOLERANCE):
            found.append((alignment + 4 * int(start), values[start : start + EMBEDDING_SIZE].astype(np.float32)))
    return found


def embeddings_like(folder: Path, references: np.ndarray, min_similarity: float) -> list[Found]:
    """Stored vectors anywhere under `folder` with cosine >= min_similarity to any row of `references`."""
    hits = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        for offset, vector in unit_vectors(path.read_bytes()):
            similarity = float(np.max(references @ vector))
            if similarity >= min_similarity:
                hits.append(Found(path, offset, similarity))
    return hits
