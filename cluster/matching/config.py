"""Configuration of matching (the `matching` section): the false-alert rate and one-to-one comparisons."""

from pydantic import Field

from cluster.matching.rate import Rate
from cluster.section import Section


class MatchingConfig(Section):
    """When a face counts as a watchlist person, and when two faces count as the same person."""

    target_fpir: Rate = Field(
        1 / 6000,
        gt=0.0,
        le=0.5,
        description=(
            "False alerts per passer-by not on the list that a watchlist may give; each frozen version's threshold"
            " is calibrated for this rate and its size."
        ),
    )
    similarity_threshold: float = Field(
        0.92,
        gt=0.0,
        lt=1.0,
        description="Primary-model cosine for one-to-one comparisons (lfr compare, social search listings).",
    )
