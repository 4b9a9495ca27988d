"""The generated Prometheus configuration: both jobs, the `ray_` prefix stripped, bad targets refused, and the
relabel block the docs show is the one the code writes."""

import re
from pathlib import Path

import pytest
import yaml

from cluster.observability.scrape import CONTROL_ROOM_JOB, RAY_JOB, RAY_PREFIX_RELABEL, ScrapeTargets, prometheus_config

DOCS = Path(__file__).resolve().parent.parent / "docs" / "observability.md"


def test_the_config_scrapes_both_sides_and_strips_the_ray_prefix_on_the_ray_job_only():
    config = prometheus_config(
        ScrapeTargets(("127.0.0.1:8600",), ("10.0.0.5:8080", "10.0.0.6:8080"), 2.5, (Path("/etc/rules.yaml"),))
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs[CONTROL_ROOM_JOB]["static_configs"] == [{"targets": ["127.0.0.1:8600"]}]
    assert "metric_relabel_configs" not in jobs[CONTROL_ROOM_JOB]
    assert jobs[RAY_JOB]["static_configs"] == [{"targets": ["10.0.0.5:8080", "10.0.0.6:8080"]}]
    assert jobs[RAY_JOB]["metric_relabel_configs"] == [RAY_PREFIX_RELABEL]
    assert config["global"]["scrape_interval"] == "2500ms"
    assert config["rule_files"] == ["/etc/rules.yaml"]


def test_the_relabel_regex_renames_only_our_ray_metrics():
    pattern = re.compile(f"^(?:{RAY_PREFIX_RELABEL['regex']})$")
    assert pattern.sub(RAY_PREFIX_RELABEL["replacement"].replace("$1", r"\1"), "ray_lfr_face_replicas") == (
        "lfr_face_replicas"
    )
    assert not pattern.match("ray_tasks") and not pattern.match("lfr_api_requests_total")


def test_the_docs_show_the_relabel_the_code_writes():
    block = re.search(r"```yaml\n(metric_relabel_configs:.*?)```", DOCS.read_text(), re.S)
    assert block, "docs/observability.md lost its relabel block"
    assert yaml.safe_load(block.group(1))["metric_relabel_configs"] == [RAY_PREFIX_RELABEL]


@pytest.mark.parametrize("target", ["localhost", ":8080", "host:port"])
def test_a_target_that_is_not_host_port_is_refused(target):
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        ScrapeTargets((target,), ())


def test_a_non_positive_interval_is_refused():
    with pytest.raises(ValueError, match="interval_s must be above 0"):
        ScrapeTargets((), (), 0)
