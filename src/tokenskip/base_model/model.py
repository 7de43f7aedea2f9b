"""The bootstrap model: a ``Qwen2ForCausalLM`` sized by ``params.base_model``, randomly initialised."""

from __future__ import annotations

from typing import Any

from tokenskip.core.params import BaseModelParams

MAX_POSITIONS = 2048


def build_model(params: BaseModelParams, tokenizer: Any) -> Any:
    """A fresh Qwen2 causal LM whose vocabulary and special ids match ``tokenizer`` (seed first)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(params.seed)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=params.hidden_size,
        num_hidden_layers=params.num_layers,
        num_attention_heads=params.num_heads,
        num_key_value_heads=params.num_heads,
        intermediate_size=params.intermediate_size,
        initializer_range=params.initializer_range,
        max_position_embeddings=MAX_POSITIONS,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    return model
