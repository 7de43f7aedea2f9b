"""`tokenskip ablation` (``python -m tokenskip ablation``) on a copy of the smoke run: two variants
(self-information, random) at one ratio as DVC experiments through evaluate, against a real
Prefect API server and the smoke run's MLflow server. The report's shape, the plot, the MLflow
parent run and the Prefect table; params.yaml and dvc.lock as before; no registry alias moved."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pipeline.flow_helpers import BIN, DVC, clone_env, run
from tests.pipeline.smoke import copy_clone

pytestmark = pytest.mark.slow
VARIANTS = ("self-information", "random")
POINT_KEYS = {"accuracy", "accuracy_ci", "actual_ratio", "matched"}
DIFF_KEYS = {"accuracy_difference", "accuracy_difference_ci", "mcnemar_p", "token_reduction",
             "token_reduction_ci", "n"}


def champion(uri: str, name: str) -> str:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version_by_alias(name, "champion").version


def check_report(report: dict, n_test: int) -> None:
    assert sorted(report) == sorted(VARIANTS)
    for variant, body in report.items():
        assert body["experiment"].startswith(f"ablation-{variant}-")
        assert "prune.scorer=" + variant in body["overrides"] and "evaluate.ratios=[0.6]" in body["overrides"]
        assert sorted(body["ratios"]) == ["0.6", "1.0"]
        for g, point in body["ratios"].items():
            assert POINT_KEYS <= set(point), (variant, g, point)
            assert 0.0 <= point["accuracy"] <= 1.0 and len(point["accuracy_ci"]) == 2
            if variant == "self-information":
                assert point["matched"]["accuracy"] == pytest.approx(point["accuracy"], abs=1e-4)
            else:
                diff = point["vs_self-information"]
                assert set(diff) == DIFF_KEYS and diff["n"] == n_test
                low, high = diff["accuracy_difference_ci"]
                assert low <= diff["accuracy_difference"] <= high
    reference = report["self-information"]["ratios"]["0.6"]["actual_ratio"]
    assert report["random"]["ratios"]["0.6"]["matched"]["actual_ratio"] == reference  # matched ratios


def test_ablation_runs_one_experiment_per_variant_and_moves_nothing(
    smoke_run: dict, prefect_api: dict[str, str], prefect_client, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    work = copy_clone(smoke_run["clone"], tmp_path / "work")
    uri, name = smoke_run["uri"], smoke_run["reports"]["register"]["registered_model"]
    before = {f: (work / f).read_bytes() for f in ("params.yaml", "dvc.lock", "reports/evaluate.json")}
    status = run(["git", "status", "--porcelain", "params.yaml", "dvc.lock"], work).stdout
    champion_before = champion(uri, name)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **clone_env(work),
           **prefect_api, "MLFLOW_TRACKING_URI": uri}
    cmd = [sys.executable, "-m", "tokenskip", "ablation", "--repo", str(work), "--ratio", "0.6", "--no-baselines",
           *[arg for v in VARIANTS for arg in ("--variant", v)]]
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    print(f"ablation: {time.monotonic() - started:.1f} s")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads((work / "reports" / "ablation.json").read_text())
    print(json.dumps(report, indent=1))
    check_report(report, smoke_run["reports"]["evaluate"]["n_test"])
    assert (work / "reports" / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| random | 0.6 |" in done.stdout

    # the workspace is back at its baseline, the experiments are kept, no alias moved
    assert {f: (work / f).read_bytes() for f in before} == before
    assert run(["git", "status", "--porcelain", "params.yaml", "dvc.lock"], work).stdout == status
    listed = run([DVC, "exp", "list", "--name-only"], work).stdout.split()
    assert {report[v]["experiment"] for v in VARIANTS} <= set(listed)
    assert champion(uri, name) == champion_before

    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()],
                              "tags.`tokenskip.role` = 'ablation'")
    assert len(runs) == 1
    logged = {a.path for a in client.list_artifacts(runs[0].info.run_id, "ablation")}
    assert logged == {"ablation/ablation.json", "ablation/ablation.png"}
    assert runs[0].data.metrics["accuracy.random.g0.6"] == report["random"]["ratios"]["0.6"]["accuracy"]

    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    key = ArtifactFilterKey(any_=["tokenskip-ablation"])
    tables = prefect_client.read_artifacts(artifact_filter=ArtifactFilter(key=key))
    assert tables and tables[0].type == "table"
