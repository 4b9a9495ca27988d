"""The one adapter between database rows and `Alert`s: nothing else in the store touches raw rows.

Embeddings are stored as 128 little-endian float32 (512 bytes), NULL once deleted (a rejected
alert's: see `cluster.alerts.suppression`); boxes as four columns; times
as unix seconds in double precision, which both backends keep exactly.
"""

import json
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import sqlalchemy as sa

from cluster.alerts.model import Adjudication, Alert, AlertState, Sighting
from cluster.vision.face import EMBEDDING_SIZE

EMBEDDING_DTYPE = np.dtype("<f4")
BOX_COLUMNS = ("box_x1", "box_y1", "box_x2", "box_y2")


def alert_row(alert: Alert) -> dict[str, Any]:
    """The alert's own columns, without the hold (which only `hold` and `release` change)."""
    for name in ("confidence", "created_at", "updated_at", "threshold"):
        _require_finite(f"alert {alert.alert_id}: {name}", getattr(alert, name))
    return {
        "alert_id": alert.alert_id,
        "deployment_id": alert.deployment_id,
        "person_id": alert.person_id,
        "watchlist_id": alert.watchlist_id,
        "state": AlertState(alert.state).value,
        "confidence": float(alert.confidence),
        "created_at": float(alert.created_at),
        "updated_at": float(alert.updated_at),
        "threshold": float(alert.threshold),
        "model": alert.model,
        "target_fpir": alert.target_fpir,
        "expected_tpir": alert.expected_tpir,
    }


def sighting_row(alert_id: str, sighting: Sighting) -> dict[str, Any]:
    where = f"sighting {sighting.sighting_id}"
    for name in ("first_seen", "last_seen"):
        _require_finite(f"{where}: {name}", getattr(sighting, name))
    embedding = None if sighting.embedding is None else np.asarray(sighting.embedding, dtype=EMBEDDING_DTYPE)
    if embedding is not None and not np.isfinite(embedding).all():
        raise ValueError(f"{where}: the embedding holds NaN or infinite values")
    box: list[float | None] = [None] * 4
    if sighting.box is not None:
        corners = [float(value) for value in np.asarray(sighting.box, dtype=np.float64)]
        if not all(math.isfinite(value) for value in corners):
            raise ValueError(f"{where}: the box holds NaN or infinite values")
        box = list(corners)
    return {
        "sighting_id": sighting.sighting_id,
        "alert_id": alert_id,
        "camera_id": sighting.camera_id,
        "person_id": sighting.person_id,
        "watchlist_id": sighting.watchlist_id,
        "similarity": float(sighting.similarity),
        "first_seen": float(sighting.first_seen),
        "last_seen": float(sighting.last_seen),
        "frames": int(sighting.frames),
        "embedding": None if embedding is None else embedding.tobytes(),
        "crop_jpeg": None if sighting.crop_jpeg is None else bytes(sighting.crop_jpeg),
        **dict(zip(BOX_COLUMNS, box)),
        "model_scores": json.dumps({model: round(float(v), 6) for model, v in sorted(sighting.model_scores.items())}),
    }


def stored_sighting(row: sa.Row) -> dict[str, Any]:
    """A stored sighting row in the form `sighting_row` produces, to tell a resend from a change."""
    values = dict(row._mapping)
    for name in ("embedding", "crop_jpeg"):
        if values[name] is not None:
            values[name] = bytes(values[name])
    return values


def alert_from_rows(row: sa.Row, sighting_rows: Iterable[sa.Row], adjudication_rows: Iterable[sa.Row]) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        deployment_id=row.deployment_id,
        person_id=row.person_id,
        watchlist_id=row.watchlist_id,
        state=AlertState(row.state),
        sightings=tuple(_sighting(values) for values in sighting_rows),
        confidence=row.confidence,
        created_at=row.created_at,
        updated_at=row.updated_at,
        threshold=row.threshold,
        model=row.model,
        target_fpir=row.target_fpir,
        expected_tpir=row.expected_tpir,
        adjudications=tuple(
            Adjudication(state=AlertState(a.state), officer=a.officer, reason=a.reason, at=a.at)
            for a in adjudication_rows
        ),
        held=bool(row.held),
    )


def _sighting(row: sa.Row) -> Sighting:
    values = row._mapping
    stored = values["embedding"]
    embedding = None if stored is None else np.frombuffer(bytes(stored), dtype=EMBEDDING_DTYPE)
    if embedding is not None and embedding.shape != (EMBEDDING_SIZE,):
        raise ValueError(
            f"sighting {values['sighting_id']}: stored embedding has {embedding.size} values, not {EMBEDDING_SIZE}"
        )
    box_values = [values[name] for name in BOX_COLUMNS]
    box = None if any(value is None for value in box_values) else np.array(box_values, dtype=np.float64)
    crop = values["crop_jpeg"]
    return Sighting(
        sighting_id=values["sighting_id"],
        camera_id=values["camera_id"],
        person_id=values["person_id"],
        watchlist_id=values["watchlist_id"],
        similarity=values["similarity"],
        first_seen=values["first_seen"],
        last_seen=values["last_seen"],
        frames=values["frames"],
        embedding=embedding,
        crop_jpeg=None if crop is None else bytes(crop),
        box=box,
        model_scores=json.loads(values["model_scores"]) if values["model_scores"] else {},
    )


def _require_finite(what: str, value: float) -> None:
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value}")
