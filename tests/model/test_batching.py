"""Padding-free batches: transformers' DataCollatorWithFlattening plus the loss weights gives the
tensors of the collator it replaced, and the attention switch picks transformers' varlen kernel
only where CUDA, a half-precision model and a kernel are there."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from tokenskip.finetune import batching
from tokenskip.finetune.batching import (
    IGNORE_INDEX,
    PADDING_FREE,
    SAMPLE_WEIGHT,
    VARLEN_ATTENTION,
    VARLEN_KERNEL,
    collate,
    use_varlen_attention,
    varlen_kernel,
)


def _reference_flat(batch: list[dict]) -> dict:
    """The home-made padding-free collator that DataCollatorWithFlattening replaced, verbatim in effect."""
    import torch

    row: dict[str, list] = {"input_ids": [], "labels": [], "position_ids": [], SAMPLE_WEIGHT: []}
    bounds = [0]
    for item in batch:
        n = len(item["input_ids"])
        row["input_ids"] += item["input_ids"]
        row["labels"] += [IGNORE_INDEX] + item["labels"][1:]
        row["position_ids"] += list(range(n))
        row[SAMPLE_WEIGHT] += [item.get(SAMPLE_WEIGHT, 1.0)] * n
        bounds.append(bounds[-1] + n)
    longest = max(b - a for a, b in zip(bounds, bounds[1:], strict=False))
    cumulative = torch.tensor(bounds, dtype=torch.int32)
    tensors = {"input_ids": torch.tensor([row["input_ids"]]), "labels": torch.tensor([row["labels"]]),
               "position_ids": torch.tensor([row["position_ids"]]), "cu_seq_lens_q": cumulative,
               "cu_seq_lens_k": cumulative, "max_length_q": longest, "max_length_k": longest}
    if SAMPLE_WEIGHT in batch[0]:
        tensors[SAMPLE_WEIGHT] = torch.tensor([row[SAMPLE_WEIGHT]])
    return tensors


def _samples(seed: int, count: int, weighted: bool) -> list[dict]:
    """Samples shaped like encode_sample's: a prompt labelled -100, then completion labels."""
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        prompt, completion = rng.randint(1, 12), rng.randint(1, 20)
        ids = [rng.randrange(1, 500) for _ in range(prompt + completion)]
        item = {"input_ids": ids, "labels": [IGNORE_INDEX] * prompt + ids[prompt:]}
        if weighted:
            item[SAMPLE_WEIGHT] = rng.choice([1.0, 3.0])
        items.append(item)
    return items


@pytest.mark.parametrize("seed,count,weighted", [(0, 1, False), (1, 3, False), (2, 8, True), (3, 16, True)])
def test_flattening_collator_gives_the_replaced_collators_tensors(seed: int, count: int, weighted: bool) -> None:
    import torch

    items = _samples(seed, count, weighted)
    new, old = collate(0, PADDING_FREE)(items), _reference_flat(items)
    assert list(new) == list(old)
    for key, value in old.items():
        if isinstance(value, torch.Tensor):
            assert new[key].dtype == value.dtype and torch.equal(new[key], value), key
        else:
            assert type(new[key]) is int and new[key] == value, key


def _tiny_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64)
    return Qwen2ForCausalLM(config)


@pytest.mark.parametrize(
    "cuda,dtype,flash_attn,kernels,expected",
    [
        (False, "bfloat16", True, True, None),  # no CUDA: the per-sample SDPA
        (True, "float32", True, True, None),  # flash attention wants half precision
        (True, "bfloat16", False, False, None),  # no kernel installed
        (True, "bfloat16", True, False, VARLEN_KERNEL),
        (True, "float16", False, True, VARLEN_KERNEL),  # the kernels package's flash attention
    ],
)
def test_varlen_kernel_only_with_cuda_half_precision_and_a_kernel(
    monkeypatch: pytest.MonkeyPatch, cuda: bool, dtype: str, flash_attn: bool, kernels: bool, expected: str | None
) -> None:
    import torch
    import transformers.utils

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(transformers.utils, "is_flash_attn_2_available", lambda: flash_attn)
    monkeypatch.setattr(transformers.utils, "is_kernels_available", lambda: kernels)
    assert varlen_kernel(SimpleNamespace(dtype=getattr(torch, dtype))) == expected


def test_cpu_training_uses_the_per_sample_attention_and_switches_back() -> None:
    model = _tiny_model()
    previous = use_varlen_attention(model)
    assert previous == "sdpa" and model.config._attn_implementation == VARLEN_ATTENTION
    assert model.model.config._attn_implementation == VARLEN_ATTENTION
    model.set_attn_implementation(previous)
    assert model.config._attn_implementation == "sdpa"


def test_a_kernel_that_does_not_load_falls_back_to_the_per_sample_attention(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    model = _tiny_model()
    requested = []
    original = model.set_attn_implementation

    def set_attention(name: str) -> None:
        requested.append(name)
        if name == VARLEN_KERNEL:
            raise OSError("kernels-community/flash-attn2 is not in the local cache")
        original(name)

    monkeypatch.setattr(batching, "varlen_kernel", lambda model: VARLEN_KERNEL)
    monkeypatch.setattr(model, "set_attn_implementation", set_attention)
    assert use_varlen_attention(model) == "sdpa"
    assert requested == [VARLEN_KERNEL, VARLEN_ATTENTION]
    assert model.config._attn_implementation == VARLEN_ATTENTION
    assert "flash_attention_2 unavailable" in capsys.readouterr().err
