"""`lfr loadtest`'s report: report.json round trips, report.html stands alone, `--compare` catches regressions."""

import base64
import json
import re
from dataclasses import replace

import pytest

from cluster.chaos.scenarios import ChaosOutcome
from cluster.cli.main import main
from cluster.loadtesting.chaos_runs import ChaosFigures, check_chaos_names
from cluster.loadtesting.comparison import compare
from cluster.loadtesting.html_report import render_html
from cluster.loadtesting.report import FORMAT, LoadReport
from tests.loadtest_reports import accuracy, report, step

BASELINE = report((step(0, 1, frames_per_s=5.0, latency_s=0.2), step(1, 2, frames_per_s=9.5, latency_s=0.25)))


def test_report_json_round_trips_and_refuses_another_format(tmp_path):
    path = tmp_path / "report.json"
    BASELINE.save(path)
    assert LoadReport.load(path) == BASELINE
    assert json.loads(path.read_text())["format"] == FORMAT
    other = json.loads(path.read_text()) | {"format": "lfr-loadtest-report/0"}
    path.write_text(json.dumps(other))
    with pytest.raises(ValueError, match="'lfr-loadtest-report/0' report; this lfr reads 'lfr-loadtest-report/1'"):
        LoadReport.load(path)
    path.write_text('{"format": "lfr-loadtest-report/1", "steps": []}')
    with pytest.raises(ValueError, match="malformed load test report"):
        LoadReport.load(path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a load test report"):
        LoadReport.load(path)
    with pytest.raises(ValueError, match="cannot read the load test report"):
        LoadReport.load(tmp_path / "absent.json")


def test_an_equal_or_better_report_passes():
    assert compare(BASELINE, BASELINE).passed
    better = report(
        (step(0, 1, frames_per_s=5.5, latency_s=0.1), step(1, 2, frames_per_s=11.0, latency_s=0.2), step(2, 4, 20.0))
    )
    comparison = compare(BASELINE, better, tolerance=0.15)
    assert comparison.passed and comparison.compared == 2 * 8 + 2
    within = report((step(0, 1, frames_per_s=4.5, latency_s=0.22), step(1, 2, frames_per_s=8.6, latency_s=0.27)))
    assert compare(BASELINE, within, tolerance=0.15).passed, "10 % worse is within a 15 % tolerance"


def _chaos(**changes) -> ChaosFigures:
    outcome = ChaosOutcome(
        scenario="camera-actor",
        injected="killed CameraActor 01",
        fault_seen_s=0.0,
        recovery_s=6.5,
        alerts_before=3,
        alerts_after=3,
        alerts_lost=(),
        sightings_lost=0,
        duplicates=(),
        people_missed=(),
        audit_verifies=True,
        non_match_traces=0,
    )
    return ChaosFigures.of(replace(outcome, **changes), people_expected=2)


@pytest.mark.parametrize(
    "changes",
    [{"recovery_s": None}, {"alerts_lost": ("a1",)}, {"duplicates": ("a2",)}, {"audit_verifies": False}],
    ids=["not recovered", "alert lost", "duplicated", "audit broken"],
)
def test_a_chaos_scenario_that_lost_anything_fails_the_comparison(changes):
    assert compare(BASELINE, BASELINE.model_copy(update={"chaos": (_chaos(),)})).passed
    failed = compare(BASELINE, BASELINE.model_copy(update={"chaos": (_chaos(**changes),)}))
    assert [r.figure for r in failed.regressions] == ["chaos camera-actor: recovered with nothing lost"]


def test_chaos_figures_round_trip_and_show_in_the_page(tmp_path):
    with_chaos = BASELINE.model_copy(update={"chaos": (_chaos(), _chaos(scenario="rtsp-drop", people_missed=("p3",)))})
    path = tmp_path / "report.json"
    with_chaos.save(path)
    assert LoadReport.load(path) == with_chaos
    page = render_html(with_chaos)
    assert "Chaos on the last step" in page and "nothing lost" in page and "FAILED" in page
    assert "Chaos on the last step" not in render_html(BASELINE)


def test_only_scenarios_a_load_test_can_run_are_accepted():
    assert check_chaos_names(["camera-actor", "soak"]) == ("camera-actor", "soak")
    for name in ("disk-full", "worker-node", "milvus-restart", "no-such"):
        with pytest.raises(ValueError, match=name):
            check_chaos_names([name])


def test_a_worse_report_fails_naming_each_regressed_figure():
    slower = report((step(0, 1, frames_per_s=3.0, latency_s=0.2), step(1, 2, frames_per_s=9.5, latency_s=0.5)))
    comparison = compare(BASELINE, slower, tolerance=0.15)
    named = {regression.figure for regression in comparison.regressions}
    assert "1 cameras at 5 fps: frames/s" in named and "1 cameras at 5 fps: faces/s" in named
    assert {f"2 cameras at 5 fps: frame latency p{p}" for p in (50, 95, 99)} <= named
    assert {"2 cameras at 5 fps: alert latency p95", "2 cameras at 5 fps: alert latency p99"} <= named
    assert not any(name.startswith("1 cameras") and "latency" in name for name in named)
    described = [regression.describe() for regression in comparison.regressions]
    assert "1 cameras at 5 fps: frames/s: 5 -> 3 (-40.0%)" in described
    loose = {regression.figure for regression in compare(BASELINE, slower, tolerance=0.5).regressions}
    assert "1 cameras at 5 fps: frames/s" not in loose and "2 cameras at 5 fps: frame latency p99" in loose


def test_accuracy_that_falls_fails():
    worse = report(BASELINE.steps, run_accuracy=accuracy(true_alerts=2, false_alerts=1, seen=3, alerted=2))
    named = {regression.figure for regression in compare(BASELINE, worse, tolerance=0.15).regressions}
    assert named == {"accuracy: precision", "accuracy: recall"}


def test_a_missing_step_or_figure_is_named():
    shorter = report((step(0, 1, frames_per_s=5.0, latency_s=0.2, searches=()),))
    regressions = compare(BASELINE, shorter).regressions
    described = {regression.describe() for regression in regressions}
    assert "2 cameras at 5 fps: frames/s: missing (baseline 9.5)" in described
    assert "1 cameras at 5 fps: gallery search p99: missing (baseline 0.00598)" in described
    assert len([r for r in regressions if r.figure.startswith("2 cameras")]) == 8


def test_the_html_page_stands_alone_with_its_plots_and_tables():
    saturated = BASELINE.steps[1].model_copy(update={"saturated": "drop rate 9.0% is above 5.0%"})
    page = render_html(report((BASELINE.steps[0], saturated)))
    assert not re.search(r"(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", page), "the page names another address"
    assert not re.search(r"(?i)<script|<link|@import|url\(", page)
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 4
    for _, data in images:
        png = base64.b64decode(data)
        assert png.startswith(b"\x89PNG") and b"matplotlib.org" not in png
    assert "Saturated at 2 cameras, 5 fps:</strong> drop rate 9.0% is above 5.0%" in page
    assert "face service replicas" in page and "whole run" in page
    odd = report((step(0, 1, 5.0),))
    odd = odd.model_copy(update={"crowd": odd.crowd.model_copy(update={"folder": "/tmp/<script>x</script>"})})
    assert "&lt;script&gt;x&lt;/script&gt;" in render_html(odd), "what the report holds is escaped"


def test_cli_refuses_bad_input_before_starting_anything(tmp_path, capsys):
    crowd = tmp_path / "crowd"
    crowd.mkdir()
    assert main(["loadtest", str(crowd), "--chaos", "kill-coordinator"]) == 2
    assert "'kill-coordinator' is no chaos scenario" in capsys.readouterr().err
    assert main(["loadtest", str(crowd), "--chaos", "coordinator", "--chaos", "milvus-restart"]) == 2
    refused = capsys.readouterr().err
    assert "'milvus-restart': the load test keeps its watchlist in embedded milvus-lite" in refused
    assert "tests/test_chaos.py" in refused and "a load test runs: camera-actor" in refused
    assert main(["loadtest", str(crowd), "--cameras", "4", "2"]) == 2
    assert "only adds load" in capsys.readouterr().err
    assert main(["loadtest", str(crowd), "--cameras", "1.5"]) == 2
    assert "whole numbers" in capsys.readouterr().err
    assert main(["loadtest", str(crowd), "--tolerance", "1.5"]) == 2
    assert "--tolerance is a share" in capsys.readouterr().err
    assert main(["loadtest", str(crowd)]) == 2
    assert "holds no ground_truth.json: pass a folder written by `lfr crowd make`" in capsys.readouterr().err
