"""Greedy decoding settings are the same on every engine: taken from the model's
generation_config (Qwen2.5 ships a repetition penalty) unless params override them."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import GenerationConfig

from tokenskip.core.decoding import generate_greedy, greedy_settings, override_repetition_penalty
from tokenskip.core.hf import load_causal_lm


class _Tokenizer:
    eos_token_id = 7


def test_repetition_penalty_comes_from_the_generation_config_unless_overridden() -> None:
    qwen_like = GenerationConfig(repetition_penalty=1.05, eos_token_id=[3, 7])
    assert greedy_settings(qwen_like, _Tokenizer(), 512) == {
        "max_new_tokens": 512, "eos_token_ids": [3, 7], "repetition_penalty": 1.05}
    assert greedy_settings(qwen_like, _Tokenizer(), 512, 1.0)["repetition_penalty"] == 1.0
    assert greedy_settings(None, _Tokenizer(), 64) == {
        "max_new_tokens": 64, "eos_token_ids": [7], "repetition_penalty": 1.0}


def test_the_override_reaches_transformers_generate(tiny_model_dir: Path) -> None:
    """generate_greedy decodes with the penalty set on the model, as model.generate would."""
    import torch

    model, tokenizer = load_causal_lm(str(tiny_model_dir), device="cpu")
    prompt = ["Tom has 3 apples and buys 5 more. How many apples?"]
    override_repetition_penalty(model, 3.0)
    assert model.generation_config.repetition_penalty == pytest.approx(3.0)
    penalized, _ = generate_greedy(model, tokenizer, prompt, 1, 24)
    eos_ids = greedy_settings(model.generation_config, tokenizer, 24)["eos_token_ids"]
    encoded = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        direct = model.generate(**encoded, do_sample=False, max_new_tokens=24, repetition_penalty=3.0,
                                pad_token_id=tokenizer.pad_token_id, eos_token_id=eos_ids)
    new = direct[0, encoded["input_ids"].shape[1]:].tolist()
    new = new[: next((n for n, t in enumerate(new) if t in eos_ids), len(new))]
    assert penalized[0].text == tokenizer.decode(new, skip_special_tokens=True).strip()
