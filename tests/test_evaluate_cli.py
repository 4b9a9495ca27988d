"""`lfr evaluate` on lfw-public: the report a reviewer reads, built from the configured models."""

import json

import pytest

from cluster.matching.cohort import ImpostorCohort
from cluster.vision.face import PRIMARY_MODEL
from tests.paths import LFW_PUBLIC
from tests.test_watchlist_cli import lfr, lite_lfr_config

pytestmark = pytest.mark.slow


def test_evaluate_reports_each_model_alone_and_fused_with_intervals_and_calibration(lfw_public_cache, tmp_path):
    out = tmp_path / "report"
    with lite_lfr_config(tmp_path) as config:
        ran = lfr(
            config,
            "evaluate",
            LFW_PUBLIC,
            "--out",
            out,
            "--embeddings",
            lfw_public_cache,
            "--groups",
            LFW_PUBLIC / "gender.json",
            "--rounds",
            200,
            "--trial-sizes",
            50,
            "--trial-draws",
            5,
        )
    assert ran.code == 0, ran.err
    report = json.loads((out / "report.json").read_text())
    systems = {system["name"]: system for system in report["systems"]}
    assert set(systems) == {PRIMARY_MODEL, "faceres", "fused"}
    cohort = set(ImpostorCohort.load().labels.tolist())
    assert f"{len(cohort)} impostor-cohort people left out" in report["dataset"]["description"]
    for system in systems.values():
        for estimate in system["tpir_at_fpir"]:
            assert estimate["low"] <= estimate["tpir"] <= estimate["high"]
    assert systems["fused"]["rank1"] >= systems[PRIMARY_MODEL]["rank1"]
    assert [d["system"] for d in report["differences"]] == ["faceres", "fused"]
    assert {check["stated_fpir"] for check in report["calibration"]} == {1 / 6000, 1e-3, 1e-2}
    assert {(t["list_size"], t["stated_fpir"]) for t in report["calibration_trials"]} == {(50, 1e-2), (50, 1e-3)}
    groups = {row["group"] for row in systems["fused"]["groups"]["rows"]}
    assert groups <= {"female", "male", "unknown"} and "male" in groups
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4 and 'src="http' not in page
    assert "Calibration on random lists" in page
    assert "fused" in ran.out and "report:" in ran.out
