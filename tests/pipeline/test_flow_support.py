"""The flow's helpers without Prefect: stage planning, dvc output parsing, the streamed,
time-limited subprocess, and `dvc repro <stage>` failures on a real toy DVC repository."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.pipeline.flow_helpers import make_toy_repo
from tokenskip.cli import STAGE_COMMANDS
from tokenskip.core.errors import TokenSkipError
from tokenskip_flows.support import (
    StageFailed,
    parse_repro_output,
    plan_stages,
    read_dvc_stages,
    run_dvc_repro,
    run_streaming,
    stage_env,
    stage_exit_code,
)


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
