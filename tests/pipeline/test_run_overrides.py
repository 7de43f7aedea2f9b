"""``tokenskip run -S key=value``: the overrides go through ``dvc exp run -S`` (DVC writes them to
params.yaml and records an experiment) and onto the MLflow parent run; a stage's bad input is
exit code 2 from ``tokenskip run``, without a retry."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.pipeline.flow_helpers import BIN, DVC, make_toy_repo

pytestmark = pytest.mark.slow


def tokenskip_run(toy: Path, api: dict[str, str], uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``tokenskip run --repo toy ARGS`` against the fixture's Prefect server."""
    env = {**os.environ, **api, "MLFLOW_TRACKING_URI": uri, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([str(BIN / "tokenskip"), "run", "--repo", str(toy), *args], cwd=toy, env=env,
                          capture_output=True, text=True, timeout=300)


def test_overrides_run_as_a_dvc_experiment_recorded_in_mlflow(
    prefect_api: dict[str, str], tmp_path: Path
) -> None:
    import mlflow

    toy = make_toy_repo(tmp_path / "toy", ["validate", "register"])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    done = tokenskip_run(toy, prefect_api, uri, "-S", "flow.cron=0 3 * * *")
    assert done.returncode == 0, done.stderr[-3000:]
    assert yaml.safe_load((toy / "params.yaml").read_text())["flow"]["cron"] == "0 3 * * *"  # by DVC
    shown = subprocess.run([DVC, "exp", "show", "--no-pager", "--csv"], cwd=toy, capture_output=True, text=True)
    assert "0 3 * * *" in shown.stdout
    client = mlflow.MlflowClient(tracking_uri=uri)
    parent = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                "tags.`tokenskip.role` = 'pipeline'")[0]
    assert parent.data.params["override.flow.cron"] == "0 3 * * *"
    assert parent.data.tags["tokenskip.overrides"] == "flow.cron=0 3 * * *"
    assert parent.data.tags["dvc.experiment"]

    bad = tokenskip_run(toy, prefect_api, uri, "-S", "no-equals-sign")
    assert bad.returncode == 2 and "expected key=value" in bad.stderr


def test_a_stage_with_bad_input_makes_tokenskip_run_exit_2_without_retry(
    prefect_api: dict[str, str], tmp_path: Path
) -> None:
    toy = make_toy_repo(tmp_path / "toy", ["validate", "register"])
    (toy / "mode.txt").write_text("register:input-error")
    failed = tokenskip_run(toy, prefect_api, f"sqlite:///{tmp_path}/mlflow.db")
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert (toy / "calls_register.txt").read_text() == "1"  # retries: 1 in the toy params, not used


def test_a_bad_override_changes_nothing_and_a_failed_run_leaves_params_yaml_as_it_was(
    prefect_api: dict[str, str], tmp_path: Path
) -> None:
    """``-S prune.ratios=[1.5]`` used to exit 2 after DVC had rewritten params.yaml and deleted the
    outputs; it is refused before DVC runs. A valid override whose run fails puts params.yaml back."""
    toy = make_toy_repo(tmp_path / "toy", ["validate", "register"])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert tokenskip_run(toy, prefect_api, uri).returncode == 0
    before = {p: (toy / p).read_bytes() for p in ("params.yaml", "out/register.txt", "reports/register.json")}
    bad = tokenskip_run(toy, prefect_api, uri, "-S", "prune.ratios=[1.5]")
    assert bad.returncode == 2, bad.stderr[-3000:]
    assert "error: params.yaml with -S prune.ratios=[1.5]: prune.ratios.0: Input should be" in bad.stderr
    assert {p: (toy / p).read_bytes() for p in before} == before
    assert (toy / "calls_register.txt").read_text() == "1"  # no stage ran

    (toy / "mode.txt").write_text("register:input-error")
    failed = tokenskip_run(toy, prefect_api, uri, "-S", "flow.cron=0 3 * * *")
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert (toy / "params.yaml").read_bytes() == before["params.yaml"]  # dvc exp run had written the override


def test_params_or_dvc_yaml_that_dvc_refuses_are_exit_2_without_retry(
    prefect_api: dict[str, str], tmp_path: Path
) -> None:
    toy = make_toy_repo(tmp_path / "toy", ["validate", "register"])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    params = (toy / "params.yaml").read_text()
    (toy / "params.yaml").write_text(params + "flow:\n  retries: 0\n")  # a key given twice
    twice = tokenskip_run(toy, prefect_api, uri)
    errors = [line for line in twice.stderr.splitlines() if line.startswith("error: ")]
    assert twice.returncode == 2 and len(errors) == 1 and "params.yaml:" in errors[0]
    assert "duplicate key 'flow'" in errors[0]
    assert not (toy / "calls_validate.txt").exists()

    (toy / "params.yaml").write_text(params)
    (toy / "dvc.yaml").write_text((toy / "dvc.yaml").read_text() + "  other:\n    cmdx: x\n")
    refused = tokenskip_run(toy, prefect_api, uri)
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "dvc exit code 255: './dvc.yaml' validation failed" in refused.stderr
    assert "Retry 1/1" not in refused.stdout + refused.stderr  # flow.retries is 1 in the toy params
