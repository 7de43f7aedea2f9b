"""finetune with ``finetune.num_processes: 2``: the stage relaunches itself under ``accelerate launch``
(2 CPU processes, gloo) and gives the same loss curve and adapter as one process on the same global batch.

Tolerance on the per-step loss: 5e-4. Measured on the 2-core dev box (48 samples, batch 8, 6 steps,
lengths 215..320 tokens): max |loss_1 - loss_2| = 4.8e-7 (float32 summation order: 1 vs 2 threads,
two half-batches all-reduced by gloo instead of one batch). Real departures are >= 14x the tolerance:
averaging per-process mean losses instead of tokens over all processes gave 6.9e-3; per-device batches
drawn with their own length-grouped order (no split_batches) gave 5.2e-2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.model.ft_samples import write_samples

LOSS_TOLERANCE = 5e-4
REPO = Path(__file__).resolve().parents[2]
FINETUNE = {"lora_rank": 4, "lora_alpha": 8, "learning_rate": 3e-3, "epochs": 1,
            "batch_size": 8, "gradient_accumulation_steps": 1, "max_length": 320, "save_steps": 100,
            "logging_steps": 1, "warmup_ratio": 0.1, "merge": False, "threads": 2,
            "full_cot_loss_weight": 1.0}


def run_stage(base: Path, tmp: Path, name: str, processes: int, config: Path) -> subprocess.CompletedProcess:
    """``python -m tokenskip finetune`` with ``finetune.num_processes = processes``, outputs under tmp/name."""
    params = tmp / f"params-{name}.yaml"
    params.write_text(yaml.safe_dump({"finetune": {**FINETUNE, "num_processes": processes}}))
    command = [sys.executable, "-m", "tokenskip", "finetune", "--base", str(base),
               "--samples", str(tmp / "samples.jsonl"), "--out", str(tmp / name / "out"),
               "--checkpoints", str(tmp / name / "ckpt"), "--report", str(tmp / name / "finetune.json"),
               "--params", str(params), "--accelerate-config", str(config)]
    env = {**os.environ, "TQDM_DISABLE": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.slow
def test_two_processes_match_one_process(tiny_model_dir, tmp_path):
    import torch
    from safetensors.torch import load_file

    from tokenskip.core.decoding import generate_greedy
    from tokenskip.core.hf import load_finetuned, load_tokenizer

    write_samples(load_tokenizer(str(tiny_model_dir)), tmp_path / "samples.jsonl", 48)
    config = REPO / "infra" / "accelerate"
    for name, processes in (("one", 1), ("two", 2)):
        run = run_stage(tiny_model_dir, tmp_path, name, processes, config)
        assert run.returncode == 0, run.stderr[-3000:]
    one = json.loads((tmp_path / "one" / "finetune.json").read_text())
    two = json.loads((tmp_path / "two" / "finetune.json").read_text())
    assert two["distributed"] == {"world_size": 2, "backend": "gloo", "type": "MULTI_CPU"}
    assert (two["num_processes"], two["per_device_batch_size"], two["threads_per_process"]) == (2, 4, 1)
    assert (one["num_processes"], one["per_device_batch_size"], one["threads_per_process"]) == (1, 8, 2)
    assert one["steps"] == two["steps"] == 6  # 48 samples / global batch 8, one epoch
    assert (one["batch_layout"], two["batch_layout"]) == ("padding-free", "padded")  # rows split over ranks
    assert [h["step"] for h in two["loss_history"]] == [h["step"] for h in one["loss_history"]]
    gap = max(abs(a["loss"] - b["loss"]) for a, b in zip(one["loss_history"], two["loss_history"], strict=True))
    print(f"max |loss(1 process) - loss(2 processes)| = {gap:.3g}")
    assert gap < LOSS_TOLERANCE, (one["loss_history"], two["loss_history"])

    out = tmp_path / "two" / "out"
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "tokenskip.json"]  # rank 0 wrote once
    assert not (tmp_path / "two" / "ckpt").exists() and not list((tmp_path / "two").glob(".*tmp*"))
    weights = [load_file(str(tmp_path / n / "out" / "adapter" / "adapter_model.safetensors")) for n in ("one", "two")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.allclose(weights[0][k], weights[1][k], atol=1e-5) for k in weights[0])
    model, tokenizer = load_finetuned(out, tiny_model_dir, "cpu")
    prompts = [json.loads(line)["prompt"] for line in (tmp_path / "samples.jsonl").read_text().splitlines()[:2]]
    generations, _ = generate_greedy(model, tokenizer, prompts, batch_size=2, max_new_tokens=8, desc="test")
    assert len(generations) == 2 and all(g.new_tokens > 0 for g in generations)


def test_missing_accelerate_config_is_one_clear_error(tiny_model_dir, tmp_path):
    (tmp_path / "samples.jsonl").write_text(json.dumps(
        {"id": "a", "ratio": 0.5, "prompt": "p", "completion": "c"}) + "\n")
    empty = tmp_path / "accelerate"
    empty.mkdir()
    run = run_stage(tiny_model_dir, tmp_path, "two", 2, empty)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {empty / 'multi-cpu.yaml'}: accelerate config not found")
    assert not (tmp_path / "two").exists()
