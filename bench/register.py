"""Timings of the register stage and of the registered champion, on a tiny model.

Prints ONE JSON line: mlflow/server.sh start seconds; register seconds (server mode: first run of a
pipeline run, re-run with nothing to do); register seconds on the embedded SQLite default (fresh
database, incl. its schema migration); load_model("models:/...@champion") and predict latency;
versions registered. Runs in a temp folder; the CPU is shared (2 cores): figures are indicative.
The workspace is this bench's own: a tiny bootstrap model (``tiny_inputs``) as base and fine-tuned
model, and evaluate/finetune reports in their documented shape whose figures make g = 0.6 the
champion (0.5 drops too much accuracy, 1.0 saves no tokens) and 0.7 the challenger.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from tiny_inputs import train_tiny_base

REPO = Path(__file__).resolve().parents[1]
RATIOS = [0.5, 0.6, 0.7]
TABLE = {1.0: (0.80, 100.0), 0.7: (0.78, 69.0), 0.6: (0.76, 60.0), 0.5: (0.70, 52.0)}  # g: accuracy, tokens
HALF_WIDTH = 0.005  # of every paired interval
LOSSES = [2.5, 2.0, 1.5, 1.25]
FINETUNE_REPORT = {
    "method": "lora", "steps": len(LOSSES), "seconds": 1.5, "tokens": 4000, "tokens_per_s": 2666.7,
    "final_loss": LOSSES[-1], "trainable_parameters": 1234, "total_parameters": 99999, "n_samples": 32,
    "truncated_samples": 0, "loss_history": [{"step": i + 1, "loss": loss} for i, loss in enumerate(LOSSES)],
}


def _timed(action):
    started = time.perf_counter()
    result = action()
    return result, round(time.perf_counter() - started, 2)


def _paired(acc: float, tokens: float) -> dict:
    """One ratio against a reference that scores as g = 1.0, intervals of +-HALF_WIDTH."""
    ref_acc, ref_tokens = TABLE[1.0]
    drop, reduction = round(ref_acc - acc, 6), round(1 - tokens / ref_tokens, 6)
    def interval(value: float) -> list[float]:
        return [round(value - HALF_WIDTH, 6), round(value + HALF_WIDTH, 6)]

    return {"accuracy_drop": drop, "accuracy_drop_ci": interval(drop), "token_reduction": reduction,
            "token_reduction_ci": interval(reduction), "mcnemar_p": 0.5}


def evaluate_report() -> dict:
    """An evaluate.json in the DESIGN.md shape from TABLE."""
    ref_acc, ref_tokens = TABLE[1.0]
    ratios = {
        f"{g:.1f}": {"accuracy": acc, "accuracy_ci": [round(acc - 0.05, 4), round(acc + 0.05, 4)],
                     "mean_cot_tokens": tok, "actual_ratio": tok / ref_tokens, "latency_s": 0.01 * tok,
                     "throughput_tok_s": 1000.0 - tok,
                     "paired": {ref: _paired(acc, tok) for ref in ("original", "g1")}}
        for g, (acc, tok) in TABLE.items()
    }
    original = {"accuracy": ref_acc, "mean_cot_tokens": ref_tokens, "actual_ratio": 1.0,
                "latency_s": ref_tokens / 100}
    return {"n_test": 100, "ratios": ratios, "baselines": {"original": original}}


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_workspace(root: Path, model: Path) -> Path:
    """models/{base,tokenskip/model}, reports/{evaluate,finetune}.json, per-question rows, the
    test set and params.yaml (a fresh experiment and registered model) under ``root``."""
    shutil.copytree(model, root / "models" / "base")
    shutil.copytree(model, root / "models" / "tokenskip" / "model")
    reports = root / "reports"
    (reports / "validation").mkdir(parents=True)
    (reports / "validation" / "index.html").write_text("<html>data docs</html>")
    (reports / "evaluate.json").write_text(json.dumps(evaluate_report()))
    (reports / "finetune.json").write_text(json.dumps(FINETUNE_REPORT))
    _jsonl(reports / "outputs.jsonl",
           [{"method": "tokenskip", "g": g, "id": "q0", "output": "1 + 1 = 2"} for g in TABLE])
    _jsonl(root / "artifacts" / "evaluate" / "per_question.jsonl", [
        {"condition": f"g={g:.1f}", "id": f"synthetic-test-{i:05d}", "correct": i < round(acc * 4),
         "cot_tokens": int(tok), "new_tokens": int(tok) + 8, "prediction": "2", "output": "1 + 1 = 2"}
        for g, (acc, tok) in TABLE.items() for i in range(4)])
    test_set = [{"question": f"What is {i} + 1?", "answer": f"{i} + 1 = {i + 1}\n#### {i + 1}"}
                for i in range(4)]
    _jsonl(root / "data" / "synthetic" / "test.jsonl", test_set)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    tag = uuid.uuid4().hex[:8]
    params["mlflow"].update(experiment=f"bench-{tag}", registered_model=f"tokenskip-bench-{tag}")
    params["evaluate"].update(ratios=RATIOS)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def run_register(root: Path, tracking_uri: str | None = None) -> dict:
    """The register stage in-process on the workspace (as dvc.yaml calls it); its report."""
    from tokenskip.core.params import load_params
    from tokenskip.register.inputs import RegisterInputs
    from tokenskip.register.registration import register

    os.environ.pop("TOKENSKIP_PARENT_RUN_ID", None)
    if tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    else:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    inputs = RegisterInputs(
        root / "reports/evaluate.json", root / "reports/finetune.json", root / "models/tokenskip",
        root / "models/base", root / "reports", root / "artifacts/evaluate/per_question.jsonl",
        root / "data/synthetic/test.jsonl",
    )
    params_path = root / "params.yaml"
    return register(inputs, load_params(params_path), params_path.read_text())


def main() -> None:
    """Build a tiny model, run register both ways, load and query the champion, print the figures."""
    import mlflow
    from tokenskip.core.params import DEFAULT_INSTRUCTION

    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-register-") as tmp:
        root = Path(tmp)
        train_tiny_base(root / "tiny", DEFAULT_INSTRUCTION)
        env = {**os.environ, "MLFLOW_SERVER_DIR": str(root / "server")}
        server = [str(REPO / "mlflow/server.sh")]
        started, figures["server_start_s"] = _timed(
            lambda: subprocess.run([*server, "start"], env=env, capture_output=True, text=True, check=True))
        uri = started.stdout.strip().splitlines()[-1].split("=", 1)[1]
        try:
            work = write_workspace(root / "server-ws", root / "tiny")
            report, figures["register_server_first_s"] = _timed(lambda: run_register(work, uri))
            again, figures["register_server_rerun_s"] = _timed(lambda: run_register(work, uri))
            figures["versions"] = len(report["versions"])
            figures["rerun_created_versions"] = again["created_versions"]
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            model, figures["load_champion_s"] = _timed(
                lambda: mlflow.pyfunc.load_model(f"models:/{report['registered_model']}@champion"))
            question = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
            _, figures["predict_1_question_s"] = _timed(
                lambda: model.predict([question], params={"ratio": 0.5}))
        finally:
            subprocess.run([*server, "stop"], env=env, capture_output=True, check=False)
        local = write_workspace(root / "embedded-ws", root / "tiny")
        os.chdir(local)
        _, figures["register_embedded_fresh_db_s"] = _timed(lambda: run_register(local))
        os.chdir(REPO)
    print(json.dumps(figures))


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__)
        raise SystemExit(0)
    main()
