"""Exit codes by cause, from the real ``tokenskip`` entry point in a subprocess: 2 bad input,
3 validation failed, 4 no version passed the gate (only when asked), 1 anything else; and the
global options (``--log-level``, ``-v``) and the telemetry defaults every entry point sets."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.data.test_validate_cli import _args as validate_args
from tests.data.validate_fixture import make_records, write_word_tokenizer
from tests.pipeline.flow_helpers import free_port
from tests.pipeline.mlflow_fixtures import write_workspace
from tokenskip.cli import ENV_DEFAULTS, requested_command
from tokenskip.core.errors import ExitCode, NoChampion, ServiceError, TokenSkipError, exit_code_of

# nothing passes: every ratio loses 0.2 or more accuracy against g = 1.0 / the original model
NO_PASS = {1.0: (0.80, 100.0), 0.7: (0.60, 69.0), 0.6: (0.55, 60.0), 0.5: (0.50, 52.0)}


def tokenskip(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m tokenskip ARGS`` as a user runs it (telemetry variables unset first)."""
    base = {k: v for k, v in os.environ.items() if k not in ENV_DEFAULTS and k != "MLFLOW_TRACKING_URI"}
    return subprocess.run([sys.executable, "-m", "tokenskip", *args], cwd=cwd, capture_output=True,
                          text=True, env={**base, **(env or {})}, timeout=600)


def test_codes_of_the_exception_types() -> None:
    assert [exit_code_of(e) for e in (TokenSkipError("x"), ServiceError("x"), NoChampion("x"), ValueError())] == [
        2, 1, 4, 1]
    assert int(ExitCode.VALIDATION_FAILED) == 3


def test_the_command_is_found_after_the_global_options() -> None:
    assert requested_command(["--log-level", "debug", "register", "--x"]) == "register"
    assert requested_command(["-v", "ui"]) == "ui"
    assert requested_command(["--help"]) is None


def test_bad_params_and_bad_options_exit_2(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"gates": {"max_accuracy_drop": 2}}))
    bad = tokenskip(["register", "--params", "params.yaml"], tmp_path)
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: params.yaml: gates.max_accuracy_drop")
    usage = tokenskip(["prune", "--no-such-option"], tmp_path)
    assert usage.returncode == 2 and "No such option" in usage.stderr


def test_failed_validation_exits_3(tmp_path: Path) -> None:
    records = make_records()
    records["samples"][1]["completion"] = "Something else entirely."
    args = validate_args(tmp_path, records, write_word_tokenizer(tmp_path / "tokenizer"))
    failed = tokenskip(args, tmp_path)
    assert failed.returncode == 3, failed.stderr[-2000:]
    assert "expectations failed" in failed.stderr
    assert json.loads((tmp_path / "reports" / "validate.json").read_text())["success"] is False


def test_an_unreachable_tracking_server_exits_1(tmp_path: Path, tiny_model_dir: Path) -> None:
    write_workspace(tmp_path, tiny_model_dir)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["mlflow"].update(retries=1, retry_backoff_s=0)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    down = tokenskip(["register"], tmp_path, {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"})
    assert down.returncode == 1, down.stderr[-2000:]
    assert "unreachable" in down.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_no_passing_version_exits_4_only_when_asked(tmp_path: Path, tiny_model_dir: Path) -> None:
    write_workspace(tmp_path, tiny_model_dir, NO_PASS)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["mlflow"].update(tracking_uri="sqlite:///mlflow/mlflow.db", artifact_location="mlflow/artifacts")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    quiet = tokenskip(["--log-level", "warning", "register"], tmp_path)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    report = json.loads((tmp_path / "reports" / "register.json").read_text())
    assert report["champion"] is None and report["champion_uri"] is None
    asked = tokenskip(["register", "--require-champion"], tmp_path)
    assert asked.returncode == 4, asked.stderr[-3000:]
    assert "no version of this run passed the gate; no champion" in asked.stderr.strip().splitlines()[-1]
    assert (tmp_path / "reports" / "register.json").is_file()  # the reports are written first


def test_entry_points_switch_telemetry_off_and_pass_the_log_level_on(tmp_path: Path) -> None:
    probe = ("import os, sys; from tokenskip.cli import main; sys.argv = ['tokenskip', '-v', 'synthesize', "
             "'--help']\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
             "print({k: os.environ.get(k) for k in sorted(os.environ) if k.startswith(('MLFLOW', 'PREFECT', "
             "'DVC', 'DO_NOT', 'TOKENSKIP', 'HF_HUB_DIS', 'ATEN', 'MKL'))})")
    base = {k: v for k, v in os.environ.items() if k not in ENV_DEFAULTS}
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, env=base)
    seen = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert {k: seen[k] for k in ENV_DEFAULTS} == ENV_DEFAULTS
    assert seen["TOKENSKIP_LOG_LEVEL"] == "debug" and seen["PREFECT_LOGGING_LEVEL"] == "DEBUG"
    flows = subprocess.run([sys.executable, "-c", "import os, tokenskip_flows; print(os.environ['MLFLOW_DISABLE_TELEMETRY'])"],
                           cwd=tmp_path, capture_output=True, text=True, env=base)
    assert flows.stdout.strip() == "true"
