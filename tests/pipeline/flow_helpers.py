"""Helpers of the pipeline tests: toy DVC repositories, and a clone of this repository
(committed HEAD + `dvc pull` of data) with a small configuration."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tokenskip.core.net import free_port  # noqa: F401  (the pipeline tests' free ports)

BIN = Path(sys.executable).parent
DVC = str(BIN / "dvc") if (BIN / "dvc").exists() else "dvc"
SERVER_STARTUP_S = 120

# The stages a small configuration runs in a test's time: a bootstrap model trained for a few
# steps solves nothing, so generate would rightly stop with "no correct CoT".
SMALL_STAGES = ["base-model"]
# Small configuration of the embedded default: values are applied only where the key exists.
SMALL_PARAMS = {
    "data": {"n_train": 16, "n_test": 8},
    "base_model": {
        "max_steps": 10,
        "time_budget_s": 5,
        "warmup_steps": 2,
        "eval_batch_size": 8,
        "eval_max_new_tokens": 32,
        "min_accuracy": 0.0,
    },
    "generate": {"backend": "transformers"},  # 16 questions: a local Ray cluster would cost more than it saves
    "flow": {"retries": 0, "retry_delay_s": 0},
}


def stop_process_group(proc: subprocess.Popen, timeout_s: float = 20) -> None:
    """TERM a server's whole process group (it started with start_new_session), KILL after timeout_s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_for_final_state(client, flow_run_id, timeout_s: float = 600):
    """Poll a flow run (Prefect sync client) until it is in a final state; fail the test after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        flow_run = client.read_flow_run(flow_run_id)
        if flow_run.state is not None and flow_run.state.is_final():
            return flow_run
        time.sleep(2)
    pytest.fail(f"flow run {flow_run_id} did not finish in {timeout_s} s")


def run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output, fail the test with its tail if it fails."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", **kw.pop("env", {})}
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, **kw)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result


TOY_STAGE = textwrap.dedent("""\
    import json, os, pathlib, sys
    name = sys.argv[1]
    out = pathlib.Path("out"); out.mkdir(exist_ok=True)
    pathlib.Path("reports").mkdir(exist_ok=True)
    parent = os.environ.get("TOKENSKIP_PARENT_RUN_ID")
    print("stage", name, "parent", parent, flush=True)
    calls = pathlib.Path(f"calls_{name}.txt")
    n = int(calls.read_text()) if calls.exists() else 0
    calls.write_text(str(n + 1))
    mode = pathlib.Path("mode.txt").read_text().strip() if pathlib.Path("mode.txt").exists() else "ok"
    if mode == f"{name}:input-error":
        print("error: data/x.jsonl: record 3: field 'gold' missing", file=sys.stderr); sys.exit(2)
    if mode == f"{name}:flaky" and n == 0:
        print("transient crash", file=sys.stderr); sys.exit(1)
    if name == "validate":
        ok = mode != "validate:fail"
        failures = [] if ok else [{"suite": "pruned", "name": "ratio_mean", "unexpected_count": 1}]
        json.dump({"success": ok, "suites": {"pruned": {"evaluated_expectations": 5}}, "failures": failures},
                  open("reports/validate.json", "w"))
        if not ok:
            print("validate: 1 of 5 expectations failed; see reports/validate.json", file=sys.stderr); sys.exit(3)
    (out / f"{name}.txt").write_text(name)
    report = {"stage": name, "parent": parent}
    if name == "validate":
        report = json.load(open("reports/validate.json"))
    if name == "evaluate":
        report = {"n_test": 2, "ratios": {"1.0": {"accuracy": 1.0, "mean_cot_tokens": 10.0},
                  "0.5": {"accuracy": 0.5, "mean_cot_tokens": 5.0}}, "baselines": {"truncation_0.5": {"accuracy": 0.0}}}
    if name == "register":
        report = {"registered_model": "toy", "versions": [{"version": "1", "ratio": 0.5, "verdict": "passed"}],
                  "champion": {"version": "1", "ratio": 0.5}}
    json.dump(report, open(f"reports/{name}.json", "w"))
""")


def make_toy_repo(root: Path, stages: list[str]) -> Path:
    """A git + DVC repository whose stages (a chain, in the given order) run a tiny script."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "stage.py").write_text(TOY_STAGE)
    shutil.copy(Path(__file__).resolve().parents[2] / "params.yaml", root / "params.yaml")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["flow"].update({"retries": 1, "retry_delay_s": 0.1})
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    doc: dict = {"stages": {}}
    previous = None
    for name in stages:
        doc["stages"][name] = {
            "cmd": f"python stage.py {name}",
            "deps": ["stage.py"] + ([f"out/{previous}.txt"] if previous else []),
            "params": ["flow.cron"],
            "outs": [f"out/{name}.txt"],
            "metrics": [{f"reports/{name}.json": {"cache": False}}],
        }
        previous = name
    (root / "dvc.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (root / ".gitignore").write_text("mode.txt\ncalls_*.txt\nmlflow/\n")
    run(["git", "init", "-q"], root)
    run([DVC, "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "toy"], root)
    return root


def clone_small(repo_root: Path, dest: Path) -> Path:
    """`git clone` of the committed HEAD, `dvc pull` of data, and the small configuration."""
    run(["git", "clone", "-q", str(repo_root), str(dest)], repo_root.parent)
    run([DVC, "pull", "-q", "data.dvc"], dest)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for section, values in SMALL_PARAMS.items():
        for key, value in values.items():
            if key in params.get(section, {}):
                params[section][key] = value
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return dest


def clone_env(clone: Path) -> dict[str, str]:
    """Environment that makes the clone's own (committed) code run, not this checkout's."""
    return {"PYTHONPATH": os.pathsep.join([str(clone / "src"), str(clone)])}


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, what: str, timeout_s: float) -> None:
    """Poll ``url`` until it answers 200; fail with the end of ``log`` if ``proc`` exits or
    ``timeout_s`` passes first."""
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start:\n{log.read_text()[-4000:]}")
        time.sleep(1)


def post_json(url: str, body: bytes, timeout_s: float) -> tuple[int, str]:
    """A raw JSON POST: (status, body text), for error statuses too."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
