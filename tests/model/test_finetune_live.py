"""Inside the flow, fine-tuning logs its curves to MLflow while it trains: the finetune child run of
the flow's parent run has the loss at every logging step, before register runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.model.ft_samples import write_samples


def test_trainer_logs_live_curves_into_the_flows_finetune_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    from mlflow import MlflowClient
    from tokenskip.core.hf import load_tokenizer
    from tokenskip.tracking.names import CHILD_TAG, PARENT_TAG

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("live", artifact_location=(tmp_path / "artifacts").as_uri())
    parent = client.create_run(experiment, tags={"mlflow.runName": "flow"}).info.run_id
    write_samples(load_tokenizer(str(tiny_model_dir)), tmp_path / "samples.jsonl", 16)
    finetune = {"lora_rank": 4, "lora_alpha": 8, "epochs": 1, "batch_size": 4, "max_length": 160,
                "gradient_accumulation_steps": 1,
                "logging_steps": 1, "save_steps": 100}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"finetune": finetune}))
    command = [sys.executable, "-m", "tokenskip", "finetune", "--base", str(tiny_model_dir),
               "--samples", str(tmp_path / "samples.jsonl"), "--out", str(tmp_path / "out"),
               "--checkpoints", str(tmp_path / "ckpt"), "--report", str(tmp_path / "finetune.json"),
               "--params", str(tmp_path / "params.yaml")]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "TOKENSKIP_PARENT_RUN_ID": parent, "TQDM_DISABLE": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (child,) = client.search_runs([experiment], f"tags.`{PARENT_TAG}` = '{parent}' and tags.`{CHILD_TAG}` = 'finetune'")
    loss = client.get_metric_history(child.info.run_id, "loss")
    assert [m.step for m in loss] == [1, 2, 3, 4]  # 16 samples / batch 4, logged every step
    assert "learning_rate" in child.data.metrics and not child.data.params  # register logs the params


def test_outside_the_flow_nothing_is_logged(tiny_model_dir: Path, monkeypatch) -> None:
    from tokenskip.finetune.live import report_to

    monkeypatch.delenv("TOKENSKIP_PARENT_RUN_ID", raising=False)
    assert report_to(True) == "none"
