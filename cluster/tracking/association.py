"""Costs of continuing a track with a face, and a greedy assignment over them.

Geometry: the distance from the track's predicted face centre (last centre plus velocity times
the time step) to the face's centre, in face sizes, over a search radius that grows with the
time step. Centre distance rather than box IoU, because at 5 frames per second a walking face
often moves more than its own width and its boxes in two frames do not overlap at all; face
sizes must also agree within a ratio. Appearance: one minus the cosine of the face's embedding
to the track's, scaled so the association gate costs 1. A pair outside either gate costs inf.

Greedy takes the cheapest pair first, then the cheapest among what is left: with a handful of
faces per frame it agrees with an optimal assignment except in near-ties, needs no solver, and
costs O(p log p) for p candidate pairs.
"""

import numpy as np

GEOMETRY_WEIGHT = 0.5
APPEARANCE_WEIGHT = 0.5


def box_centres(boxes: np.ndarray) -> np.ndarray:
    """(n, 2) centres of (n, 4) x1 y1 x2 y2 boxes."""
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0


def box_sizes(boxes: np.ndarray) -> np.ndarray:
    """(n,) geometric mean of width and height: a face size that is stable as a head turns."""
    sides = np.maximum(boxes[:, 2:] - boxes[:, :2], 1e-6)
    return np.sqrt(sides[:, 0] * sides[:, 1])


def geometry_cost(
    predicted_centres: np.ndarray,
    track_sizes: np.ndarray,
    radii: np.ndarray,
    face_boxes: np.ndarray,
    max_size_ratio: float,
) -> np.ndarray:
    """(tracks, faces) centre distance in face sizes over each track's search radius; inf outside it."""
    shift = np.linalg.norm(box_centres(face_boxes)[None, :, :] - predicted_centres[:, None, :], axis=2)
    cost = shift / track_sizes[:, None] / radii[:, None]
    ratio = box_sizes(face_boxes)[None, :] / track_sizes[:, None]
    outside = (cost > 1.0) | (ratio > max_size_ratio) | (ratio < 1.0 / max_size_ratio) | ~np.isfinite(cost)
    return np.where(outside, np.inf, cost)


def appearance_cost(track_embeddings: np.ndarray, face_embeddings: np.ndarray, min_similarity: float) -> np.ndarray:
    """(tracks, faces) (1 - cosine) / (1 - min_similarity); inf below `min_similarity` or for NaN."""
    similarity = track_embeddings @ face_embeddings.T
    cost = (1.0 - similarity) / (1.0 - min_similarity)
    return np.where((similarity >= min_similarity) & np.isfinite(similarity), np.maximum(cost, 0.0), np.inf)


def combined_cost(geometry: np.ndarray, appearance: np.ndarray) -> np.ndarray:
    """Weighted sum of the two costs; inf where either gate refuses the pair."""
    return GEOMETRY_WEIGHT * geometry + APPEARANCE_WEIGHT * appearance


def greedy_assign(cost: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) pairs, cheapest first, each row and column used at most once; inf never pairs."""
    rows, columns = np.nonzero(np.isfinite(cost))
    order = np.argsort(cost[rows, columns], kind="stable")
    used_rows: set[int] = set()
    used_columns: set[int] = set()
    pairs = []
    for row, column in zip(rows[order].tolist(), columns[order].tolist()):
        if row not in used_rows and column not in used_columns:
            used_rows.add(row)
            used_columns.add(column)
            pairs.append((row, column))
    return pairs
