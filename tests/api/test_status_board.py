"""The status board the pipeline publishes into and the control room reads."""

import dataclasses
import json

import pytest
import sqlalchemy as sa

from cluster.audit.log import AuditLog
from cluster.cameras.health import CameraState
from cluster.live.status_board import StatusBoard
from cluster.live.status_board import deployment_status as status_table
from tests.api.factories import deployment_status

NOW = 1_750_000_000.25


@pytest.fixture
def records(database):
    """The records database as a process finds it: made at the current schema when its audit log was opened."""
    AuditLog(database)
    return database


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)], indirect=True)
def test_publish_replaces_and_reads_back_exactly(records):
    board = StatusBoard(records, clock=lambda: NOW + 7)
    assert board.latest("west_end") is None and board.all_latest() == []
    first = deployment_status(NOW)
    board.publish(first)
    later = dataclasses.replace(deployment_status(NOW + 5, faces_seen=20_000, alerts=4), published_at=NOW + 5)
    board.publish(later)
    other = dataclasses.replace(deployment_status(NOW + 1), deployment_id="soho", cameras=())
    board.publish(other)
    read = board.latest("west_end")
    assert read == later
    assert read.cameras[2].state is CameraState.BACKING_OFF and read.window == later.window
    assert [s.deployment_id for s in board.all_latest()] == ["west_end", "soho"]
    assert board.age_s(read) == pytest.approx(2.0)
    with records.reading() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(status_table)).scalar() == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"faces_seen": -1}, "faces_seen is a count"),
        ({"deployment_id": " "}, "must not be empty"),
        ({"threshold": float("nan")}, "finite"),
    ],
)
def test_a_bad_snapshot_is_refused_with_the_reason(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(deployment_status(NOW), **change)


def test_cameras_listed_twice_are_refused():
    status = deployment_status(NOW)
    with pytest.raises(ValueError, match="cameras listed twice"):
        dataclasses.replace(status, cameras=status.cameras + status.cameras[:1])


def test_a_snapshot_from_another_release_says_so(records):
    board = StatusBoard(records)
    board.publish(deployment_status(NOW))
    with records.writing() as connection:
        text = connection.execute(sa.select(status_table.c.snapshot)).scalar()
        document = json.loads(text) | {"version": 99}
        connection.execute(status_table.update().values(snapshot=json.dumps(document)))
    with pytest.raises(ValueError, match="different releases"):
        board.latest("west_end")
