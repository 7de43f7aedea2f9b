"""Model-registry latency: MLflow server on PostgreSQL (+ S3 artifacts) vs embedded SQLite.

Prints ONE JSON line. Per backend, medians over --reps repetitions, in milliseconds:
``write_ms`` = create a model version with its tags + set the ``champion`` alias (what register does
per ratio, less the model upload); ``read_ms`` = get the version by alias + resolve its
``models:/<name>@champion`` URI to the artifact location; ``download_ms`` = download that version's
(one small file) artifacts, as a loader does before it reads the weights.
Backends: ``postgres_server`` (infra/start-{postgres,s3,mlflow}.sh: the shared stack),
``sqlite_server`` (mlflow/server.sh with its SQLite default: the same HTTP hop, another database)
and ``sqlite_embedded`` (params' default ``sqlite:///...``, no server). Start-up seconds of the
scripts are reported too. Everything runs in a temp folder and is stopped at the end; the CPU is
shared (2 cores, load average reported), so the figures are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def script(env: dict[str, str], path: Path, *args: str) -> tuple[str, float]:
    """Run a start/stop script; (its last output line, seconds). Fails loudly."""
    started = time.perf_counter()
    done = subprocess.run(
        ["bash", str(path), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{path} {' '.join(args)} failed: {done.stderr[-1000:]}")
    return done.stdout.strip().splitlines()[-1], round(time.perf_counter() - started, 2)


def measure(uri: str, reps: int, workdir: Path) -> dict[str, float]:
    """Median write/read/download latency (ms) of ``reps`` versions of one registered model."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    location = None if uri.startswith("http") else (workdir / "artifacts").as_uri()
    experiment = client.create_experiment(f"bench-{os.getpid()}-{time.time_ns()}", location)
    run = client.create_run(experiment)
    weights = workdir / "model"
    weights.mkdir(parents=True, exist_ok=True)
    (weights / "weights.bin").write_bytes(os.urandom(64 * 1024))
    client.log_artifacts(run.info.run_id, str(weights), "model")
    name = f"bench-{time.time_ns()}"
    client.create_registered_model(name)
    writes, reads, downloads = [], [], []
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for rep in range(reps):
        tags = {"ratio": "0.6", "accuracy": "0.76", "gate": "passed", "rep": str(rep)}
        started = time.perf_counter()
        version = client.create_model_version(
            name, f"{run.info.artifact_uri}/model", run_id=run.info.run_id, tags=tags
        )
        client.set_registered_model_alias(name, "champion", version.version)
        writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        found = client.get_model_version_by_alias(name, "champion")
        client.get_model_version_download_uri(name, found.version)
        reads.append(time.perf_counter() - started)
        target = workdir / f"download-{rep}"
        started = time.perf_counter()
        mlflow.artifacts.download_artifacts(f"models:/{name}@champion", dst_path=str(target))
        downloads.append(time.perf_counter() - started)
        shutil.rmtree(target, ignore_errors=True)
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
    return {
        "write_ms": round(statistics.median(writes) * 1000, 1),
        "read_ms": round(statistics.median(reads) * 1000, 1),
        "download_ms": round(statistics.median(downloads) * 1000, 1),
    }


def main() -> None:
    """Start the stack and a SQLite server in a temp folder, measure the three backends, stop all."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15, help="versions written and read per backend")
    args = parser.parse_args()
    os.environ.update(MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false")
    root = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    root.chmod(0o755)  # PostgreSQL runs as the `postgres` user and must reach its data folder
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING", "AWS_"))}
    stack_env = {**base, "TOKENSKIP_INFRA_DIR": str(root / "infra")}
    sqlite_env = {**base, "MLFLOW_SERVER_DIR": str(root / "sqlite-server")}
    figures: dict[str, object] = {"reps": args.reps, "start_s": {}}
    started: list[tuple[dict[str, str], list]] = []
    try:
        for service in ("postgres", "s3", "mlflow"):
            started.append((stack_env, [REPO / f"infra/stop-{service}.sh"]))
            _, figures["start_s"][service] = script(stack_env, REPO / f"infra/start-{service}.sh")
        started.append((sqlite_env, [REPO / "mlflow/server.sh", "stop"]))
        line, figures["start_s"]["sqlite_server"] = script(sqlite_env, REPO / "mlflow/server.sh", "start")
        sqlite_uri = line.split("=", 1)[1]
        recorded = dict(
            row.split("=", 1) for row in (root / "infra/env").read_text().splitlines() if "=" in row
        )
        figures["postgres_server"] = measure(recorded["MLFLOW_TRACKING_URI"], args.reps, root / "pg")
        figures["sqlite_server"] = measure(sqlite_uri, args.reps, root / "sqlite-srv")
        (root / "embedded").mkdir()
        figures["sqlite_embedded"] = measure(
            f"sqlite:///{root}/embedded/mlflow.db", args.reps, root / "embedded"
        )
    finally:
        for env, command in reversed(started):
            subprocess.run(
                ["bash", *map(str, command)], env=env, capture_output=True, timeout=120, check=False
            )
        shutil.rmtree(root, ignore_errors=True)
    figures["load_avg_1m"] = round(os.getloadavg()[0], 2)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
