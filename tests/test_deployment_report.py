"""The deployment report: its figures on their own, and a report made from a real SQLite records database.

The records are written through the store's and the audit log's own methods (`tests/deployment_records.py`):
alerts with real face crops, decided, held and purged; runs with their start and stop entries; a watchlist
version with its calibration and what enrolment recorded about its people. Every figure is checked against
counts the test computes from what it wrote, or that the store itself reports.
"""

import hashlib
import io
import json
import re
from contextlib import redirect_stderr, redirect_stdout

import numpy as np
import pytest

from cluster.alerts.opening import open_alert_store
from cluster.alerts.query import AlertFilter
from cluster.alerts.store import AlertStore
from cluster.application.reports import DeploymentReports
from cluster.audit.actions import AuditAction
from cluster.cli.main import build_parser
from cluster.config import LfrConfig
from cluster.database.config import DatabaseConfig
from cluster.evaluation.openset import wilson_interval
from cluster.gallery.attributes import NOT_RECORDED, PersonAttributes, attributes_from, parse_attributes
from cluster.gallery.catalogue import Catalogue
from cluster.oversight.figures import Outcomes, breakdown, percentiles, rate_of
from cluster.oversight.html_report import render_html
from cluster.oversight.records import NoDeploymentRecordsError
from cluster.oversight.report import DeploymentReport, decision_seconds
from tests.api.factories import CAMERAS, DEPLOYMENT, PEOPLE, TARGET_FPIR
from tests.deployment_records import (
    ATTRIBUTES,
    OFFICER,
    RUN_COUNTS,
    SIGNAGE,
    SUPERVISOR,
    VERSION,
    record_deployment,
    record_failed_start,
)
from tests.test_watchlist_cli import Ran


def test_a_rate_has_its_wilson_interval_and_none_without_trials():
    figure = rate_of(3, 1000)
    assert figure is not None and figure.rate == 0.003
    assert (figure.low, figure.high) == wilson_interval(3, 1000)
    assert figure.low < 0.003 < figure.high
    zero = rate_of(0, 50)
    assert zero is not None and zero.low == 0.0 and 0.0 < zero.high < 0.1
    assert rate_of(0, 0) is None, "nothing to divide by is no rate, not a rate of 0"
    with pytest.raises(ValueError, match="0 <= count <= total"):
        rate_of(5, 4)


def test_percentiles_are_numpys():
    values = [12.0, 3.0, 40.0, 7.5, 100.0, 61.0]
    spread = percentiles(values)
    assert spread is not None and spread.count == 6 and spread.max == 100.0
    assert spread.p50 == pytest.approx(np.percentile(values, 50))
    assert spread.p90 == pytest.approx(np.percentile(values, 90))
    assert percentiles([]) is None
    one = percentiles([5.0])
    assert one is not None and (one.p50, one.p90, one.max) == (5.0, 5.0, 5.0)


def test_a_breakdown_lists_every_group_even_empty_ones_then_not_recorded():
    people = {"a": "female", "b": "female", "c": None, "d": "male"}
    alerts = [("a", "confirmed"), ("a", "rejected"), ("c", "rejected"), ("x", "not adjudicated")]
    rows = breakdown(("female", "male", "other"), NOT_RECORDED, people, alerts)
    assert [row.group for row in rows] == ["female", "male", "other", NOT_RECORDED]
    by_group = {row.group: row for row in rows}
    assert by_group["female"].people == 2 and by_group["female"].outcomes == Outcomes(1, 1, 0)
    assert by_group["male"].people == 1 and by_group["male"].outcomes == Outcomes()
    assert by_group["other"].people == 0 and by_group["other"].outcomes.false_share() is None
    # "c" has no value recorded; "x" is not among the people at all (removed since): both count as not recorded.
    assert by_group[NOT_RECORDED].people == 1 and by_group[NOT_RECORDED].outcomes == Outcomes(0, 1, 1)
    with pytest.raises(ValueError, match="not among the groups"):
        breakdown(("female",), NOT_RECORDED, {"a": "male"}, [])


def test_attributes_are_validated_and_name_the_bad_one():
    assert parse_attributes(["sex=female", "ethnicity=black"]) == PersonAttributes(sex="female", ethnicity="black")
    assert parse_attributes([]).recorded() == {}
    with pytest.raises(ValueError, match=r"sex 'f' is not one of female, male"):
        parse_attributes(["sex=f"])
    with pytest.raises(ValueError, match=r"unknown attribute 'religion'"):
        attributes_from({"religion": "any"})
    with pytest.raises(ValueError, match="given twice"):
        parse_attributes(["sex=male", "sex=female"])
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_attributes(["ethnicity"])
    recorded = PersonAttributes(age_band="25_34")
    assert PersonAttributes.from_canonical(recorded.canonical()) == recorded


@pytest.fixture
def config(tmp_path) -> LfrConfig:
    return LfrConfig(database=DatabaseConfig(url=str(tmp_path / "records.sqlite3")))


@pytest.fixture
def store(config) -> AlertStore:
    return open_alert_store(config.database, config.audit)


def lfr(config: LfrConfig, *argv: object) -> Ran:
    args = build_parser().parse_args([str(arg) for arg in argv])
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = args.handler(args, config)
    return Ran(code, out.getvalue(), err.getvalue())


def test_the_report_matches_the_records_figure_by_figure(store):
    recorded = record_deployment(store)
    report = DeploymentReports(store).make(DEPLOYMENT, officer=SUPERVISOR, channel="cli")
    alerts = store.list(AlertFilter(deployment_id=DEPLOYMENT), limit=100).alerts
    stats = store.stats(DEPLOYMENT)

    assert report.authorisation.signage_notice == SIGNAGE and report.authorisation.cameras == list(CAMERAS)
    assert report.authorisation.authorised_by == SUPERVISOR and report.watchlist.version == VERSION
    assert (report.watchlist.people, report.watchlist.categories) == (3, {"missing": 1, "wanted": 2})
    assert report.matching.target_fpir == TARGET_FPIR and report.matching.expected_tpir == 0.65
    assert report.matching.list_size == 9

    faces = sum(counts[0] for run in RUN_COUNTS for counts in run.values())
    searches = sum(counts[1] for run in RUN_COUNTS for counts in run.values())
    assert (report.faces_seen, report.watchlist_searches) == (faces, searches)
    assert [run.faces_seen for run in report.runs] == [sum(c[0] for c in run.values()) for run in RUN_COUNTS]

    # Outcomes are the store's own counts; the purged alert was raised (audit log) but is no longer held.
    assert report.outcomes.alerts == stats.alerts == len(alerts) == 3
    assert (report.outcomes.confirmed, report.outcomes.rejected) == (stats.confirmed, stats.rejected) == (1, 1)
    assert report.outcomes.not_adjudicated == stats.new + stats.acknowledged == 1
    assert (report.alerts_raised, report.alerts_purged) == (4, 1)
    assert [p.deployment_alerts for p in report.purges] == [1] and report.purges[0].alerts == 2, (
        "the other deployment's purged alert is not this deployment's"
    )
    assert len(report.held) == stats.held == 1 and report.held[0].held_by == SUPERVISOR

    # False matches per search not of a confirmed person, with the rate if the undecided alert were false.
    sightings = {state: sum(len(a.sightings) for a in alerts if a.state.value == state) for state in ("confirmed",)}
    not_mated = searches - sightings["confirmed"]
    observed, upper = report.false_alert_rate.observed, report.false_alert_rate.if_undecided_false
    assert observed is not None and (observed.count, observed.total) == (1, not_mated)
    assert (observed.low, observed.high) == wilson_interval(1, not_mated)
    assert upper is not None and (upper.count, upper.total) == (2, not_mated)
    per_face = report.false_alert_rate.false_alerts_per_face
    assert per_face is not None and (per_face.count, per_face.total) == (stats.rejected, faces)
    assert report.outcomes.false_share is not None and report.outcomes.false_share.rate == stats.false_alert_rate

    decided = sorted(s for s in (decision_seconds(a) for a in alerts) if s is not None)
    assert report.adjudication_time.seconds == decided == [40.0, 120.0]
    assert report.adjudication_time.p50_s == pytest.approx(np.percentile(decided, 50))

    cameras = {camera.camera_id: camera for camera in report.cameras}
    for camera_id in CAMERAS:
        seen = [a for a in alerts if camera_id in a.cameras]
        assert (
            cameras[camera_id].outcomes.alerts
            == len(seen)
            == store.count(AlertFilter(deployment_id=DEPLOYMENT, camera_id=camera_id))
        )
        assert cameras[camera_id].faces_seen == sum(run[camera_id][0] for run in RUN_COUNTS)
        assert cameras[camera_id].watchlist_searches == sum(run[camera_id][1] for run in RUN_COUNTS)

    by_attribute = {b.attribute: {g.group: g for g in b.groups} for b in report.breakdowns}
    assert set(by_attribute) == {"sex", "ethnicity", "age_band", "category"}
    assert by_attribute["sex"]["female"].outcomes.alerts == 0, "an empty group is listed, with zeros"
    male = by_attribute["sex"]["male"]
    assert male.people == 2 and (male.outcomes.confirmed, male.outcomes.rejected) == (1, 1)
    assert by_attribute["sex"][NOT_RECORDED].outcomes.not_adjudicated == 1
    assert by_attribute["ethnicity"][NOT_RECORDED].people == len(ATTRIBUTES)
    assert by_attribute["category"]["missing"].outcomes.not_adjudicated == 1
    for found in report.breakdowns:
        assert sum(g.outcomes.alerts for g in found.groups) == report.outcomes.alerts

    said = " ".join(report.limits)
    assert "Only 2 alerts were adjudicated" in said and "1 of the 4 alerts raised were purged" in said
    assert "cannot show why" in said
    assert recorded.t0 > 0


def test_a_deployment_with_no_alerts_reports_zeros_and_says_what_it_cannot_show(store):
    record_deployment(store, alerts=False)
    report = DeploymentReports(store).make(DEPLOYMENT, officer=SUPERVISOR, channel="cli")
    assert report.outcomes.alerts == report.alerts_raised == 0 and report.outcomes.false_share is None
    searches = sum(counts[1] for run in RUN_COUNTS for counts in run.values())
    observed = report.false_alert_rate.observed
    assert observed is not None and (observed.count, observed.total, observed.low) == (0, searches, 0.0)
    assert observed.high == wilson_interval(0, searches)[1], "no false alert still has an upper bound"
    assert report.adjudication_time.decided == 0 and report.adjudication_time.p50_s is None
    assert report.held == [] and report.purges == []
    assert all(g.outcomes.alerts == 0 for b in report.breakdowns for g in b.groups)
    assert any("No alert was confirmed or rejected" in line for line in report.limits)
    page = render_html(report)
    assert "No alert was confirmed or rejected." in page
    assert page.count("data:image/png;base64,") == 2, "outcomes, and the rate's upper bound beside the expected rate"


def test_a_run_without_a_stop_leaves_the_rate_per_search_unknown_and_says_so(store):
    record_deployment(store, stopped=False)
    report = DeploymentReports(store).make(DEPLOYMENT, officer=SUPERVISOR, channel="cli")
    assert report.runs[-1].stopped_at is None and report.watchlist_searches is None and report.faces_seen is None
    assert report.false_alert_rate.observed is None and report.false_alert_rate.false_alerts_per_face is None
    assert any("cannot be given" in line for line in report.limits)


def test_lfr_report_deployment_writes_both_files_and_audits_their_making(config, store, tmp_path):
    record_deployment(store)
    out = tmp_path / "report"
    ran = lfr(config, "report", "deployment", DEPLOYMENT, "--out", out, "--officer", SUPERVISOR)
    assert ran.code == 0, ran.err
    assert "4 alerts raised, 1 confirmed, 1 rejected, 1 not adjudicated" in ran.out
    text = (out / "report.json").read_text()
    report = DeploymentReport.model_validate_json(text)
    assert report.outcomes.alerts == store.stats(DEPLOYMENT).alerts
    assert (out / "report.json").stat().st_mode & 0o077 == 0, "the report names officers: owner-only"
    made = [
        e for e in store.audit.entries() if e.action is AuditAction.REQUEST and e.subject == f"deployment:{DEPLOYMENT}"
    ]
    assert len(made) == 1 and made[0].actor == SUPERVISOR and made[0].details["channel"] == "cli"
    assert made[0].details["report_sha256"] == hashlib.sha256(text.encode()).hexdigest()

    page = (out / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must fetch nothing from elsewhere"
    assert "<script" not in page and page.count("data:image/png;base64,") == 4
    for shown in (SIGNAGE, SUPERVISOR, "Oxford Circus", VERSION, "What these figures can and cannot show"):
        assert shown in page
    assert not any(person in page or person in text for person in PEOPLE), "no person id in the report"
    assert json.loads(text)["deployment_id"] == DEPLOYMENT


def test_an_unknown_deployment_writes_nothing_and_says_why(config, store, tmp_path):
    record_deployment(store)
    ran = lfr(config, "report", "deployment", "nowhere", "--out", tmp_path / "none")
    assert ran.code == 2 and "records no start of deployment 'nowhere'" in ran.err
    assert not (tmp_path / "none").exists()
    with pytest.raises(NoDeploymentRecordsError):
        DeploymentReports(store).make("nowhere", officer=OFFICER, channel="cli")


def test_what_enrolment_recorded_is_kept_per_person_and_forgotten_with_them(store):
    record_deployment(store, alerts=False)
    catalogue = Catalogue(store.database)
    people = {p.person_id: p for p in catalogue.people("west_end_wanted")}
    assert {pid: p.attributes for pid, p in people.items()} == ATTRIBUTES
    catalogue.forget_person("west_end_wanted", PEOPLE[0])
    assert PEOPLE[0] not in {p.person_id for p in catalogue.people("west_end_wanted")}


def test_a_run_that_failed_at_its_start_counts_as_nothing_seen(store):
    record_deployment(store, alerts=False)
    record_failed_start(store, "watchlist version west_end_wanted@v1 changed since it was frozen")
    report = DeploymentReports(store).make(DEPLOYMENT, officer=SUPERVISOR, channel="cli")
    failed = report.runs[-1]
    assert failed.error is not None and (failed.faces_seen, failed.watchlist_searches) == (0, 0)
    assert report.faces_seen == sum(counts[0] for run in RUN_COUNTS for counts in run.values())
    assert all(camera.faces_seen is not None for camera in report.cameras)
    assert "changed since it was frozen" in render_html(report)
