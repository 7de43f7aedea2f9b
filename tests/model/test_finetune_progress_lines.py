"""A finetune run prints a progress line per 10% of its steps, not the Trainer's log dicts."""

from __future__ import annotations

from pathlib import Path

from tests.model.ft_samples import write_samples
from tokenskip.core.params import FinetuneParams


def test_a_run_prints_progress_lines_and_no_log_dicts(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    from tokenskip.core.hf import load_tokenizer
    from tokenskip.finetune.training import run_finetune

    samples = write_samples(load_tokenizer(str(tiny_model_dir)), tmp_path / "samples.jsonl", 80)
    params = FinetuneParams(lora_rank=4, lora_alpha=8, merge=False, batch_size=4, max_length=160,
                            logging_steps=1, save_steps=100, learning_rate=3e-3)
    result = run_finetune(tiny_model_dir, samples, tmp_path / "out", tmp_path / "ckpt", params)
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("finetune: step ")]
    assert result.steps == 20 and len(result.loss_history) == 20  # the full curve is still recorded
    assert [line.split(",")[0] for line in lines] == [f"finetune: step {s}/20 ({5 * s}%)" for s in range(2, 21, 2)]
    assert "{'loss'" not in out + err and "train_runtime" not in out + err
