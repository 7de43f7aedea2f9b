"""Timings of the register stage and of the registered champion, on a tiny model.

Prints ONE JSON line: mlflow/server.sh start seconds; register seconds (server mode: first run of a
pipeline run, re-run with nothing to do); register seconds on the embedded SQLite default (fresh
database, incl. its schema migration); load_model("models:/...@champion") and predict latency;
versions registered. Runs in a temp folder; the CPU is shared (2 cores): figures are indicative.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.pipeline.mlflow_fixtures import register_on, run_register, write_workspace  # noqa: E402


def _timed(action):
    started = time.perf_counter()
    result = action()
    return result, round(time.perf_counter() - started, 2)


def main() -> None:
    """Build a tiny model, run register both ways, load and query the champion, print the figures."""
    import mlflow
    from tests.fixtures.tiny_models import train_tiny
    from tokenskip.core.params import DEFAULT_INSTRUCTION

    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-register-") as tmp:
        root = Path(tmp)
        train_tiny(str(root / "tiny"), DEFAULT_INSTRUCTION)
        env = {**os.environ, "MLFLOW_SERVER_DIR": str(root / "server")}
        started, figures["server_start_s"] = _timed(
            lambda: subprocess.run(
                [str(REPO / "mlflow/server.sh"), "start"], env=env, capture_output=True, text=True, check=True
            )
        )
        uri = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
        try:
            work = write_workspace(root / "server-ws", root / "tiny")
            report, figures["register_server_first_s"] = _timed(lambda: register_on(uri, work))
            again, figures["register_server_rerun_s"] = _timed(lambda: register_on(uri, work))
            figures["versions"] = len(report["versions"])
            figures["rerun_created_versions"] = again["created_versions"]
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            model, figures["load_champion_s"] = _timed(
                lambda: mlflow.pyfunc.load_model(f"models:/{report['registered_model']}@champion")
            )
            question = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
            _, figures["predict_1_question_s"] = _timed(
                lambda: model.predict([question], params={"ratio": 0.5})
            )
        finally:
            subprocess.run(
                [str(REPO / "mlflow/server.sh"), "stop"], env=env, capture_output=True, check=False
            )
        local = write_workspace(root / "embedded-ws", root / "tiny")
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        os.chdir(local)
        _, figures["register_embedded_fresh_db_s"] = _timed(lambda: run_register(local))
        os.chdir(REPO)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
