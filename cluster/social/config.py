"""The `social:` configuration section: how ingested posts' text is triaged.

    social:
      triage:
        threshold: 0.5   # a post whose offensive-language score is at or above this is flagged for an officer

Flagging only marks a post for an officer to read; nothing is decided or done automatically.
"""

from pydantic import Field

from cluster.section import Section

DEFAULT_FLAG_THRESHOLD = 0.5
"""The classifier's own decision point (it calls a text offensive when its probability passes 0.5)."""


class TriageConfig(Section):
    """When a post's text score flags it for an officer's review."""

    threshold: float = Field(
        DEFAULT_FLAG_THRESHOLD,
        gt=0.0,
        lt=1.0,
        description="A post whose offensive-language score (0..1) is at or above this is flagged for an officer;"
        " flagging decides nothing. docs/benchmarks.md gives precision and recall at the default.",
    )


class SocialPostsConfig(Section):
    """What is done with ingested posts beyond their faces (those are `gallery.social`)."""

    triage: TriageConfig = TriageConfig()
