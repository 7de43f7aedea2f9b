"""finetune's guards against silent wrong results: checkpoints keyed by the base model's content,
and ``--validation``: no training unless validate's report says success."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.model.ft_samples import write_samples
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import FinetuneParams

FAST = dict(learning_rate=3e-3, epochs=1, batch_size=8, gradient_accumulation_steps=1,
            max_length=160, save_steps=2, logging_steps=1, warmup_ratio=0.1)
REPO = Path(__file__).resolve().parents[2]


class Killed(Exception):
    """Stands in for a kill right after the first checkpoint was saved."""


def perturb_weights(model_dir: Path, seed: int = 1) -> None:
    """Replace the weights in place by another model of the same shapes: same file size, same mtime."""
    import torch
    from safetensors.torch import load_file, save_file

    weights = model_dir / "model.safetensors"
    before = weights.stat()
    generator = torch.Generator().manual_seed(seed)
    tensors = {k: v + 0.05 * torch.randn(v.shape, generator=generator, dtype=v.dtype)
               for k, v in load_file(str(weights)).items()}
    save_file(tensors, str(weights), metadata={"format": "pt"})
    os.utime(weights, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = weights.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.fixture(scope="module")
def samples(tiny_model_dir, tmp_path_factory) -> Path:
    from tokenskip.core.hf import load_tokenizer

    return write_samples(load_tokenizer(str(tiny_model_dir)), tmp_path_factory.mktemp("s") / "samples.jsonl", 24)


def _killed_after_first_save(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the next run's Trainer stop (like a kill) right after it has saved checkpoint-2."""
    import transformers
    from transformers import TrainerCallback

    class KillOnSave(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            raise Killed

    class KilledTrainer(transformers.Trainer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.add_callback(KillOnSave())

    monkeypatch.setattr(transformers, "Trainer", KilledTrainer)


@pytest.mark.parametrize("swap_base", [False, True], ids=["same-base-resumes", "swapped-base-starts-over"])
def test_checkpoint_of_another_base_model_at_the_same_path_is_not_resumed(
    tiny_model_dir, samples, tmp_path, monkeypatch, swap_base
):
    from tokenskip.finetune.training import run_finetune

    base, ckpt = tmp_path / "base", tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, base)
    params = FinetuneParams(lora_rank=4, lora_alpha=8, merge=False, **FAST)
    with monkeypatch.context() as patch:
        _killed_after_first_save(patch)
        with pytest.raises(Killed):
            run_finetune(base, samples, tmp_path / "out", ckpt, params)
    assert (ckpt / "checkpoint-2" / "trainer_state.json").is_file() and not (tmp_path / "out").exists()
    if swap_base:  # another model of the same architecture, same path, same file sizes and mtimes
        perturb_weights(base)
    result = run_finetune(base, samples, tmp_path / "out", ckpt, params)
    assert result.steps == 3
    if swap_base:
        assert result.resumed_from_step == 0
        assert [h["step"] for h in result.loss_history] == [1, 2, 3]  # trained from scratch on the new base
    else:
        assert result.resumed_from_step == 2  # the kill simulation does leave a resumable checkpoint


def test_fingerprint_follows_content_not_path_size_or_mtime(tiny_model_dir, samples, tmp_path):
    from tokenskip.finetune.fingerprint import fingerprint

    base = tmp_path / "base"
    shutil.copytree(tiny_model_dir, base)
    params = FinetuneParams(**FAST)
    key = fingerprint(params, samples, str(base), None)
    for path in base.iterdir():  # touched, same bytes: same model
        os.utime(path, ns=(1, 1))
    (base / ".cache").mkdir()
    (base / ".cache" / "download.lock").write_text("x")  # hidden bookkeeping does not count
    assert fingerprint(params, samples, str(base), None) == key
    shutil.copytree(base, tmp_path / "moved")
    assert fingerprint(params, samples, str(tmp_path / "moved"), None) == key  # content, not the path
    config = json.loads((base / "tokenizer_config.json").read_text())
    config["model_max_length"] = 7
    (base / "tokenizer_config.json").write_text(json.dumps(config))
    assert fingerprint(params, samples, str(base), None) != key  # the tokenizer counts too
    perturb_weights(tmp_path / "moved")
    assert fingerprint(params, samples, str(tmp_path / "moved"), None) != key
    other = tmp_path / "samples.jsonl"
    other.write_text(samples.read_text().splitlines()[0] + "\n")
    assert fingerprint(params, other, str(base), None) != fingerprint(params, samples, str(base), None)
    changed = params.model_copy(update={"lora_rank": params.lora_rank + 1})
    assert fingerprint(changed, samples, str(base), None) != fingerprint(params, samples, str(base), None)


def test_hub_id_without_local_files_is_fingerprinted_by_name_and_revision(samples):
    from tokenskip.finetune.fingerprint import base_model_identity, fingerprint

    assert base_model_identity("org/no-such-local-model", "abc") == {"name": "org/no-such-local-model",
                                                                     "revision": "abc"}
    params = FinetuneParams(**FAST)
    assert fingerprint(params, samples, "org/model", "abc") != fingerprint(params, samples, "org/model", "abd")


def _finetune_cli(base: Path, samples: Path, tmp: Path, validation: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "tokenskip", "finetune", "--base", str(base), "--samples", str(samples),
               "--out", str(tmp / "out"), "--checkpoints", str(tmp / "ckpt"),
               "--report", str(tmp / "finetune.json"), "--validation", str(validation)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TQDM_DISABLE": "1"})


FAILED_REPORT = {"success": False, "suites": {"pruned": {"success": False}},
                 "failures": [{"suite": "pruned", "name": "ratio_mean", "unexpected_count": 1}]}


@pytest.mark.parametrize(
    "content, message",
    [(json.dumps(FAILED_REPORT),
      "validation did not pass (success: false; 1 failed expectation(s): ratio_mean); finetune refuses"),
     (json.dumps({"success": False, "error": "a.jsonl: record 3: missing field 'x'", "failures": []}),
      "validation did not pass (success: false: a.jsonl: record 3: missing field 'x')"),
     (json.dumps({"suites": {}}), "field 'success' is missing"),
     ('{"success": tr', "not valid JSON"),
     (None, "validation report not found; run validate before finetune")],
    ids=["failed", "validate-error", "no-success-field", "malformed", "missing"],
)
def test_cli_refuses_to_train_unless_validation_passed(tiny_model_dir, samples, tmp_path, content, message):
    report = tmp_path / "reports" / "validate.json"
    if content is not None:
        report.parent.mkdir()
        report.write_text(content)
    run = _finetune_cli(tiny_model_dir, samples, tmp_path, report)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {report}: "), run.stderr[-2000:]
    assert message in lines[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "ckpt").exists()
    assert not (tmp_path / "finetune.json").exists()


def test_passed_validation_is_accepted(tmp_path):
    from tokenskip.finetune.gate import require_validated

    report = tmp_path / "validate.json"
    report.write_text(json.dumps({"success": True, "failures": []}))
    require_validated(report)
    report.write_text(json.dumps({"success": "true"}))  # only a JSON true passes
    with pytest.raises(TokenSkipError, match='success: "true"'):
        require_validated(report)


def test_relaunch_passes_validation_to_the_workers(samples, tmp_path, monkeypatch):
    from tokenskip.cli import app
    from tokenskip.finetune import distributed

    launched: list[list[str]] = []
    monkeypatch.setattr(distributed, "relaunch", lambda config, n, threads, args: launched.append(args))
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    (tmp_path / "params.yaml").write_text("finetune: {num_processes: 2, batch_size: 8}\n")
    report = tmp_path / "validate.json"
    report.write_text(json.dumps({"success": True}))
    result = CliRunner().invoke(app, ["finetune", "--base", str(tmp_path / "base"), "--samples", str(samples),
                                      "--params", str(tmp_path / "params.yaml"), "--validation", str(report),
                                      "--accelerate-config", str(REPO / "infra" / "accelerate")])
    assert result.exit_code == 0, result.output
    assert len(launched) == 1 and launched[0][-2:] == ["--validation", str(report)]
