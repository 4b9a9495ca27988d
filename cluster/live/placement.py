"""Which Ray nodes run the cameras and which the face replicas: node labels, preferred or required.

A cluster whose nodes have different jobs (CPU nodes that decode cameras, GPU nodes that run
the face models) labels them when they start (`ray start --labels '{"lfr-role": "faces"}'`)
and names the labels here. By default a part only prefers its nodes: when none of them can take
it (the node died, or is full) Ray places it on any other node, so a lost node's face replicas
are rescheduled instead of waiting for a node that may never come back. `required: true` keeps
a part off every other node. A replica falls back only where its logical CPUs (and GPUs) are free:
size `threads_per_replica` so that the nodes left after a loss can hold it.

`FaceServiceConfig.placement` holds it; validators do no I/O (which labels the nodes carry is a
run-time matter: a part whose required labels no node has waits, and Ray reports it pending).
"""

import re
from typing import Any

from pydantic import Field, field_validator

from cluster.section import Section

LABEL_KEY_PATTERN = r"^(?:[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
"""A Kubernetes-style label key (Ray's node labels follow Kubernetes'): optional DNS prefix, then a name."""
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
RESERVED_PREFIX = "ray.io/"
ANY_NODE: dict[str, Any] = {"label_selector": {}}
"""A fallback that matches every node."""


class NodePlacement(Section):
    """The node labels one part of the live pipeline is placed by."""

    labels: dict[str, str] = Field(
        {}, description="Node labels the part prefers (all must match), e.g. {lfr-role: faces}; empty: any node."
    )
    required: bool = Field(False, description="Run only on nodes with these labels; false: prefer them, else any node.")

    @field_validator("labels")
    @classmethod
    def _labels_are_ray_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if key.startswith(RESERVED_PREFIX):
                raise ValueError(f"labels.{key}: keys under '{RESERVED_PREFIX}' are Ray's own; use a key of yours")
            if not re.fullmatch(LABEL_KEY_PATTERN, key):
                raise ValueError(
                    f"labels.{key}: not a node label key; use letters, digits, '-', '_' and '.', up to 63"
                    " characters, optionally after a 'domain/' prefix"
                )
            if not re.fullmatch(LABEL_VALUE_PATTERN, value):
                raise ValueError(
                    f"labels.{key}: '{value}' is not a node label value; use letters, digits, '-', '_' and '.',"
                    " up to 63 characters, starting and ending with a letter or digit"
                )
        return labels

    def ray_options(self) -> dict[str, Any]:
        """Options of a Ray actor (or of a Serve replica's `ray_actor_options`) that place it so."""
        if not self.labels:
            return {}
        options: dict[str, Any] = {"label_selector": dict(self.labels)}
        if not self.required:
            options["fallback_strategy"] = [dict(ANY_NODE)]
        return options


class PlacementConfig(Section):
    """Where the cameras (with their forwarders) and the face replicas run."""

    cameras: NodePlacement = NodePlacement()
    replicas: NodePlacement = NodePlacement()
