"""finetune: completion-only loss, LoRA fine-tuning, adapter and merged outputs, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.model.ft_samples import write_samples
from tokenskip.core.errors import TokenSkipError
from tokenskip.core.params import DEFAULT_INSTRUCTION, FinetuneParams

FAST = dict(learning_rate=3e-3, epochs=1, batch_size=8, gradient_accumulation_steps=1,
            max_length=160, save_steps=2, logging_steps=1, warmup_ratio=0.1)


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir):
    from tokenskip.core.hf import load_tokenizer

    return load_tokenizer(str(tiny_model_dir))


@pytest.fixture(scope="module")
def samples(tokenizer, tmp_path_factory) -> Path:
    return write_samples(tokenizer, tmp_path_factory.mktemp("samples") / "samples.jsonl", 24)


def test_loss_covers_completion_and_eos_only(tokenizer):
    from tokenskip.finetune.training import IGNORE_INDEX, encode_sample

    encoded = encode_sample(tokenizer, "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n", "2 + 3 = 5", 512)
    prompt_len = len(tokenizer("<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\n",
                               add_special_tokens=False)["input_ids"])
    assert encoded["labels"][:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert encoded["labels"][prompt_len:] == encoded["input_ids"][prompt_len:]
    assert encoded["input_ids"][-1] == tokenizer.eos_token_id
    assert tokenizer.decode(encoded["input_ids"][prompt_len:-1]) == "2 + 3 = 5"
    short = encode_sample(tokenizer, "<|im_start|>user\nQ<|im_end|>\n", "2 + 3 = 5", 4)
    assert len(short["input_ids"]) == len(short["labels"]) == 4


def test_lora_saves_adapter_and_merged_model_that_load(tiny_model_dir, samples, tmp_path):
    from tokenskip.core.hf import load_finetuned
    from tokenskip.core.manifest import base_fingerprint
    from tokenskip.finetune.training import run_finetune

    params = FinetuneParams(lora_rank=4, lora_alpha=8, merge=True, **FAST)
    out = tmp_path / "tokenskip"
    result = run_finetune(tiny_model_dir, samples, out, tmp_path / "ckpt", params)
    assert result.steps == 3 and result.method == "lora"  # 24 samples / batch 8, one epoch
    assert 0 < result.trainable_parameters < result.total_parameters
    assert [h["step"] for h in result.loss_history] == [1, 2, 3]
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter["r"] == 4 and adapter["lora_alpha"] == 8
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert (out / "model" / "model.safetensors").is_file()
    assert "varlen" not in (out / "model" / "config.json").read_text()  # saved with its own attention
    manifest = json.loads((out / "tokenskip.json").read_text())
    assert manifest["ratios"] == [0.5, 0.7, 1.0]
    assert manifest["base_fingerprint"] == base_fingerprint(str(tiny_model_dir), None)  # evaluate checks it
    assert not (tmp_path / "ckpt").exists()  # checkpoints live only while a run is unfinished
    merged, tok = load_finetuned(out, tiny_model_dir, "cpu")
    (out / "model").rename(tmp_path / "moved")  # adapter path: base + PEFT adapter
    with_adapter, _ = load_finetuned(out, tiny_model_dir, "cpu")
    ids = tok("<|im_start|>user\n1 + 2<|im_end|>\n", return_tensors="pt")["input_ids"]
    import torch

    with torch.inference_mode():
        assert torch.allclose(merged(ids).logits, with_adapter(ids).logits, atol=1e-4)


def test_adapter_for_another_base_model_is_one_clear_error(tiny_model_dir, samples, tmp_path):
    from tests.fixtures.tiny_models import TINY_PARAMS, synthetic_problems
    from tokenskip.base_model.build import save_bootstrap, train_bootstrap
    from tokenskip.core.hf import load_finetuned
    from tokenskip.finetune.training import run_finetune

    run_finetune(tiny_model_dir, samples, tmp_path / "out", tmp_path / "ckpt",
                 FinetuneParams(merge=False, **FAST))
    wider = TINY_PARAMS.model_copy(update={"hidden_size": 48, "max_steps": 1})
    model, tok, _ = train_bootstrap(synthetic_problems(3, 20), DEFAULT_INSTRUCTION, wider)
    save_bootstrap(model, tok, str(tmp_path / "other"))
    with pytest.raises(TokenSkipError, match="adapter does not match the base model"):
        load_finetuned(tmp_path / "out", tmp_path / "other", "cpu")


@pytest.mark.parametrize(
    "lines, message",
    [([], "empty file"),
     ([{"id": "a", "ratio": 0.5, "prompt": "p", "completion": "  "}], "record 1 \\(id a\\): field 'completion' is empty"),
     ([{"id": "a", "ratio": 0.5, "prompt": "p"}], "missing field 'completion'"),
     ([{"id": "a", "ratio": 1.5, "prompt": "p", "completion": "c"}], "field 'ratio'")],
)
def test_bad_samples_stop_with_one_line(tmp_path, lines, message):
    from tokenskip.finetune.training import read_samples

    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(TokenSkipError, match=message):
        read_samples(path)


def test_cli_empty_training_set_exits_2_without_output(tiny_model_dir, tmp_path):
    (tmp_path / "samples.jsonl").write_text("")
    run = subprocess.run(
        [sys.executable, "-m", "tokenskip", "finetune", "--base", str(tiny_model_dir),
         "--samples", str(tmp_path / "samples.jsonl"), "--out", str(tmp_path / "out"),
         "--checkpoints", str(tmp_path / "ckpt"), "--report", str(tmp_path / "finetune.json")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [f"error: {tmp_path / 'samples.jsonl'}: empty file (no records)"]
    assert not (tmp_path / "out").exists() and not (tmp_path / "finetune.json").exists()


def test_padding_changes_no_sample_logits_or_loss(tiny_model_dir, tokenizer):
    # the collator passes no attention mask: right padding is invisible to every real token under
    # the causal mask, so each sample's logits are its own and the loss is the masked batch's
    import torch

    from tokenskip.core.hf import load_causal_lm
    from tokenskip.finetune.batching import collate

    model, _ = load_causal_lm(str(tiny_model_dir), None, "cpu")
    model.config.use_cache = False
    items = _two_samples(tokenizer)
    batch = collate(tokenizer.pad_token_id)(items)
    assert set(batch) == {"input_ids", "labels"}
    short = len(items[0]["input_ids"])
    assert short < batch["input_ids"].shape[1]
    mask = (torch.arange(batch["input_ids"].shape[1]) < torch.tensor([[short], [10**6]])).long()
    with torch.no_grad():
        unmasked = model(**batch)
        masked = model(**batch, attention_mask=mask)
        alone = model(input_ids=torch.tensor([items[0]["input_ids"]])).logits
    assert torch.allclose(unmasked.logits[0, :short], alone[0], atol=1e-5)
    assert torch.allclose(unmasked.loss, masked.loss, atol=1e-6)


def _two_samples(tokenizer, weights: tuple[float, float] | None = None) -> list[dict]:
    from tokenskip.finetune.batching import SAMPLE_WEIGHT
    from tokenskip.finetune.training import encode_sample

    items = [encode_sample(tokenizer, "<|im_start|>user\nQ<|im_end|>\n", text, 160)
             for text in ("2 + 3 = 5", "So he has 12 - 4 = 8 apples left. The final answer is 8")]
    for item, weight in zip(items, weights or (), strict=False):
        item[SAMPLE_WEIGHT] = weight
    return items


def test_full_cot_loss_weight_counts_original_cot_tokens_that_many_times(tiny_model_dir, tokenizer):
    import torch

    from tokenskip.core.hf import load_causal_lm
    from tokenskip.finetune.batching import collate
    from tokenskip.finetune.weighting import predicting_positions, weighted_causal_lm_loss

    model, _ = load_causal_lm(str(tiny_model_dir), None, "cpu")
    batch = collate(tokenizer.pad_token_id)(_two_samples(tokenizer))
    with torch.no_grad():
        own = model(**batch).loss  # transformers' causal-LM loss
        logits = model(input_ids=batch["input_ids"]).logits
    keep, targets = predicting_positions(batch["labels"])
    row = torch.arange(2)[:, None].expand_as(keep)[keep]
    per_sample = [weighted_causal_lm_loss(logits[keep][row == i], targets[row == i], 1.0, 1) for i in range(2)]
    n_tokens = targets.numel()
    equal = weighted_causal_lm_loss(logits[keep], targets, torch.ones(n_tokens), None)
    weighted = weighted_causal_lm_loss(logits[keep], targets, torch.tensor([1.0, 3.0])[row], n_tokens)
    assert torch.allclose(equal, own, atol=1e-6)
    assert torch.allclose(weighted, (per_sample[0] + 3 * per_sample[1]) / n_tokens, atol=1e-5)


@pytest.mark.parametrize("weights", [None, (3.0, 1.0)])
def test_padding_free_batches_give_the_padded_loss_and_gradients(tiny_model_dir, tokenizer, weights):
    # one row, positions restarting per sample, attention within each sample: the loss and every
    # gradient are those of the padded batch, and the row holds no padding
    import torch

    from tokenskip.core.hf import load_causal_lm
    from tokenskip.finetune.batching import PADDED, PADDING_FREE, collate, use_varlen_attention
    from tokenskip.finetune.weighting import trainer_class

    items = _two_samples(tokenizer, weights)
    padded, flat = (collate(tokenizer.pad_token_id, layout)(items) for layout in (PADDED, PADDING_FREE))
    assert flat["input_ids"].shape == (1, sum(len(i["input_ids"]) for i in items))
    assert flat["cu_seq_lens_q"].tolist() == [0, len(items[0]["input_ids"]), flat["input_ids"].shape[1]]
    assert flat["position_ids"][0, len(items[0]["input_ids"])] == 0
    results = []
    for layout, batch in ((PADDED, padded), (PADDING_FREE, flat)):
        model, _ = load_causal_lm(str(tiny_model_dir), None, "cpu")
        if layout == PADDING_FREE:
            use_varlen_attention(model)
        loss = trainer_class(3.0, layout).compute_loss(SimpleNamespace(), model, dict(batch))
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (padded_loss, padded_grads), (flat_loss, flat_grads) = results
    assert torch.allclose(flat_loss, padded_loss, atol=1e-6)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(flat_grads, padded_grads, strict=True))


def test_full_cot_loss_weight_changes_training_only_when_not_one(tiny_model_dir, samples, tmp_path):
    from tokenskip.finetune.training import run_finetune

    def losses(weight: float) -> list[float]:
        params = FinetuneParams(lora_rank=4, lora_alpha=8, full_cot_loss_weight=weight, **FAST)
        result = run_finetune(tiny_model_dir, samples, tmp_path / f"out-{weight}", tmp_path / f"ckpt-{weight}", params)
        return [h["loss"] for h in result.loss_history]

    plain = losses(1.0)
    assert losses(1.0) == plain  # weight 1: the Trainer's own loss, same seed, same curve
    weighted = losses(3.0)
    assert len(weighted) == len(plain) and weighted != plain
    assert weighted[0] > plain[0]  # the original CoTs' tokens count three times
