"""The register stage against a real ``mlflow server``: runs, versions, tags, gate, aliases, re-runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.pipeline.flow_helpers import free_port
from tests.pipeline.mlflow_fixtures import (
    REGISTER_CMD,
    REPO,
    register_on,
    run_register,
    run_register_with,
    write_workspace,
)
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import load_params

pytestmark = pytest.mark.slow


def client(uri: str):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def versions(uri: str, name: str) -> dict[str, object]:
    return {v.tags["ratio"]: v for v in client(uri).search_model_versions(f"name = '{name}'")}


@pytest.fixture(scope="module")
def registered(mlflow_server: str, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """One pipeline run registered on the fixture's server: (workspace, register.json)."""
    root = write_workspace(tmp_path_factory.mktemp("register"), tiny_model_dir)
    return root, register_on(mlflow_server, root)


def test_register_versions_tags_gate_and_aliases(tracking_env: str, registered) -> None:
    _, report = registered
    name = report["registered_model"]
    mc = client(tracking_env)
    by_ratio = versions(tracking_env, name)
    assert sorted(by_ratio) == ["0.5", "0.6", "0.7", "1.0"]
    champion = mc.get_model_version_by_alias(name, "champion")
    assert champion.tags["ratio"] == "0.6"
    assert mc.get_model_version_by_alias(name, "challenger").tags["ratio"] == "0.7"
    v05 = by_ratio["0.5"].tags
    # the default gate: against the original model, on the CI bounds
    assert v05["gate"] == "failed"
    assert "accuracy drop vs original (CI bound) 0.1050 > max_accuracy_drop 0.05" in v05["gate_reason"]
    v10 = by_ratio["1.0"].tags
    assert v10["gate"] == "failed"
    assert "token reduction vs original (CI bound) -0.0050 < min_token_reduction 0.2" in v10["gate_reason"]
    assert not by_ratio["0.5"].aliases and not by_ratio["1.0"].aliases
    tags = by_ratio["0.6"].tags
    # at a glance: at most 8 tags; the full figures are metrics of the version's logged model
    assert all(len(v.tags) <= 8 for v in by_ratio.values())
    assert (tags["accuracy"], tags["actual_ratio"]) == ("0.76", "0.6")
    assert tags["gate"] == "passed" and tags["gate_reason"] == "passed"
    assert tags["gate_thresholds"] == "reference=original decision=upper_ci max_accuracy_drop=0.05 min_token_reduction=0.2"
    model = mc.get_logged_model(by_ratio["0.6"].source.removeprefix("models:/"))
    figures = {m.key: m.value for m in model.metrics}
    assert figures["mean_cot_tokens"] == 60 and figures["accuracy_drop"] == pytest.approx(0.04)
    assert figures["token_reduction"] == pytest.approx(0.4) and figures["latency_s"] == pytest.approx(0.6)
    assert (figures["accuracy_drop_ci_low"], figures["accuracy_drop_ci_high"]) == (0.035, 0.045)
    assert (figures["token_reduction_ci_low"], figures["token_reduction_ci_high"]) == (0.395, 0.405)
    assert figures["accuracy_drop_original"] == figures["accuracy_drop_g1"] == pytest.approx(0.04)
    assert by_ratio["0.6"].description == (
        "g=0.6: accuracy 0.760 [0.71, 0.81], 60 CoT tokens (-40% vs original), gate passed")
    assert model.tags["parent_run_id"] == report["parent_run_id"] and model.tags["previous_champion"] == "none"
    assert all(v.current_stage == "None" for v in by_ratio.values())  # aliases only, no stages
    experiment = mc.get_experiment(mc.get_run(report["parent_run_id"]).info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # opens on its runs

    # child run per ratio with the figures, nested under the parent; finetune run with the loss curve
    run_id = by_ratio["0.6"].run_id
    run = mc.get_run(run_id)
    assert run.data.tags["mlflow.parentRunId"] == report["parent_run_id"]
    assert run.data.metrics["accuracy"] == 0.76 and run.data.metrics["token_reduction"] == pytest.approx(0.4)
    assert {"latency_s", "throughput_tok_s", "accuracy_drop", "mean_cot_tokens"} <= set(run.data.metrics)
    assert [a.path for a in mc.list_artifacts(run_id) if a.path == "outputs.jsonl"]
    table = mc.load_table(run.info.experiment_id, "per_question.json", run_ids=[run_id])
    assert list(table["condition"].unique()) == ["g=0.6"] and len(table) == 4
    assert table["correct"].tolist() == [True, True, True, False]  # 0.76 of 4 questions, as evaluate wrote
    loss = mc.get_metric_history(model.tags["finetune_run_id"], "loss")
    assert [(m.step, m.value) for m in loss] == [(1, 2.5), (2, 2.0), (3, 1.5), (4, 1.25)]
    lora_rank = load_params(REPO / "params.yaml").finetune.lora_rank  # the params the run was given
    assert mc.get_run(model.tags["finetune_run_id"]).data.params["finetune.lora_rank"] == str(lora_rank)
    parent = mc.get_run(report["parent_run_id"])
    assert parent.data.params["gates.max_accuracy_drop"] == "0.05"
    assert {"git_commit", "dvc_lock_sha256", "dataset", "model", "mlflow.source.git.commit"} <= set(parent.data.tags)
    (test_set,) = parent.inputs.dataset_inputs
    assert test_set.dataset.name == "synthetic-test" and test_set.dataset.digest
    assert [(t.key, t.value) for t in test_set.tags] == [("mlflow.data.context", "test")]
    assert parent.data.metrics["baseline.truncation_0.5.accuracy"] == 0.05
    reports = {a.path for a in mc.list_artifacts(report["parent_run_id"], "reports")}
    assert {"reports/pareto.png", "reports/validation", "reports/outputs.jsonl"} <= reports

    assert report["champion"] == {"version": champion.version, "ratio": 0.6, "from_this_run": True,
                                  "pipeline_run_id": report["parent_run_id"], "gate": "passed",
                                  "passed_under": {"reference": "original", "decision": "upper_ci",
                                                   "max_accuracy_drop": 0.05, "min_token_reduction": 0.2}}
    assert report["gate_passed"] is True
    roles = {v["ratio"]: (v["verdict"], v["role"], v["alias"]) for v in report["versions"]}
    assert roles == {
        0.5: ("failed", "failed", None),
        0.6: ("passed", "champion", "champion"),
        0.7: ("passed", "challenger", "challenger"),
        1.0: ("failed", "failed", None),
    }
    assert report["created_versions"] == 4 and report["reused_versions"] == 0
    v06 = next(v for v in report["versions"] if v["ratio"] == 0.6)
    assert (v06["reference"], v06["decision"], v06["accuracy_drop_ci"]) == ("original", "upper_ci", [0.035, 0.045])
    assert v06["accuracy_drop_original"] == v06["accuracy_drop_g1"] == 0.04 and v06["mcnemar_p"] == 0.5


def test_rerun_creates_nothing_and_completes_a_partial_run(tracking_env: str, registered) -> None:
    root, first = registered
    name = first["registered_model"]
    again = run_register(root)
    assert again["created_versions"] == 0 and again["reused_versions"] == 4
    assert again["parent_run_id"] == first["parent_run_id"] and again["champion"] == first["champion"]
    assert len(versions(tracking_env, name)) == 4
    # a run cut short: one version missing and no aliases -> the retry completes exactly that
    mc = client(tracking_env)
    mc.delete_model_version(name, versions(tracking_env, name)["0.7"].version)
    mc.delete_registered_model_alias(name, "champion")
    third = run_register(root)
    assert third["created_versions"] == 1 and len(versions(tracking_env, name)) == 4
    assert mc.get_model_version_by_alias(name, "champion").tags["ratio"] == "0.6"
    assert mc.get_model_version_by_alias(name, "challenger").tags["ratio"] == "0.7"
    experiment = mc.get_run(first["parent_run_id"]).info.experiment_id
    children = mc.search_runs([experiment], f"tags.`mlflow.parentRunId` = '{first['parent_run_id']}'")
    assert len(children) == 5  # four ratios + finetune, none duplicated
    run_id = versions(tracking_env, name)["0.6"].run_id
    assert len(mc.load_table(experiment, "per_question.json", run_ids=[run_id])) == 4  # logged once, not appended


def test_nests_under_flow_parent_and_gates_against_champion(
    tracking_env: str, registered, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second pipeline run of the same registered model (runs after the two tests above)."""
    first_root, first = registered
    name = first["registered_model"]
    mc = client(tracking_env)
    experiment = mc.get_run(first["parent_run_id"]).info.experiment_id
    flow_parent = mc.create_run(experiment, tags={"mlflow.runName": "flow"}).info.run_id
    monkeypatch.setenv("TOKENSKIP_PARENT_RUN_ID", flow_parent)
    # 0.7 is beaten by the old champion (0.6: 0.76 at 60 tokens) by 0.06 at more tokens
    run2 = {1.0: (0.75, 100.0), 0.7: (0.70, 70.0), 0.6: (0.72, 62.0), 0.5: (0.71, 50.0)}
    shutil.copy(first_root / "params.yaml", tmp_path / "params.yaml")
    second = run_register(write_workspace(tmp_path, tiny_model_dir, run2))
    assert second["parent_run_id"] == flow_parent
    assert second["previous_champion"] == first["champion"]["version"]
    mine = {str(v["ratio"]): mc.get_model_version(name, v["version"]) for v in second["versions"]}
    assert {mc.get_run(v.run_id).data.tags["mlflow.parentRunId"] for v in mine.values()} == {flow_parent}
    assert "champion (g=0.6) is 0.0600 more accurate" in mine["0.7"].tags["gate_reason"]
    assert mine["0.6"].tags["gate"] == "passed" and mine["0.5"].tags["gate"] == "passed"
    assert mc.get_model_version_by_alias(name, "champion").version == mine["0.5"].version
    assert mc.get_model_version_by_alias(name, "challenger").version == mine["0.6"].version
    assert mc.get_run(flow_parent).info.status == "RUNNING"  # the flow owns and ends its run
    assert len(mc.search_model_versions(f"name = '{name}'")) == 8
    assert second["champion"]["version"] == mine["0.5"].version and second["champion"]["ratio"] == 0.5
    assert second["champion"]["from_this_run"] is True and second["champion"]["pipeline_run_id"] == flow_parent


def test_a_plain_register_after_the_flow_creates_no_second_version(
    tracking_env: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow registered the model under its parent run; `tokenskip register` by hand on the same
    model and evaluation reuses those versions instead of adding v5-v8 and moving the aliases."""
    root = write_workspace(tmp_path, tiny_model_dir)
    mc = client(tracking_env)
    flow_parent = mc.create_run(mc.create_experiment(f"flow-{tmp_path.name}")).info.run_id
    monkeypatch.setenv("TOKENSKIP_PARENT_RUN_ID", flow_parent)
    first = run_register(root)
    monkeypatch.delenv("TOKENSKIP_PARENT_RUN_ID")
    second = run_register(root)
    name = first["registered_model"]
    assert (second["created_versions"], second["reused_versions"]) == (0, 4)
    assert len(versions(tracking_env, name)) == 4
    assert second["champion"] == first["champion"] and second["parent_run_id"] == flow_parent


def test_unreachable_server_fails_fast_with_one_line(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", dead)
    with pytest.raises(TokenSkipError) as info:
        run_register(workspace)
    message = str(info.value)
    assert message.startswith(
        f"MLflow tracking at {dead} unreachable: get experiment failed after 2 attempt(s)"
    )
    assert "\n" not in message and "mlflow/server.sh start" in message


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda r: r["ratios"].pop("0.7"), "ratios.0.7: missing (evaluate.ratios lists it)"),
        (lambda r: r["ratios"]["0.5"].pop("latency_s"), "ratios.0.5.latency_s: missing"),
        (lambda r: r["ratios"]["1.0"].update(accuracy="high"), "ratios.1.0.accuracy: not a number ('high')"),
        (lambda r: r.pop("ratios"), "missing object 'ratios'"),
    ],
)
def test_bad_evaluate_report_names_ratio_and_metric(
    workspace: Path, edit, expected: str, monkeypatch
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{workspace}/mlflow/mlflow.db")
    path = workspace / "reports/evaluate.json"
    report = json.loads(path.read_text())
    edit(report)
    path.write_text(json.dumps(report))
    with pytest.raises(TokenSkipError) as info:
        run_register(workspace)
    assert str(info.value) == f"{path}: {expected}"
    assert not (workspace / "mlflow").exists()  # nothing tracked before the inputs are complete


def test_cli_embedded_default_and_bad_input(workspace: Path) -> None:
    """``tokenskip register`` exactly as dvc.yaml calls it, on the embedded SQLite default."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "TOKENSKIP_PARENT_RUN_ID")}
    done = subprocess.run(REGISTER_CMD, cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((workspace / "reports/register.json").read_text())
    db = (workspace / "mlflow/mlflow.db").resolve()  # params' relative path, taken from the workspace
    assert report["tracking_uri"] == f"sqlite:///{db}" and report["champion"]["ratio"] == 0.6
    assert (workspace / "mlflow/mlflow.db").is_file() and any((workspace / "mlflow/artifacts").iterdir())
    headline = json.loads((workspace / "reports/metrics.json").read_text())  # what `dvc metrics show` prints
    assert headline["champion_ratio"] == 0.6 and headline["reference"] == "original"
    assert headline["ratios"]["0.6"] == {
        "accuracy": 0.76, "accuracy_ci_low": 0.71, "accuracy_ci_high": 0.81, "actual_ratio": 0.6,
        "latency_ratio": 0.6, "accuracy_drop": 0.04, "accuracy_drop_ci_high": 0.045, "verdict": "passed"}
    (workspace / "reports/finetune.json").write_text('{"loss_history": [{"step": 1}]}')
    bad = subprocess.run(REGISTER_CMD, cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert (
        bad.stderr.strip() == "error: reports/finetune.json: loss_history.0: needs numeric 'step' and 'loss'"
    )


def test_a_moved_workspace_is_one_error_not_writes_into_the_old_folder(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded store keeps absolute artifact locations: after a move, register says so."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the embedded default: sqlite:///mlflow/mlflow.db
    params = load_params(workspace / "params.yaml")
    first = run_register_with(workspace, params)
    assert first["created_versions"] == 4
    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    shutil.move(str(workspace), moved)
    monkeypatch.chdir(moved)
    with pytest.raises(TokenSkipError) as info:
        run_register_with(moved, params)
    message = str(info.value)
    assert "keeps its artifacts in" in message and "a moved or copied clone?" in message
    assert not workspace.exists()  # nothing was written into the old folder


@pytest.mark.parametrize("damage", ["corrupt", "read-only"])
def test_a_damaged_embedded_store_is_one_line(workspace: Path, damage: str, monkeypatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    db = workspace / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    if damage == "corrupt":
        db.write_bytes(b"this is not a database" * 100)
    else:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        subprocess.run(REGISTER_CMD, cwd=workspace, env=env, capture_output=True, timeout=300, check=True)
        (workspace / "reports/evaluate.json").write_text(
            (workspace / "reports/evaluate.json").read_text().replace('"n_test": 100', '"n_test": 99'))
        db.chmod(0o444)
        db.parent.chmod(0o555)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    try:
        done = subprocess.run(REGISTER_CMD, cwd=workspace, env=env, capture_output=True, text=True, timeout=300)
    finally:
        db.parent.chmod(0o755)
        db.chmod(0o644)
    if damage == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes to read-only files")
    assert done.returncode == 2, done.stderr[-1500:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "mlflow" in errors[0], done.stderr[-1500:]
    assert "Traceback" not in done.stderr, done.stderr[-1500:]


def test_the_same_weights_evaluated_again_reuse_their_versions(tracking_env: str, workspace: Path) -> None:
    """A second evaluation of the same weights measures other latencies and throughput: its figures,
    paired statistics and per-question results are the same, so no version is registered twice."""
    first = run_register(workspace)
    path = workspace / "reports/evaluate.json"
    report = json.loads(path.read_text())
    for row in [*report["ratios"].values(), *report["baselines"].values()]:
        row.update({k: round(v * 1.37, 4) for k, v in row.items() if k in ("latency_s", "throughput_tok_s")})
    path.write_text(json.dumps(report))
    second = run_register(workspace)
    assert (second["created_versions"], second["reused_versions"]) == (0, 4)
    assert len(versions(tracking_env, first["registered_model"])) == 4
    assert second["champion"]["version"] == first["champion"]["version"]


def test_a_run_that_promotes_nothing_keeps_the_champion_and_says_where_it_came_from(
    tracking_env: str, workspace: Path
) -> None:
    """Stricter thresholds on the same model and evaluation: nothing passes, so no alias moves; the
    champion keeps the verdict it earned (tags: passed, under the thresholds of its run), and the
    report and ``--require-champion`` both say that no version of this run passed."""
    import yaml

    first = run_register(workspace)
    name, champion = first["registered_model"], first["champion"]["version"]
    params = yaml.safe_load((workspace / "params.yaml").read_text())
    params["gates"]["max_accuracy_drop"] = 0.01
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_env}
    env.pop("TOKENSKIP_PARENT_RUN_ID", None)
    done = subprocess.run([*REGISTER_CMD, "--require-champion"], cwd=workspace, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 4, done.stderr[-2000:]
    report = json.loads((workspace / "reports/register.json").read_text())
    assert report["gate_passed"] is False and report["created_versions"] == 0
    assert report["champion"] == {
        "version": champion, "ratio": 0.6, "from_this_run": False, "pipeline_run_id": first["parent_run_id"],
        "gate": "passed", "passed_under": {"reference": "original", "decision": "upper_ci",
                                           "max_accuracy_drop": 0.05, "min_token_reduction": 0.2}}
    v06 = next(v for v in report["versions"] if v["ratio"] == 0.6)
    assert (v06["verdict"], v06["alias"]) == ("failed", "champion") and "no alias moved" in v06["alias_kept"]
    mc = client(tracking_env)
    assert mc.get_model_version_by_alias(name, "champion").version == champion
    kept = mc.get_model_version(name, champion).tags
    assert kept["gate"] == "passed" and "max_accuracy_drop=0.05" in kept["gate_thresholds"]
    rejudged = versions(tracking_env, name)["0.5"].tags  # holds no alias: re-tagged under the new gate
    assert rejudged["gate"] == "failed" and "max_accuracy_drop=0.01" in rejudged["gate_thresholds"]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: {name}: no version of this run passed the gate") and f"v{champion}" in error
