"""Benchmark of the main job: the whole pipeline (Prefect flow over `dvc repro <stage>`) on the
embedded default from a clean clone, install excluded. Prints ONE JSON line.

    .venv/bin/python bench/pipeline.py                 # clone this repository's committed HEAD
    .venv/bin/python bench/pipeline.py --keep          # keep the clone (its path is in the JSON)

Figures: total_s (dvc pull + flow; target <= 900), second_repro_s (a second `dvc repro`;
target <= 10), flow_overhead_s (flow wall time minus the sum of its stages' times; target <= 30)
and process_overhead_s (the same from the `python -m tokenskip run` process's wall time, i.e.
with Python start-up and the temporary Prefect server it starts when PREFECT_API_URL is unset).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGETS = {"total_s": 900, "second_repro_s": 10, "flow_overhead_s": 30}
STAGE_LINE = re.compile(r"stage ([\w-]+): (\w+) in ([\d.]+) s")
FLOW_LINE = re.compile(r"flow wall ([\d.]+) s, stages ([\d.]+) s, flow overhead (-?[\d.]+) s")


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> tuple[float, str]:
    """Run ``cmd``; return (seconds, its combined output); raise with the log path if it fails."""
    start = time.monotonic()
    result = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    seconds = time.monotonic() - start
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(cmd)}\n{result.stdout}\n")
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit {result.returncode}); see {log}")
    return seconds, result.stdout


def bench(source: Path, work: Path) -> dict:
    """Clone, pull data, run the flow, run `dvc repro` again; return the figures."""
    clone = work / "clone"
    log = work / "bench.log"
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
           "PYTHONPATH": f"{clone / 'src'}{os.pathsep}{clone}", "TQDM_DISABLE": "1",
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DVC_NO_ANALYTICS": "1",
           "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True,
                            text=True, check=True).stdout.strip()
    pull_s, _ = timed([str(BIN / "dvc"), "pull", "-q", "data.dvc"], clone, env, log)
    flow_s, out = timed([sys.executable, "-m", "tokenskip", "run"], clone, env, log)
    stages = {m.group(1): float(m.group(3)) for m in STAGE_LINE.finditer(out)}
    flow = FLOW_LINE.search(out)
    second_s, again = timed([str(BIN / "dvc"), "repro"], clone, env, log)
    champion = next((line for line in out.splitlines() if line.startswith("Champion:")), None)
    stage_sum = sum(stages.values())
    return {
        "bench": "pipeline",
        "commit": commit,
        "cpus": os.cpu_count(),
        "total_s": round(pull_s + flow_s, 1),
        "dvc_pull_s": round(pull_s, 1),
        "flow_process_s": round(flow_s, 1),
        "flow_wall_s": float(flow.group(1)) if flow else None,
        "stage_s": stages,
        "stage_sum_s": round(stage_sum, 1),
        "flow_overhead_s": float(flow.group(3)) if flow else None,
        "process_overhead_s": round(flow_s - stage_sum, 1),
        "second_repro_s": round(second_s, 1),
        "second_repro_noop": "Running stage" not in again,
        "champion": champion,
        "targets": TARGETS,
        "log": str(log),
    }


def main() -> int:
    """Command line: run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO, help="repository to clone (committed HEAD)")
    parser.add_argument("--keep", action="store_true", help="keep the clone and the log")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tokenskip-bench-"))
    try:
        figures = bench(args.source.resolve(), work)
        figures["workdir"] = str(work) if args.keep else None
        print(json.dumps(figures))
    except BaseException:
        args.keep = True  # a failed run keeps its clone and log for a look
        raise
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
