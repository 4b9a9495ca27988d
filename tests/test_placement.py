"""`face_service.placement`: node labels checked when the file loads, turned into Ray's scheduling options."""

import pytest
from pydantic import ValidationError

from cluster.config import LfrConfig
from cluster.live.config import FaceServiceConfig, plan_replicas
from cluster.live.placement import NodePlacement
from cluster.vision.config import FaceModelsConfig


def test_no_labels_place_nothing():
    assert NodePlacement().ray_options() == {}


def test_preferred_labels_fall_back_to_any_node():
    """A lost node's parts must land somewhere: preferred labels carry a fallback that matches every node."""
    options = NodePlacement(labels={"lfr-role": "faces"}).ray_options()
    assert options == {"label_selector": {"lfr-role": "faces"}, "fallback_strategy": [{"label_selector": {}}]}


def test_required_labels_have_no_fallback():
    options = NodePlacement(labels={"example.com/pool": "gpu-a100"}, required=True).ray_options()
    assert options == {"label_selector": {"example.com/pool": "gpu-a100"}}


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"ray.io/node-id": "abc"}, "labels.ray.io/node-id: keys under 'ray.io/' are Ray's own"),
        ({"lfr role": "faces"}, "labels.lfr role: not a node label key"),
        ({"lfr-role": "!faces"}, "labels.lfr-role: '!faces' is not a node label value"),
        ({"lfr-role": ""}, "labels.lfr-role: '' is not a node label value"),
    ],
)
def test_bad_labels_are_refused_naming_the_key(labels, message):
    with pytest.raises(ValidationError, match="face_service.placement.replicas.labels") as error:
        LfrConfig.model_validate({"face_service": {"placement": {"replicas": {"labels": labels}}}})
    assert message in str(error.value)


def test_unknown_placement_key_is_refused():
    with pytest.raises(ValidationError, match="face_service.placement.gpus"):
        LfrConfig.model_validate({"face_service": {"placement": {"gpus": {"labels": {}}}}})


def test_the_face_replicas_carry_their_placement():
    """The Serve deployment's replica options hold the labels, next to the resources the plan reserves."""
    from actors.face_service import face_app

    service = FaceServiceConfig.model_validate({"placement": {"replicas": {"labels": {"lfr-role": "faces"}}}})
    app = face_app(FaceModelsConfig(device="cpu"), service, plan_replicas(service, gpus=0, cores=2, free_cpus=1.5))
    options = app._bound_deployment.ray_actor_options
    assert options["label_selector"] == {"lfr-role": "faces"}
    assert options["fallback_strategy"] == [{"label_selector": {}}]
    assert options["num_cpus"] == 0.75, "two single-threaded replicas share the 1.5 free logical CPUs"
