"""schemathesis against the live server's published OpenAPI schema, with a supervisor's key: generated valid
and invalid requests to every operation get no server error, and answers that match the schema.

Bounded: MAX_EXAMPLES per operation and generation mode, no shrinking, no example database. The event
stream lasts until its lifetime ends, so it is left to test_stream.py. The social search runs on a real (empty)
milvus-lite gallery, as `lfr serve` sets it up, so that it answers what it would in service rather than 503.
"""

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from cluster.alerts.model import AlertState
from tests.api.conftest import start_control_room
from tests.api.factories import PEOPLE, deployment_status, make_alert
from tests.test_watchlist_cli import lite_lfr_config

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (see pyproject's test extras)")

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 8
ENDLESS = {("GET", "/events")}
NOTHING_TO_NEGATE = {("GET", "/public/deployments")}
"""No parameter, body or credential: no invalid request can be generated for it, only valid ones."""


@pytest.fixture
def control_room(database, tmp_path):
    with lite_lfr_config(tmp_path / "lfr") as config:
        server, room = start_control_room(database, tmp_path / "photos", social=config)
        try:
            yield room
        finally:
            server.stop()


def test_no_server_errors_and_answers_match_the_schema(control_room):
    for index, person in enumerate(PEOPLE[:3]):
        control_room.store.save(make_alert(f"alert-{index}", person))
    control_room.store.transition("alert-0", AlertState.ACKNOWLEDGED, "pc.operator")
    control_room.services.board.publish(deployment_status(1_750_000_000.0))
    auth = {"Authorization": f"Bearer {control_room.supervisor.token}"}
    schema = schemathesis.openapi.from_url(control_room.url + "/openapi.json", headers=auth, timeout=10)
    checks = [
        schemathesis.checks.not_a_server_error,
        schemathesis.checks.status_code_conformance,
        schemathesis.checks.content_type_conformance,
        schemathesis.checks.response_schema_conformance,
    ]
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in ENDLESS:
            continue
        modes = [schemathesis.GenerationMode.POSITIVE]
        if (operation.method.upper(), operation.path) not in NOTHING_TO_NEGATE:
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:

            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case):
                case.call_and_validate(base_url=control_room.url, headers=auth, checks=checks, timeout=10)

            call()
        tested.append(f"{operation.method.upper()} {operation.path}")
    assert len(tested) >= 18, tested
