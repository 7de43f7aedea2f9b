"""The flow's helpers without Prefect: stage planning, dvc output parsing, the streamed,
time-limited subprocess, and `dvc repro <stage>` failures on a real toy DVC repository."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.pipeline.flow_helpers import make_toy_repo, run
from tokenskip.cli import STAGE_COMMANDS
from tokenskip.core.errors import TokenSkipError
from tokenskip_flows.support import (
    StageFailed,
    dvc_input_error,
    parse_repro_output,
    plan_stages,
    read_dvc_stages,
    run_dvc_repro,
    run_streaming,
    stage_env,
    stage_exit_code,
)
from tokenskip_flows.workspace import params_kept_on_failure, restore_outputs, validated_overrides


def test_plan_runs_the_stages_in_dvc_yaml_order_and_limits_to_requested() -> None:
    assert plan_stages(["base-model", "export", "register"]) == ["base-model", "export", "register"]
    assert plan_stages(["base-model", "prune", "register"], ["register", "prune"]) == ["prune", "register"]
    with pytest.raises(TokenSkipError, match="unknown stage"):
        plan_stages(["base-model", "prune"], ["pruning"])
    with pytest.raises(TokenSkipError, match="unknown stage"):  # a stage this dvc.yaml does not have
        plan_stages(["base-model", "prune"], ["register"])


def test_read_dvc_stages_of_this_repository_follows_the_stage_commands(repo_root: Path) -> None:
    stages = read_dvc_stages(repo_root)
    assert stages[0] == "base-model" and stages[-1] == "register"
    assert stages == [name for name in STAGE_COMMANDS if name in stages]  # the CLI lists them in that order


def test_read_dvc_stages_of_a_toy_repository_in_file_order(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages:\n  b:\n    cmd: x\n  a:\n    cmd: y\n")
    assert read_dvc_stages(tmp_path) == ["b", "a"]
    with pytest.raises(TokenSkipError, match="not found"):
        read_dvc_stages(tmp_path / "missing")


def test_parse_repro_output_statuses() -> None:
    lines = [
        "Stage 'base-model' didn't change, skipping",
        "Stage 'generate' is cached - skipping run, checking out outputs",
        "Running stage 'prune':",
        "> tokenskip prune --base models/base",
    ]
    assert parse_repro_output(lines) == {"base-model": "unchanged", "generate": "restored", "prune": "ran"}


def test_the_stage_exit_code_comes_from_dvc_and_decides_what_is_transient() -> None:
    failed = "ERROR: failed to reproduce 'prune': failed to run: tokenskip prune --x 'a, exited with 9', exited with 2"
    assert stage_exit_code(["Running stage 'prune':", "error: bad", failed]) == 2
    assert stage_exit_code(["Traceback (most recent call last):", "MemoryError"]) is None
    assert stage_exit_code(["ERROR: Unable to acquire lock. Most likely another DVC process is running"]) is None
    assert [StageFailed("s", "failed", [], code).transient for code in (None, 1, 2, 3, 4, -9)] == [
        True, True, False, False, False, True]


def test_run_streaming_passes_lines_and_kills_the_group_on_timeout(tmp_path: Path) -> None:
    seen: list[str] = []
    marker = tmp_path / "late.txt"
    script = f"import time, pathlib; print('first', flush=True); time.sleep(20); pathlib.Path({str(marker)!r}).touch()"
    start = time.monotonic()
    code, tail, seconds = run_streaming([sys.executable, "-c", script], tmp_path, {}, 1.5, seen.append)
    assert code is None and seen == ["first"] and tail == ["first"]
    assert time.monotonic() - start < 15
    assert not marker.exists()


def test_run_streaming_keeps_last_state_of_progress_lines(tmp_path: Path) -> None:
    script = "import sys; sys.stdout.write('10%\\r50%\\r100%\\nerror: bad\\n')"
    code, tail, _ = run_streaming([sys.executable, "-c", script], tmp_path, {}, 30, lambda _: None)
    assert code == 0 and tail == ["100%", "error: bad"]


@pytest.mark.slow
def test_dvc_repro_runs_then_skips_and_fails_with_last_lines(tmp_path: Path) -> None:
    repo = make_toy_repo(tmp_path / "toy", ["base-model", "generate"])
    env = stage_env({"PATH": "/usr/bin:/bin"}, {"TOKENSKIP_PARENT_RUN_ID": "abc"})
    lines: list[str] = []
    first = run_dvc_repro("base-model", repo, env, 60, lines.append)
    assert first.ran and "stage base-model parent abc" in lines
    assert not run_dvc_repro("base-model", repo, env, 60, lambda _: None).ran

    (repo / "mode.txt").write_text("generate:input-error")
    with pytest.raises(StageFailed) as failed:
        run_dvc_repro("generate", repo, env, 60, lambda _: None)
    assert failed.value.exit_code == 2 and not failed.value.transient
    assert "error: data/x.jsonl: record 3: field 'gold' missing" in str(failed.value)

    (repo / "mode.txt").write_text("generate:flaky")  # fails on its first call only
    (repo / "calls_generate.txt").unlink()
    with pytest.raises(StageFailed) as crashed:
        run_dvc_repro("generate", repo, env, 60, lambda _: None)
    assert crashed.value.exit_code == 1 and crashed.value.transient and "transient crash" in crashed.value.tail
    assert run_dvc_repro("generate", repo, env, 60, lambda _: None).ran


def test_stage_env_puts_this_venv_first() -> None:
    env = stage_env({"PATH": "/usr/bin"}, {"X": "1"})
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["X"] == "1" and env["DVC_NO_ANALYTICS"] == "1"


def test_dvcs_refusals_of_the_project_files_are_told_from_other_failures() -> None:
    refused = [
        "ERROR: unable to read: 'params.yaml', YAML file structure is corrupted: while constructing a mapping",
        "'./dvc.yaml' validation failed: 2 errors.",
        "'./dvc.yaml' is invalid.",
        "ERROR: failed to parse 'stages.base-model.cmd' in 'dvc.yaml': Could not find 'nope'",
        "ERROR: failed to reproduce 'base-model': Parameters 'flow.nokey' are missing from 'params.yaml'.",
        "ERROR: Invalid `--set-param` value",
    ]
    assert [dvc_input_error(["Running stage 'x':", line]) for line in refused] == refused
    others = ["ERROR: Unable to acquire lock. Most likely another DVC process is running",
              "ERROR: failed to reproduce 'prune': failed to run: tokenskip prune, exited with 1", "MemoryError"]
    assert dvc_input_error(others) is None


def test_read_dvc_stages_refuses_a_stage_given_twice(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("stages:\n  a:\n    cmd: x\n  a:\n    cmd: y\n")
    with pytest.raises(TokenSkipError, match=r"dvc.yaml:4: duplicate key 'a' \(first on line 2\)"):
        read_dvc_stages(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("broken", ["params.yaml", "dvc.yaml"])
def test_dvc_refusing_the_project_files_is_bad_input_not_a_crash(tmp_path: Path, broken: str) -> None:
    """DVC exits 255 for a duplicate key in params.yaml or a dvc.yaml it cannot read, as for a crash;
    the same files fail the same way: exit code 2, not transient (the flow does not retry it)."""
    repo = make_toy_repo(tmp_path / "toy", ["base-model"])
    if broken == "params.yaml":
        (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "flow:\n  retries: 0\n")
    else:
        (repo / "dvc.yaml").write_text((repo / "dvc.yaml").read_text() + "  other:\n    cmdx: x\n")
    env = stage_env({"PATH": "/usr/bin:/bin"}, {})
    with pytest.raises(StageFailed) as failed:
        run_dvc_repro("base-model", repo, env, 60, lambda _: None)
    assert failed.value.exit_code == 2 and not failed.value.transient
    assert "dvc exit code 255" in failed.value.reason and not (repo / "calls_base-model.txt").exists()


def test_overrides_are_validated_in_memory_and_params_yaml_is_untouched(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_bytes((REPO_ROOT / "params.yaml").read_bytes())
    before = params.read_bytes()
    assert validated_overrides(params, ["prune.ratios=[0.6]", "flow.cron=0 3 * * *"]).prune.ratios == [0.6]
    with pytest.raises(TokenSkipError) as info:
        validated_overrides(params, ["prune.ratios=[1.5]"])
    assert str(info.value).startswith("params.yaml with -S prune.ratios=[1.5]: prune.ratios.0: Input should be")
    with pytest.raises(TokenSkipError, match=r"^-S nokey.x=1: Could not override 'nokey.x'"):
        validated_overrides(params, ["nokey.x=1"])
    with pytest.raises(TokenSkipError, match=r"^params.yaml with -S \+nokey.x=1: nokey: unknown key"):
        validated_overrides(params, ["+nokey.x=1"])
    assert params.read_bytes() == before


def test_a_failed_block_puts_params_yaml_back(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("flow:\n  cron: 0 2 * * *\n")
    with pytest.raises(StageFailed), params_kept_on_failure(params):
        params.write_text("flow:\n  cron: 0 3 * * *\n")  # what dvc exp run -S does
        raise StageFailed("prune", "failed (exit code 2)", [], 2)
    assert params.read_text() == "flow:\n  cron: 0 2 * * *\n"
    with params_kept_on_failure(params):
        params.write_text("flow:\n  cron: 0 4 * * *\n")
    assert params.read_text() == "flow:\n  cron: 0 4 * * *\n"  # a run that succeeds keeps DVC's params


@pytest.mark.slow
def test_restore_brings_back_the_committed_outputs_reports_and_params(tmp_path: Path) -> None:
    """A failed `dvc exp run` rewrote params.yaml and deleted the stage's output and report; one
    command restores the last committed run."""
    repo = make_toy_repo(tmp_path / "toy", ["base-model", "generate"])
    env = stage_env({"PATH": "/usr/bin:/bin"}, {})
    run_dvc_repro("generate", repo, env, 60, lambda _: None)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a good run"], repo)
    good = {p: (repo / p).read_bytes() for p in ("params.yaml", "dvc.lock", "out/generate.txt",
                                                  "reports/generate.json")}
    (repo / "mode.txt").write_text("generate:input-error")
    with pytest.raises(StageFailed):
        run_dvc_repro("generate", repo, env, 60, lambda _: None, overrides=["flow.cron=0 3 * * *"],
                      targets=["generate"])
    assert (repo / "params.yaml").read_bytes() != good["params.yaml"]
    assert not (repo / "out/generate.txt").exists() and not (repo / "reports/generate.json").exists()
    said: list[str] = []
    assert restore_outputs(repo, said.append) == 0
    assert {p: (repo / p).read_bytes() for p in good} == good
    assert said[0] == "$ git checkout -- reports params.yaml dvc.lock" and said[-1].startswith("restored")
