"""A finetune run killed mid-training resumes from its last checkpoint and ends at the same step count."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.model.ft_samples import write_samples


def finetune_command(base: Path, tmp: Path) -> list[str]:
    return [sys.executable, "-m", "tokenskip", "finetune", "--base", str(base),
            "--samples", str(tmp / "samples.jsonl"), "--out", str(tmp / "out"),
            "--checkpoints", str(tmp / "ckpt"), "--report", str(tmp / "finetune.json"),
            "--params", str(tmp / "params.yaml")]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_total_steps(tiny_model_dir, tmp_path):
    from tokenskip.core.hf import load_tokenizer

    write_samples(load_tokenizer(str(tiny_model_dir)), tmp_path / "samples.jsonl", 24)
    finetune = {"lora_rank": 4, "lora_alpha": 8, "learning_rate": 0.002, "epochs": 3, "batch_size": 4,
                "gradient_accumulation_steps": 1, "max_length": 160, "save_steps": 6, "logging_steps": 3}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"finetune": finetune}))
    expected_steps = 6 * 3  # 24 samples / batch 4, three epochs
    command = finetune_command(tiny_model_dir, tmp_path)
    env = {**os.environ, "TQDM_DISABLE": "1"}
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    state = tmp_path / "ckpt" / "checkpoint-6" / "trainer_state.json"
    while not state.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL, "the first run finished before it could be killed"
    assert not (tmp_path / "finetune.json").exists() and not (tmp_path / "out").exists()

    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    report = json.loads((tmp_path / "finetune.json").read_text())
    assert report["steps"] == expected_steps
    assert 6 <= report["resumed_from_step"] < expected_steps
    assert report["loss_history"][0]["step"] == 3  # history restored from the checkpoint's state
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").is_file()
