"""The public records page: HTML rendered on the server (Jinja2, autoescaped), with no script at all.

A page without JavaScript works in any browser, with scripts off, and under the control room's
strict content policy; the same figures are at /public/deployments as JSON for anyone's tools.
"""

from datetime import UTC, datetime

from jinja2 import Environment, select_autoescape

from cluster.api.public_records import PublicDeployment
from cluster.control_room import page_file
from cluster.deployment.purpose import Purpose
from cluster.deployment.records import Phase

TEMPLATE = "public_records.html.j2"
STYLESHEET = page_file("public_records.css")
PHASES = {Phase.ACTIVE: "Now", Phase.PLANNED: "Planned", Phase.PAST: "Past"}

_environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
_template = _environment.from_string(page_file(TEMPLATE).decode("utf-8"))


def render_page(deployments: list[PublicDeployment], json_url: str, stylesheet_url: str) -> str:
    """The page listing `deployments` (latest first), grouped as now, planned and past."""
    return _template.render(
        groups=[
            (PHASES[phase], [deployment for deployment in deployments if deployment.phase == phase])
            for phase in (Phase.ACTIVE, Phase.PLANNED, Phase.PAST)
        ],
        purposes=list(Purpose),
        when=_when,
        count=_count,
        faces=_faces,
        json_url=json_url,
        stylesheet_url=stylesheet_url,
    )


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%-d %b %Y %H:%M UTC")


def _count(value: int | None) -> str:
    return "not yet known" if value is None else f"{value:,}"


def _faces(deployment: PublicDeployment) -> str:
    """Faces seen; a deployment under way or past whose pipeline reported none says so."""
    if deployment.faces_seen is None and deployment.phase != Phase.PLANNED:
        return "not reported"
    return _count(deployment.faces_seen)
